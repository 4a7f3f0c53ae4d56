"""Flow writes: publish, start (inbound or REST), deliver replies, the periodic tick.

Inbound messages reach `flow_inbound_handle` (registered with messaging's hooks, run by a
Celery task): an active execution for the (contact, business address) pair gets the
message, else the flow attached to the sender starts. Handing a conversation to the desk
takes it away from the flows until its task is done.
"""

import dataclasses
import logging
from dataclasses import dataclass
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from contactcenter.desk.services import LIVE_TASK_STATES, conversation_live_handoff
from contactcenter.flows import engine
from contactcenter.flows.context import message_fields
from contactcenter.flows.definition import validate_definition
from contactcenter.flows.functions import registered_functions
from contactcenter.flows.models import (
    Execution,
    ExecutionStatus,
    Flow,
    FlowRevision,
    Step,
    Waiting,
)
from contactcenter.flows.selectors import active_executions, flow_for_sender, revision_for
from messaging.addresses import AddressError, parse_address
from messaging.errors import MORE_INFO
from messaging.models import Direction, Message, Sender
from messaging.selectors import conversation_open_for
from messaging.statuses import Status

log = logging.getLogger(__name__)

TICK_BATCH = 200
# Inbound messages whose task was lost (broker down at commit, worker killed) are picked up
# once they are this old, for this long.
SWEEP_AFTER = timedelta(seconds=30)
SWEEP_WINDOW = timedelta(minutes=10)


@dataclass
class FlowError(Exception):
    """An API error: Twilio's code, the HTTP status, a human message."""

    code: int
    status: int
    message: str
    field: str | None = None
    extra: dict = dataclasses.field(default_factory=dict)

    def as_twilio(self) -> dict:
        return {
            "code": self.code,
            "message": self.message,
            "more_info": MORE_INFO.format(code=self.code),
            "status": self.status,
            **self.extra,
        }


# ---------------------------------------------------------------- definitions


def definition_errors(flow: Flow, definition: dict) -> list:
    known_flows = set(
        Flow.objects.filter(account_id=flow.account_id)
        .exclude(pk=flow.pk)
        .values_list("sid", flat=True)
    )
    return validate_definition(
        definition, known_functions=set(registered_functions()), known_flows=known_flows
    )


@transaction.atomic
def flow_publish(flow: Flow, *, by: str = "") -> FlowRevision:
    """Publish the draft as the next revision. FlowError 20422 listing every problem."""
    flow = Flow.objects.select_for_update().get(pk=flow.pk)
    errors = definition_errors(flow, flow.definition)
    if errors:
        raise FlowError(20422, 400, "The flow has errors: " + "; ".join(map(str, errors)))
    revision = FlowRevision.objects.create(
        flow=flow, revision=flow.published_revision + 1, definition=flow.definition, published_by=by
    )
    flow.published_revision = revision.revision
    flow.save(update_fields=["published_revision", "date_updated"])
    return revision


# ---------------------------------------------------------------- inbound


def flow_inbound_handle(message_id: int) -> str:
    """Give an inbound message to its flow. Returns what happened (for logs and tests).
    Safe to run twice for one message: its step is unique."""
    message = (
        Message.objects.select_related(
            "sender", "sender__service", "account", "service", "contact", "conversation"
        )
        .filter(pk=message_id, direction=Direction.INBOUND)
        .first()
    )
    if message is None:
        return "not an inbound message"
    if message.opt_out_type:
        return "opt-out keyword: answered by messaging"
    if Step.objects.filter(inbound_message_id=message.pk).exists():
        return "already handled"
    if message.conversation_id and conversation_live_handoff(message.conversation_id):
        return "the conversation is with the agents"
    try:
        return _deliver_or_start(message)
    except IntegrityError:
        # Another worker started this pair's execution a moment ago: deliver to it.
        return _deliver_or_start(message)


def _deliver_or_start(message: Message) -> str:
    contact, business = message.from_address, message.to_address
    active = active_executions(contact, business)
    waiting = [e for e in active if e.waiting == Waiting.REPLY]
    if waiting:
        engine.execution_reply(waiting[0].pk, message)
        return f"delivered to {waiting[0].sid}"
    if active:
        engine.execution_reply(active[0].pk, message)  # logs it as not taken
        return f"{active[0].sid} was busy"
    flow = flow_for_sender(message.sender)
    if flow is None or flow.account_id != message.account_id:
        return "no flow attached"
    revision, draft = revision_for(flow, contact)
    if revision is None and not draft:
        return f"{flow.sid} is not published"
    start = engine.Start(
        event="incomingMessage", trigger={"message": message_fields(message)}, message=message
    )
    execution = _start(flow, revision, contact, business, start, message.conversation)
    return f"started {execution.sid}"


def _start(flow, revision, contact, business, start, conversation) -> Execution:
    """Create the execution and run it from its trigger; its outside calls after commit.
    IntegrityError when the pair already has an active execution of this flow."""
    with transaction.atomic():
        execution = engine.execution_create(
            flow=flow,
            revision=revision,
            contact_address=contact,
            business_address=business,
            start=start,
            conversation=conversation,
        )
        io = engine.execution_begin(execution, start)
    engine.perform_calls(execution.pk, io)
    return execution


