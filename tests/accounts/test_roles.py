"""Each role lands on its own page and cannot open another role's pages."""

import importlib

import pytest
from django.apps import apps as django_apps
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.urls import reverse

from contactcenter.accounts.roles import ROLE_PERMISSIONS, Role
from contactcenter.accounts.services import permission_ensure, user_ensure_with_role
from tests.conftest import PASSWORD


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_the_migration_creates_the_three_role_groups():
    assert set(Group.objects.values_list("name", flat=True)) >= {"Admin", "Supervisor", "Agent"}


@pytest.mark.parametrize(
    ("fixture", "landing"),
    [("admin_user", "/admin/"), ("supervisor", "/supervisor/"), ("agent1", "/desk/")],
)
def test_signing_in_lands_each_role_on_its_page(request, client, fixture, landing):
    user = request.getfixturevalue(fixture)
    response = client.post(
        reverse("login"), {"username": user.username, "password": PASSWORD}, follow=True
    )
    assert response.redirect_chain[-1] == (landing, 302)
    assert response.status_code == 200
    assert response.wsgi_request.user == user


def test_a_wrong_password_is_refused_with_a_message(client, agent1):
    response = client.post(reverse("login"), {"username": "agent1", "password": "nope"})
    assert response.status_code == 200
    assert "_auth_user_id" not in client.session
    assert "Please enter a correct username and password" in response.content.decode()


def test_a_user_without_a_role_is_told_so(client_for, outsider):
    response = client_for(outsider).get("/")
    assert response.status_code == 403
    assert "has no role yet" in response.content.decode()


def test_anonymous_visitors_are_sent_to_sign_in(client, db):
    for path in ("/", "/desk/", "/supervisor/"):
        response = client.get(path)
        assert response.status_code == 302
        assert response.url.startswith("/accounts/login/?next=")
    assert client.get("/admin/").url.startswith("/admin/login/")


@pytest.mark.parametrize(
    ("fixture", "allowed", "forbidden"),
    [
        ("agent1", ["/desk/"], ["/supervisor/"]),
        ("supervisor", ["/supervisor/"], ["/desk/"]),
        # Superuser status opens the Django admin, not the other roles' consoles.
        ("admin_user", ["/admin/"], ["/desk/", "/supervisor/"]),
        ("outsider", [], ["/desk/", "/supervisor/"]),
    ],
)
def test_a_role_cannot_open_another_roles_pages(request, client_for, fixture, allowed, forbidden):
    client = client_for(request.getfixturevalue(fixture))
    for path in allowed:
        assert client.get(path).status_code == 200, path
    for path in forbidden:
        response = client.get(path)
        assert response.status_code == 403, path
        assert "You cannot open this page" in response.content.decode()


@pytest.mark.parametrize("fixture", ["agent1", "supervisor", "outsider"])
def test_only_admins_get_into_the_django_admin(request, client_for, fixture):
    response = client_for(request.getfixturevalue(fixture)).get("/admin/")
    assert response.status_code == 302
    assert response.url.startswith("/admin/login/")


def test_staff_without_the_admin_role_is_kept_out_of_the_admin(client_for, supervisor):
    supervisor.is_staff = True
    supervisor.save()
    assert client_for(supervisor).get("/admin/").status_code == 302


def test_a_user_holding_two_roles_opens_both_consoles(client_for, supervisor):
    supervisor.groups.add(Group.objects.get_or_create(name=Role.AGENT)[0])
    client = client_for(supervisor)
    assert client.get("/desk/").status_code == 200
    assert client.get("/supervisor/").status_code == 200
    # Landing follows the order Admin, Supervisor, Agent.
    assert client.get("/").url == "/supervisor/"


def test_sign_out_is_a_post_and_ends_the_session(client_for, agent1):
    client = client_for(agent1)
    response = client.post(reverse("logout"))
    assert response.status_code == 302
    assert response.url == reverse("login")
    assert client.get("/desk/").status_code == 302


