"""The desk's test world: the demo's routing (workspace, queues, workflow, agent1 and agent2
as workers) and senders, and customers whose conversations are handed to the agents."""

from dataclasses import dataclass, field

import pytest
from django.contrib.auth import get_user_model

from contactcenter.core.demo import demo_seed
from contactcenter.desk.models import Handoff
from contactcenter.desk.services import HandoffRequest, conversation_handoff
from messaging.models import Conversation, Sender
from messaging.simulator.services import simulator_customer_reply
from routing.models import Activity, Reservation, Worker, Workspace
from routing.services.reservations import reservation_accept
from routing.services.workers import worker_activity_set

WHATSAPP = "whatsapp:+14155550199"


@dataclass
class DeskWorld:
    run_commit: object
    workspace: Workspace = field(init=False)
    users: dict = field(init=False)
    workers: dict = field(init=False)
    sender: Sender = field(init=False)

    def setup(self) -> "DeskWorld":
        demo_seed()
        self.workspace = Workspace.objects.get(friendly_name="Customer support")
        users = get_user_model().objects.filter(
            username__in=["admin", "supervisor", "agent1", "agent2"]
        )
        self.users = {u.username: u for u in users}
        self.workers = {w.friendly_name: w for w in Worker.objects.filter(workspace=self.workspace)}
        self.sender = Sender.objects.get(address=WHATSAPP)
        return self

    def activity(self, name: str) -> Activity:
        return Activity.objects.get(workspace=self.workspace, friendly_name=name)

    def available(self, *usernames: str) -> None:
        with self.run_commit():
            for username in usernames:
                worker_activity_set(self.workers[username], activity=self.activity("Available"))

    def customer_writes(self, customer: str, body: str, *, name: str = "") -> Conversation:
        with self.run_commit():
            outcome = simulator_customer_reply(
                sender=self.sender, customer=customer, body=body, profile_name=name
            )
        assert outcome.status == 200, outcome
        return Conversation.objects.get(contact__address=customer, state="open")

    def hand_off(self, customer: str, *, language: str = "en", name: str = "") -> Handoff:
        conversation = self.customer_writes(customer, "I want a person", name=name)
        with self.run_commit():
            handoff = conversation_handoff(
                conversation=conversation,
                request=HandoffRequest(
                    workflow="Support routing", attributes={"language": language}
                ),
            )
        return Handoff.objects.select_related("conversation", "task").get(pk=handoff.pk)

    def pending_reservation(self, handoff: Handoff, username: str) -> Reservation:
        return Reservation.objects.get(
            task=handoff.task, worker=self.workers[username], status="pending"
        )

    def held_by(self, username: str, customer: str, *, language: str = "en") -> Handoff:
        """A conversation offered to `username` and accepted."""
        handoff = self.hand_off(customer, language=language)
        reservation = self.pending_reservation(handoff, username)
        with self.run_commit():
            reservation_accept(reservation)
        return handoff


@pytest.fixture
def world(db, django_capture_on_commit_callbacks):
    return DeskWorld(run_commit=lambda: django_capture_on_commit_callbacks(execute=True)).setup()


@pytest.fixture
def live_world(transactional_db):
    """The same world with real commits, for consumers running in other threads."""
    from contextlib import nullcontext

    return DeskWorld(run_commit=nullcontext).setup()
