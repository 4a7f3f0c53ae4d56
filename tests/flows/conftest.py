"""A flows world: the messaging world, a demo routing workspace, and helpers to build a flow
from a few states, let a customer write, and read what the flow answered."""

import itertools
from types import SimpleNamespace

import pytest

from contactcenter.flows.models import Flow, FlowAttachment
from contactcenter.flows.services import flow_inbound_handle, flow_publish
from messaging.models import Direction, Message
from messaging.services.inbound import inbound_message_receive
from tests.messaging.conftest import build_world

CUSTOMER = "+14155550123"
_ids = itertools.count(1)


def state(name: str, kind: str, transitions: list | None = None, **properties) -> dict:
    return {"name": name, "type": kind, "properties": properties, "transitions": transitions or []}


def go(event: str, next_state: str = "") -> dict:
    return {"event": event, "next": next_state} if next_state else {"event": event}


def definition(*states: dict, first: str | None = None) -> dict:
    """A trigger whose incomingMessage, incomingRequest and incomingParent all lead to
    `first` (default: the first state given), then `states`."""
    start = first or (states[0]["name"] if states else "")
    trigger = state(
        "Trigger",
        "trigger",
        [go("incomingMessage", start), go("incomingRequest", start), go("incomingParent", start)],
    )
    return {"description": "test", "initial_state": "Trigger", "states": [trigger, *states]}


class Flows:
    def __init__(self, world):
        self.world = world
        self.sender = world.senders["long_code"]

    def flow(self, *states, name: str = "", attach=True, publish=True, **fields) -> Flow:
        flow = Flow.objects.create(
            account=self.world.account,
            friendly_name=name or f"flow {next(_ids)}",
            definition=definition(*states),
            **fields,
        )
        if publish:
            flow_publish(flow, by="tests")
            flow.refresh_from_db()
        if attach:
            FlowAttachment.objects.filter(sender=self.sender).delete()
            FlowAttachment.objects.create(flow=flow, sender=self.sender)
        return flow

    def inbound(self, body: str, *, customer: str = CUSTOMER, sender=None) -> Message:
        sender = sender or self.sender
        message, _created = inbound_message_receive(
            provider=sender.provider,
            provider_message_id=f"SM-test-{next(_ids)}",
            from_address=customer,
            to_address=sender.address,
            body=body,
            profile_name="Ana Test",
        )
        return message

    def say(self, body: str, **kwargs) -> str:
        """The customer writes; the flow handles it (what the Celery task does)."""
        return flow_inbound_handle(self.inbound(body, **kwargs).pk)

    def replies(self, customer: str = CUSTOMER) -> list[str]:
        return list(
            Message.objects.filter(to_address=customer, direction=Direction.OUTBOUND_REPLY)
            .order_by("id")
            .values_list("body", flat=True)
        )


@pytest.fixture
def flows(db) -> Flows:
    return Flows(build_world())


@pytest.fixture
def live_flows(transactional_db) -> Flows:
    return Flows(build_world())


def last_execution(flow: Flow):
    return flow.executions.order_by("-id").first()


__all__ = ["CUSTOMER", "Flows", "SimpleNamespace", "definition", "go", "last_execution", "state"]