def test_the_header_links_only_the_pages_of_the_users_roles(client_for, supervisor):
    html = client_for(supervisor).get("/supervisor/").content.decode()
    assert 'href="/supervisor/"' in html
    assert 'href="/desk/"' not in html
    assert 'href="/admin/"' not in html


# ---------------------------------------------------------------- role permissions

SUPERVISE = "routing.supervise_workspace"


def _group_permissions(name: str) -> set[str]:
    group = Group.objects.get(name=name)
    return {
        f"{app}.{codename}"
        for app, codename in group.permissions.values_list("content_type__app_label", "codename")
    }


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_the_migration_grants_supervisors_the_routing_permission():
    # Straight from the migrations: no user has been made through the service yet.
    assert SUPERVISE in _group_permissions("Supervisor")
    assert SUPERVISE not in _group_permissions("Agent")
    assert SUPERVISE not in _group_permissions("Admin")
    assert (
        Permission.objects.filter(
            content_type__app_label="routing", codename="supervise_workspace"
        ).count()
        == 1
    )


def test_each_role_gets_exactly_its_routing_powers(admin_user, supervisor, agent1, outsider):
    from routing.selectors import can_configure, can_supervise

    assert supervisor.has_perm(SUPERVISE)
    assert can_supervise(supervisor) and not can_configure(supervisor)
    assert admin_user.has_perm(SUPERVISE)  # a superuser
    assert can_supervise(admin_user) and can_configure(admin_user)
    for user in (agent1, outsider):
        assert not user.has_perm(SUPERVISE)
        assert not can_supervise(user) and not can_configure(user)


def test_role_permissions_follow_the_role(db):
    user = user_ensure_with_role(username="pat", password="x" * 12, role=Role.SUPERVISOR)
    assert user.has_perm(SUPERVISE)
    # Idempotent: the second run adds nothing twice.
    user_ensure_with_role(username="pat", password="x" * 12, role=Role.SUPERVISOR)
    assert (
        Group.objects.get(name="Supervisor")
        .permissions.filter(codename="supervise_workspace")
        .count()
        == 1
    )
    demoted = user_ensure_with_role(username="pat", password="x" * 12, role=Role.AGENT)
    demoted = type(demoted).objects.get(pk=demoted.pk)  # no cached permissions
    assert not demoted.has_perm(SUPERVISE)


def test_user_ensure_with_role_works_on_a_flushed_database(db):
    # A flushed test database has no groups, permissions or content types.
    Group.objects.all().delete()
    ContentType.objects.filter(app_label="routing", model="workspace").delete()
    assert not Permission.objects.filter(codename="supervise_workspace").exists()
    try:
        user = user_ensure_with_role(username="sam", password="x" * 12, role=Role.SUPERVISOR)
        assert type(user).objects.get(pk=user.pk).has_perm(SUPERVISE)
        permission = Permission.objects.get(codename="supervise_workspace")
        assert permission.content_type.app_label == "routing"
        assert permission.content_type.model == "workspace"
        assert permission.name == "Can act on any task, reservation or worker"
    finally:
        ContentType.objects.clear_cache()  # ids changed under the cache


def test_every_role_permission_names_a_real_permission(db):
    for role, labels in ROLE_PERMISSIONS.items():
        assert role in Role
        for label in labels:
            permission = permission_ensure(label)
            assert f"{permission.content_type.app_label}.{permission.codename}" == label
    with pytest.raises(LookupError):
        permission_ensure("routing.fly_to_the_moon")


def test_the_migration_functions_grant_and_revoke(db):
    migration = importlib.import_module("contactcenter.accounts.migrations.0002_role_permissions")
    Permission.objects.filter(codename="supervise_workspace").delete()

    migration.grant(django_apps, None)
    assert SUPERVISE in _group_permissions("Supervisor")
    migration.grant(django_apps, None)  # running twice is harmless
    assert Permission.objects.filter(codename="supervise_workspace").count() == 1

    migration.revoke(django_apps, None)
    assert SUPERVISE not in _group_permissions("Supervisor")
    assert Permission.objects.filter(codename="supervise_workspace").exists()
