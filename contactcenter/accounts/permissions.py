from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied

from contactcenter.accounts.roles import Role
from contactcenter.accounts.selectors import user_has_role


def role_required(role: Role):
    """View decorator: anonymous users go to sign-in; signed-in users without `role` get 403.

    Access is by role membership only: superuser status grants the Django admin, not the
    desk or the supervisor console.
    """

    def decorator(view):
        @wraps(view)
        def wrapped(request, *args, **kwargs):
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            if not user_has_role(request.user, role):
                raise PermissionDenied(f"This page is for the {role.value} role.")
            return view(request, *args, **kwargs)

        return wrapped

    return decorator
