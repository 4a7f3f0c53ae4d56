from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction

from contactcenter.accounts.roles import Role


@transaction.atomic
def user_ensure_with_role(
    *,
    username: str,
    password: str,
    role: Role | None,
    email: str = "",
    first_name: str = "",
    last_name: str = "",
):
    """Create the user if missing, set its password and make `role` its only role.

    Admins are staff (the Django admin requires it) and superusers (they configure
    everything there). Idempotent: running it twice leaves one user in the same state.
    """
    user_model = get_user_model()
    user, _created = user_model.objects.get_or_create(username=username)
    user.email = email or user.email
    user.first_name = first_name or user.first_name
    user.last_name = last_name or user.last_name
    user.is_staff = role == Role.ADMIN
    user.is_superuser = role == Role.ADMIN
    user.set_password(password)
    user.save()
    # get_or_create: the migration made the groups, but a flushed test database has none.
    groups = [Group.objects.get_or_create(name=role.value)[0]] if role else []
    user.groups.set(groups)
    return user
