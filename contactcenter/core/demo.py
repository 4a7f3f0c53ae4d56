"""Demo data for `make run`. Idempotent: seeding twice leaves the same data.

Later features add their own demo objects here (senders, queues, flows, ...).
"""

from django.db import transaction

from contactcenter.accounts.roles import Role
from contactcenter.accounts.services import user_ensure_with_role

DEMO_PASSWORD = "demo"
DEMO_USERS: dict[str, tuple[Role, str, str]] = {
    "admin": (Role.ADMIN, "Ada", "Admin"),
    "supervisor": (Role.SUPERVISOR, "Sofía", "Supervisor"),
    "agent1": (Role.AGENT, "Ana", "Agent"),
    "agent2": (Role.AGENT, "Bruno", "Agent"),
}


@transaction.atomic
def demo_seed() -> None:
    for username, (role, first_name, last_name) in DEMO_USERS.items():
        user_ensure_with_role(
            username=username,
            password=DEMO_PASSWORD,
            role=role,
            email=f"{username}@example.com",
            first_name=first_name,
            last_name=last_name,
        )
