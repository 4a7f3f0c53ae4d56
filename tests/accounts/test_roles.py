"""Each role lands on its own page and cannot open another role's pages."""

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse

from contactcenter.accounts.roles import Role
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
