"""The desk's writes: taking a conversation over from a bot flow (hand-off), and what
agents and supervisors do with it (accept, reply, notes, transfer, wrap-up, complete).

Live events are published by `events.publish` after commit; routing's own events reach the
browsers through `hooks.routing_events`.
"""

from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.db.models.functions import Greatest
from django.utils import timezone

from contactcenter.desk import events, selectors
from contactcenter.desk.models import Disposition, Handoff, Note
from messaging.models import Channel, Conversation, Direction, Message
from messaging.services.messages import MessageRequest, message_create
from messaging.windows import HUMAN_AGENT
from routing.errors import RoutingError
from routing.models import (
    WAITING,
    Activity,
    Reservation,
    Task,
    TaskChannel,
    TaskQueue,
    TaskStatus,
    Worker,
    Workflow,
)
from routing.services.config import workflow_create, workflow_update
from routing.services.reservations import reservation_accept, reservation_reject
from routing.services.tasks import task_cancel, task_complete, task_create, task_wrapup
from routing.services.workers import worker_activity_set

# Tasks in these states still hold the conversation: new messages go to the people.
LIVE_TASK_STATES = (*WAITING, TaskStatus.ASSIGNED, TaskStatus.WRAPPING)


@dataclass(frozen=True)
class HandoffRequest:
    workflow: str  # a workflow sid (WW…) or its friendly name
    task_channel: str = ""  # unique name or TC… sid; empty: the conversation's channel
    attributes: dict[str, Any] | None = None  # on top of the ones describing the conversation
    priority: int = 0
    timeout: int = 86400
    execution_sid: str = ""


def conversation_attributes(conversation: Conversation, *, language: str = "") -> dict:
    """What a task says about its conversation (REFERENCE.md 8: channelType, customerAddress,
    name, conversation id, language); routing expressions match on these."""
    contact = conversation.contact
    return {
        "channelType": conversation.channel,
        "customerAddress": contact.address,
        "name": contact.name or contact.address,
        "conversationSid": conversation.sid,
        "businessAddress": conversation.business_address,
        "language": language or contact.attributes.get("language", ""),
    }


def _workflow(reference: str) -> Workflow:
    reference = (reference or "").strip()
    workflow = Workflow.objects.select_related("workspace").filter(sid=reference).first()
    if workflow is None and reference:
        matches = list(
            Workflow.objects.select_related("workspace").filter(friendly_name=reference)[:2]
        )
        if len(matches) > 1:
            raise RoutingError(20001, f"More than one workflow is named {reference!r}.")
        workflow = matches[0] if matches else None
    if workflow is None:
        raise RoutingError(20404, f"No workflow {reference!r}.", "workflow")
    return workflow


def _task_channel(workflow: Workflow, reference: str, conversation: Conversation) -> str:
    reference = (reference or "").strip() or conversation.channel
    if reference.startswith("TC"):
        channel = TaskChannel.objects.filter(workspace=workflow.workspace, sid=reference).first()
        if channel is None:
            raise RoutingError(20404, f"No task channel {reference} in this workspace.")
        return channel.unique_name
    return reference


def conversation_live_handoff(conversation_id: int) -> Handoff | None:
    """The hand-off whose task still holds the conversation, if any."""
    return (
        Handoff.objects.filter(
            conversation_id=conversation_id, task__assignment_status__in=LIVE_TASK_STATES
        )
        .select_related("task")
        .order_by("-date_created")
        .first()
    )


@transaction.atomic
def conversation_handoff(*, conversation: Conversation, request: HandoffRequest) -> Handoff:
    """Create the routing task that carries `conversation` to an agent. RoutingError when
    routing refuses (unknown workflow or channel, bad attributes, ...)."""
    existing = conversation_live_handoff(conversation.pk)
    if existing is not None:
        return existing
    workflow = _workflow(request.workflow)
    attributes = request.attributes or {}
    base = conversation_attributes(conversation, language=str(attributes.get("language", "")))
    task = task_create(
        workspace=workflow.workspace,
        workflow=workflow,
        attributes={**base, **attributes},
        task_channel=_task_channel(workflow, request.task_channel, conversation),
        priority=request.priority,
        timeout=request.timeout,
        actor="flow",
    )
    return Handoff.objects.create(
        conversation=conversation, task=task, execution_sid=request.execution_sid
    )