def flow_status_handle(message_id: int, status: str) -> None:
    """A send-and-wait's message failed: the execution waiting behind it takes
    deliveryFailure. Cheap for every other status change: one comparison."""
    if status not in (Status.FAILED, Status.UNDELIVERED):
        return
    execution = (
        Execution.objects.filter(
            status=ExecutionStatus.ACTIVE, wait_message_id=message_id, waiting=Waiting.REPLY
        )
        .only("pk")
        .first()
    )
    if execution is not None:
        message = Message.objects.get(pk=message_id)
        engine.execution_delivery_failed(execution.pk, message)


# ---------------------------------------------------------------- REST


def execution_start_rest(
    *, flow: Flow, to: str, from_: str, parameters: dict | None = None
) -> Execution:
    """Studio's `POST /v2/Flows/{sid}/Executions`: start at the trigger's incomingRequest.
    FlowError 20409 (409) naming the active execution for this pair."""
    contact = _address(to, "To")
    business = _address(from_, "From")
    if not Sender.objects.filter(account_id=flow.account_id, address=business).exists():
        raise FlowError(21606, 400, f"{business} is not one of this account's senders.", "From")
    revision, draft = revision_for(flow, contact)
    if revision is None and not draft:
        raise FlowError(20422, 400, f"The flow {flow.sid} has no published revision.")
    active = _active(flow, contact, business)
    if active is not None:
        raise _conflict(flow, active)
    request = {"To": contact, "From": business, "Parameters": parameters or {}}
    start = engine.Start(event="incomingRequest", trigger={"request": request}, data=parameters)
    conversation = conversation_open_for(
        account_id=flow.account_id, contact_address=contact, business_address=business
    )
    try:
        execution = _start(flow, revision, contact, business, start, conversation)
    except IntegrityError:
        raise _conflict(flow, _active(flow, contact, business)) from None
    execution.refresh_from_db()
    return execution


def _active(flow: Flow, contact: str, business: str) -> Execution | None:
    return Execution.objects.filter(
        flow=flow, status=ExecutionStatus.ACTIVE, contact_address=contact, business_address=business
    ).first()


def _conflict(flow: Flow, active: Execution | None) -> FlowError:
    sid = active.sid if active else "?"
    return FlowError(
        20409,
        409,
        f"Execution {sid} of flow {flow.sid} is already active for this contact and address.",
        extra={"details": {"conflicting_execution_sid": sid}},
    )


def _address(raw: str, name: str) -> str:
    if not raw or not str(raw).strip():
        raise FlowError(20422 if name == "From" else 21604, 400, f"{name} is required.", name)
    try:
        return parse_address(raw).value
    except AddressError:
        # Short codes and alphanumeric ids are senders, not phone numbers.
        if name == "From" and str(raw).strip().isalnum():
            return str(raw).strip()
        raise FlowError(21211, 400, f"The {name!r} address {raw} is not valid.", name) from None


# ---------------------------------------------------------------- tick


def flows_tick(*, batch: int = TICK_BATCH) -> dict[str, int]:
    """Fire due waits (reply timeouts, calls whose worker died) and end executions past their
    30 days. Stored deadlines, so a restart loses none."""
    now = timezone.now()
    due = list(
        Execution.objects.filter(status=ExecutionStatus.ACTIVE, wait_until__lte=now)
        .order_by("wait_until")
        .values_list("pk", flat=True)[:batch]
    )
    fired = sum(1 for pk in due if _safely(engine.execution_timeout, pk))
    expired = list(
        Execution.objects.filter(status=ExecutionStatus.ACTIVE, expires_at__lte=now).values_list(
            "pk", flat=True
        )[:batch]
    )
    for pk in expired:
        _safely(engine.execution_expire, pk)
    swept = sum(
        1 for pk in inbound_missed(now=now, batch=batch) if _safely(flow_inbound_handle, pk)
    )
    return {"timeouts": fired, "expired": len(expired), "swept": swept}


def inbound_missed(*, now, batch: int = TICK_BATCH) -> list[int]:
    """Recent inbound messages on senders that have a flow which no flow has taken (no step)
    and no agent holds: their task never ran. One query."""
    attached = Sender.objects.filter(
        Q(flow_attachment__isnull=False) | Q(service__flow_attachment__isnull=False)
    )
    return list(
        Message.objects.filter(
            direction=Direction.INBOUND,
            date_created__gte=now - SWEEP_WINDOW,
            date_created__lte=now - SWEEP_AFTER,
            flow_step__isnull=True,
            opt_out_type="",
            sender__in=attached,
        )
        .exclude(conversation__handoffs__task__assignment_status__in=LIVE_TASK_STATES)
        .order_by("id")
        .values_list("pk", flat=True)[:batch]
    )


def _safely(action, pk: int) -> bool:
    try:
        return bool(action(pk))
    except Exception:  # one broken execution must not stop the tick for the others
        log.exception("flows tick: execution %s", pk)
        return False
