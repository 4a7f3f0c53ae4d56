from django.apps import apps
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.db import transaction

from contactcenter.accounts.roles import ROLE_PERMISSIONS, Role


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
    everything there). The role's group holds the role's permissions (ROLE_PERMISSIONS).
    Idempotent: running it twice leaves one user in the same state.
    """
    user_model = get_user_model()
    user, _created = user_model.objects.get_or_create(username=username)
    user.email = email or user.email
    user.first_name = first_name or user.first_name
    user.last_name = last_name or user.last_name
    user.is_staff = role == Role.ADMIN
    user.is_superuser = role == Role.ADMIN
    # Only when it differs: a new hash would sign out everyone holding a session (the demo
    # seed runs at every `make run`).
    if not user.check_password(password):
        user.set_password(password)
    user.save()
    groups = [role_group_ensure(role)] if role else []
    user.groups.set(groups)
    return user


def role_group_ensure(role: Role) -> Group:
    """The role's group, holding the role's permissions.

    get_or_create all the way down: the migrations made the groups and the permissions, but a
    flushed test database has neither (nor the content types they hang on).
    """
    group, _created = Group.objects.get_or_create(name=role.value)
    permissions = [permission_ensure(label) for label in ROLE_PERMISSIONS.get(role, [])]
    if permissions:
        group.permissions.add(*permissions)
    return group


def permission_ensure(label: str) -> Permission:
    """The permission "app_label.codename", created with its content type if missing."""
    app_label, codename = label.split(".", 1)
    existing = Permission.objects.filter(
        content_type__app_label=app_label, codename=codename
    ).first()
    if existing is not None:
        return existing
    model, name = _declaring_model(app_label, codename)
    content_type, _created = ContentType.objects.get_or_create(
        app_label=app_label, model=model._meta.model_name
    )
    permission, _created = Permission.objects.get_or_create(
        content_type=content_type, codename=codename, defaults={"name": name}
    )
    return permission


def _declaring_model(app_label: str, codename: str):
    """The model whose Meta declares the permission, and the permission's name."""
    for model in apps.get_app_config(app_label).get_models():
        opts = model._meta
        declared = dict(opts.permissions)
        declared.update(
            {
                f"{action}_{opts.model_name}": f"Can {action} {opts.verbose_name_raw}"
                for action in opts.default_permissions
            }
        )
        if codename in declared:
            return model, str(declared[codename])
    raise LookupError(f"No model of {app_label!r} declares the permission {codename!r}.")