# ---------------------------------------------------------------- the agent's actions


def _actor(user) -> str:
    return f"user:{user.username}"


def _own_reservation(user, reservation_sid: str) -> Reservation:
    reservation = (
        Reservation.objects.filter(sid=reservation_sid).select_related("worker", "task").first()
    )
    if reservation is None:
        raise RoutingError(20404, f"No reservation {reservation_sid}.")
    if reservation.worker.user_id != user.pk:
        raise RoutingError(20403, "This offer is for another agent.")
    return reservation


def offer_accept(*, user, reservation_sid: str) -> Handoff | None:
    """Accept an offer; the conversation opens on the agent's desk."""
    reservation = reservation_accept(_own_reservation(user, reservation_sid), actor=_actor(user))
    return (
        Handoff.objects.filter(task_id=reservation.task_id).select_related("conversation").first()
    )


def offer_reject(*, user, reservation_sid: str) -> Reservation:
    return reservation_reject(
        _own_reservation(user, reservation_sid), actor=_actor(user), reason="rejected on the desk"
    )


def activity_change(*, user, worker: Worker, activity_sid: str) -> Worker:
    """Move `worker` (the user's own, or any for a supervisor) to an activity."""
    if worker.user_id != user.pk and not selectors.is_supervisor(user):
        raise RoutingError(20403, "You may only change your own activity.")
    activity = Activity.objects.filter(workspace_id=worker.workspace_id, sid=activity_sid).first()
    if activity is None:
        raise RoutingError(
            20001, f"No activity {activity_sid!r} in this workspace.", "activity_sid"
        )
    return worker_activity_set(worker, activity=activity, actor=_actor(user))


def _held(user, conversation_sid: str) -> tuple[Handoff, Reservation]:
    _handoff, reservation = selectors.conversation_for_viewer(user, conversation_sid)
    if reservation is None:
        raise RoutingError(20403, "Supervisors monitor this conversation read-only.")
    return reservation.task.handoff, reservation


def agent_message_send(
    *,
    user,
    conversation_sid: str,
    body: str = "",
    content_sid: str = "",
    content_variables: dict[str, str] | None = None,
    media_urls: tuple[str, ...] = (),
) -> Message:
    """A reply from the agent through messaging's outbound pipeline (validation, opt-out,
    window, encoding, pacing); shown live on the conversation's stream."""
    handoff, _reservation = _held(user, conversation_sid)
    conversation = handoff.conversation
    request = MessageRequest(
        to=conversation.contact.address,
        from_=conversation.business_address,
        body=body or None,
        media_urls=media_urls,
        content_sid=content_sid or None,
        content_variables=content_variables or None,
        tags={"desk_agent": user.username, "desk_agent_name": selectors.person_name(user)},
        direction=Direction.OUTBOUND_REPLY,
        messenger_tag=HUMAN_AGENT if conversation.channel == Channel.MESSENGER else "",
    )
    with transaction.atomic():
        message = message_create(account=conversation.account, request=request, source="desk")
        Handoff.objects.filter(pk=handoff.pk).update(
            last_read_message_id=Greatest("last_read_message_id", message.pk)
        )
        message_announce(message.pk)
    return message


def message_announce(message_id: int) -> None:
    """Publish a message on its conversation's stream, if the desk holds the conversation."""
    message = (
        Message.objects.filter(pk=message_id, conversation__isnull=False)
        .select_related("conversation")
        .prefetch_related("media")
        .first()
    )
    if message is None or conversation_live_handoff(message.conversation_id) is None:
        return
    events.publish(
        events.conversation_stream(message.conversation.sid),
        events.MessageCreated(message=selectors.message_json(message)),
    )


def message_status_announce(message_id: int) -> None:
    row = (
        Message.objects.filter(
            pk=message_id,
            conversation__handoffs__task__assignment_status__in=LIVE_TASK_STATES,
        )
        .values("sid", "status", "error_code", "error_message", "conversation__sid")
        .first()
    )
    if row is None:
        return
    events.publish(
        events.conversation_stream(row["conversation__sid"]),
        events.MessageStatusChanged(
            sid=row["sid"],
            status=row["status"],
            error_code=row["error_code"],
            error_message=row["error_message"],
        ),
    )


