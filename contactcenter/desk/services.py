"""The desk's writes. So far: taking a conversation over from a bot flow (hand-off)."""

from dataclasses import dataclass
from typing import Any

from django.db import transaction

from contactcenter.desk.models import Handoff
from messaging.models import Conversation
from routing.errors import RoutingError
from routing.models import WAITING, TaskChannel, TaskStatus, Workflow
from routing.services.tasks import task_create

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
