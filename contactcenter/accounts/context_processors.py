from contactcenter.accounts.roles import Role
from contactcenter.accounts.selectors import user_roles


def roles(request):
    held = user_roles(request.user) if hasattr(request, "user") else frozenset()
    return {
        "is_admin": Role.ADMIN in held,
        "is_supervisor": Role.SUPERVISOR in held,
        "is_agent": Role.AGENT in held,
    }