def note_add(*, user, conversation_sid: str, body: str, system: bool = False) -> Note:
    body = (body or "").strip()
    if not body:
        raise RoutingError(20001, "Write the note first.", "body")
    if len(body) > 4000:
        raise RoutingError(20001, "A note is at most 4,000 characters.", "body")
    handoff, _reservation = _held(user, conversation_sid)
    return _note(handoff.conversation, author=user, body=body, system=system)


def _note(conversation: Conversation, *, author, body: str, system: bool) -> Note:
    note = Note.objects.create(conversation=conversation, author=author, body=body, system=system)
    events.publish(
        events.conversation_stream(conversation.sid),
        events.NoteCreated(note=selectors.note_json(note)),
    )
    return note


def conversation_mark_read(*, user, conversation_sid: str) -> None:
    handoff, _reservation = _held(user, conversation_sid)
    last = (
        Message.objects.filter(conversation_id=handoff.conversation_id)
        .order_by("-id")
        .values_list("id", flat=True)
        .first()
    )
    if last:
        Handoff.objects.filter(pk=handoff.pk).update(
            last_read_message_id=Greatest("last_read_message_id", last)
        )


def conversation_wrapup(*, user, conversation_sid: str, disposition: str, notes: str) -> Handoff:
    """assigned → wrapping, with the disposition and notes (capacity is still held)."""
    notes = (notes or "").strip()
    chosen = Disposition.objects.filter(code=disposition, active=True).first()
    if chosen is None and (disposition or Disposition.objects.filter(active=True).exists()):
        raise RoutingError(20001, "Choose a disposition code.", "disposition")
    if chosen is not None and chosen.requires_notes and not notes:
        raise RoutingError(20001, f"“{chosen.label}” needs wrap-up notes.", "notes")
    if len(notes) > 4000:
        raise RoutingError(20001, "Wrap-up notes are at most 4,000 characters.", "notes")
    with transaction.atomic():
        handoff, reservation = _held(user, conversation_sid)
        task_wrapup(reservation.task, actor=_actor(user))
        handoff.disposition = chosen
        handoff.wrapup_notes = notes
        handoff.wrapped_up_by = user
        handoff.wrapped_up_at = timezone.now()
        handoff.save(
            update_fields=["disposition", "wrapup_notes", "wrapped_up_by", "wrapped_up_at"]
        )
    return handoff


def conversation_complete(*, user, conversation_sid: str) -> Handoff:
    """wrapping → completed: the agent's capacity is freed and routing offers the next task."""
    handoff, reservation = _held(user, conversation_sid)
    if reservation.task.assignment_status != TaskStatus.WRAPPING:
        raise RoutingError(20409, "Wrap up the conversation (disposition and notes) first.")
    task_complete(reservation.task, reason="completed on the desk", actor=_actor(user))
    return handoff


# ---------------------------------------------------------------- transfer

TRANSFER_WORKFLOW = "Desk transfers"


def _transfer_configuration(workspace_id: int) -> dict:
    """One filter per queue (`transferQueue`) and one for a named agent (`transferWorker`,
    routed as a known worker): the desk's own workflow, rebuilt when queues change."""
    queues = list(TaskQueue.objects.filter(workspace_id=workspace_id).order_by("id"))
    filters = [
        {
            "filter_friendly_name": "To a named agent",
            "expression": "transferMode == 'worker'",
            "targets": [{"queue": queues[0].sid, "known_worker_sid": "transferWorker"}],
        }
    ]
    filters += [
        {
            "filter_friendly_name": f"To {queue.friendly_name}"[:64],
            "expression": f"transferQueue == '{queue.sid}'",
            "targets": [{"queue": queue.sid}],
        }
        for queue in queues
    ]
    return {"task_routing": {"filters": filters, "default_filter": {"queue": queues[0].sid}}}


