import pytest
from django.contrib.auth import authenticate, get_user_model
from django.core.management import CommandError, call_command

from contactcenter.accounts.selectors import user_roles


def test_seed_demo_refuses_with_debug_off(db, settings):
    settings.DEBUG = False
    with pytest.raises(CommandError, match="refuses to run with DEBUG off"):
        call_command("seed_demo")
    assert not get_user_model().objects.exists()


def test_seed_demo_creates_the_demo_logins_and_is_idempotent(db, settings):
    settings.DEBUG = True
    call_command("seed_demo", verbosity=0)
    call_command("seed_demo", verbosity=0)
    users = get_user_model().objects.order_by("username")
    assert [u.username for u in users] == ["admin", "agent1", "agent2", "supervisor"]
    roles = {u.username: sorted(user_roles(u)) for u in users}
    assert roles == {
        "admin": ["Admin"],
        "agent1": ["Agent"],
        "agent2": ["Agent"],
        "supervisor": ["Supervisor"],
    }
    for user in users:
        assert authenticate(username=user.username, password="demo") == user
    admin = users.get(username="admin")
    assert admin.is_staff and admin.is_superuser
    assert not users.get(username="agent1").is_staff


def test_seed_demo_with_force_runs_with_debug_off(db, settings):
    settings.DEBUG = False
    call_command("seed_demo", "--force", verbosity=0)
    assert get_user_model().objects.count() == 4
