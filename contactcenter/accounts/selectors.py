from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.urls import reverse

from contactcenter.accounts.roles import LANDING_URL_NAMES, Role


def user_roles(user: AbstractBaseUser | AnonymousUser) -> frozenset[Role]:
    """The roles a user holds, by group membership. Cached on the user object per request."""
    if not user.is_authenticated:
        return frozenset()
    cached = getattr(user, "_cc_roles", None)
    if cached is None:
        names = set(user.groups.values_list("name", flat=True))
        cached = frozenset(role for role in Role if role.value in names)
        user._cc_roles = cached
    return cached


def user_has_role(user, role: Role) -> bool:
    return role in user_roles(user)


def landing_url_for(user) -> str | None:
    """The page a user lands on after sign-in, or None when they hold no role."""
    roles = user_roles(user)
    for role, url_name in LANDING_URL_NAMES.items():
        if role in roles:
            return reverse(url_name)
    return None