def transfer_workflow(workspace) -> Workflow:
    if not TaskQueue.objects.filter(workspace=workspace).exists():
        raise RoutingError(20409, "This workspace has no queue to transfer to.")
    configuration = _transfer_configuration(workspace.pk)
    workflow = Workflow.objects.filter(workspace=workspace, friendly_name=TRANSFER_WORKFLOW).first()
    if workflow is None:
        return workflow_create(
            workspace=workspace, friendly_name=TRANSFER_WORKFLOW, configuration=configuration
        )
    if workflow.configuration != configuration:
        workflow = workflow_update(workflow, configuration=configuration)
    return workflow


@dataclass(frozen=True)
class TransferTarget:
    queue_sid: str = ""
    worker_sid: str = ""


def _transfer_attributes(task: Task, target: TransferTarget) -> tuple[dict, str]:
    attributes = {
        k: v
        for k, v in (task.attributes or {}).items()
        if k not in ("transferMode", "transferQueue", "transferWorker")
    }
    attributes["transferredFromTask"] = task.sid
    if target.worker_sid:
        worker = Worker.objects.filter(
            workspace_id=task.workspace_id, sid=target.worker_sid
        ).first()
        if worker is None:
            raise RoutingError(
                20404, f"No agent {target.worker_sid} in this workspace.", "worker_sid"
            )
        attributes.update(transferMode="worker", transferWorker=worker.sid)
        return attributes, worker.friendly_name
    queue = TaskQueue.objects.filter(workspace_id=task.workspace_id, sid=target.queue_sid).first()
    if queue is None:
        raise RoutingError(20404, f"No queue {target.queue_sid!r} in this workspace.", "queue_sid")
    attributes.update(transferMode="queue", transferQueue=queue.sid)
    return attributes, queue.friendly_name


def task_transfer(*, user, task_sid: str, target: TransferTarget) -> Handoff:
    """Hand the task's conversation to another queue or agent: the current task ends
    (completed if someone held it, canceled if it was waiting) and a new task is routed by
    the desk's transfer workflow. One transaction: nothing is half-moved."""
    if bool(target.queue_sid) == bool(target.worker_sid):
        raise RoutingError(20001, "Choose a queue or an agent to transfer to.", "queue_sid")
    with transaction.atomic():
        task = Task.objects.select_for_update().filter(sid=task_sid).first()
        if task is None:
            raise RoutingError(20404, f"No task {task_sid}.")
        handoff = Handoff.objects.filter(task=task).select_related("conversation").first()
        if handoff is None:
            raise RoutingError(20409, "Only conversations on the desk can be transferred.")
        _require_transfer_right(user, task)
        attributes, target_name = _transfer_attributes(task, target)
        workflow = transfer_workflow(task.workspace)
        reason = f"transferred to {target_name} by {user.username}"
        if task.assignment_status in (TaskStatus.ASSIGNED, TaskStatus.WRAPPING):
            task_complete(task, reason=reason, actor=_actor(user))
        elif task.assignment_status in WAITING:
            task_cancel(task, reason=reason, actor=_actor(user))
        else:
            raise RoutingError(20409, f"The task is {task.assignment_status}; it cannot move.")
        new_task = task_create(
            workspace=task.workspace,
            workflow=workflow,
            attributes=attributes,
            task_channel=task.task_channel.unique_name,
            priority=task.priority,
            timeout=task.timeout,
            actor=_actor(user),
        )
        new = Handoff.objects.create(
            conversation=handoff.conversation,
            task=new_task,
            execution_sid=handoff.execution_sid,
            transferred_from=handoff,
        )
        _note(
            handoff.conversation,
            author=user,
            body=f"Transferred to {target_name}.",
            system=True,
        )
    return new


def _require_transfer_right(user, task: Task) -> None:
    if selectors.is_supervisor(user):
        return
    holds = Reservation.objects.filter(
        task=task, worker__user=user, status__in=selectors.HELD
    ).exists()
    if not holds:
        raise RoutingError(20403, "You may only transfer conversations you hold.")


def conversation_transfer(*, user, conversation_sid: str, target: TransferTarget) -> Handoff:
    _handoff, reservation = _held(user, conversation_sid)
    return task_transfer(user=user, task_sid=reservation.task.sid, target=target)
