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
