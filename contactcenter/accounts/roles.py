"""The three roles. A role is a Django auth group of the same name, created by a migration."""

from enum import StrEnum


class Role(StrEnum):
    ADMIN = "Admin"
    SUPERVISOR = "Supervisor"
    AGENT = "Agent"


# Where each role lands after signing in; the first role a user holds in this order wins.
LANDING_URL_NAMES: dict[Role, str] = {
    Role.ADMIN: "admin:index",
    Role.SUPERVISOR: "supervisor:index",
    Role.AGENT: "desk:index",
}

# The Django permissions ("app_label.codename") each role's group holds. Admins need none:
# they are superusers. Agents need none either: the routing engine lets a person act on the
# worker linked to them. Granted by migration 0002 and by `user_ensure_with_role`.
ROLE_PERMISSIONS: dict[Role, list[str]] = {
    Role.ADMIN: [],
    Role.SUPERVISOR: ["routing.supervise_workspace"],
    Role.AGENT: [],
}
