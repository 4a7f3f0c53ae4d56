"""Routing events (REFERENCE.md 7): written in the same transaction as the change they
describe, reported to the registered handlers after commit, and POSTed (signed) to the
workspace's event callback URL by a Celery task when one is configured."""

import logging
from typing import Any

from django.db import transaction

from routing import hooks
from routing.models import CallbackState, Event, Workspace

log = logging.getLogger(__name__)

EVENT_TYPES = (
    "task.created",
    "task.updated",
    "task.canceled",
    "task.wrapup",
    "task.completed",
    "task.deleted",
    "task-queue.entered",
    "task-queue.moved",
    "task-queue.timeout",
    "reservation.created",
    "reservation.accepted",
    "reservation.rejected",
    "reservation.timeout",
    "reservation.canceled",
    "reservation.rescinded",
    "reservation.wrapup",
    "reservation.completed",
    "worker.created",
    "worker.activity.update",
    "worker.attributes.update",
    "worker.capacity.update",
    "workflow.target-matched",
    "workflow.timeout",
    "workflow.skipped",
)

RESOURCE_TYPES = {
    "task": "task",
    "task-queue": "task",
    "reservation": "reservation",
    "worker": "worker",
    "workflow": "task",
}


def event_record(
    workspace: Workspace,
    event_type: str,
    *,
    resource_sid: str,
    description: str,
    data: dict[str, Any] | None = None,
    actor: str = "system",
) -> Event:
    """Write one event; hand it to the handlers and the callback after commit."""
    assert event_type in EVENT_TYPES, event_type
    wants_callback = bool(workspace.event_callback_url) and (
        not workspace.events_filter or event_type in workspace.events_filter
    )
    event = Event.objects.create(
        workspace=workspace,
        event_type=event_type,
        resource_type=RESOURCE_TYPES[event_type.split(".", 1)[0]],
        resource_sid=resource_sid,
        description=description[:255],
        data=data or {},
        actor=actor[:64],
        callback_state=CallbackState.PENDING if wants_callback else CallbackState.NONE,
    )
    _after_commit(event, workspace.sid, wants_callback)
    return event


def as_record(event: Event, workspace_sid: str) -> dict[str, Any]:
    """The JSON shape of an event: handlers, the callback body and the API all use it."""
    return {
        "sid": event.sid,
        "workspace_sid": workspace_sid,
        "event_type": event.event_type,
        "resource_type": event.resource_type,
        "resource_sid": event.resource_sid,
        "description": event.description,
        "actor": event.actor,
        "data": event.data,
        "date_created": event.date_created.isoformat(),
    }


def _after_commit(event: Event, workspace_sid: str, wants_callback: bool) -> None:
    record = as_record(event, workspace_sid)

    def report() -> None:
        for handler in hooks.event_handlers():
            try:
                handler([record])
            except Exception:  # one broken handler must not stop routing or the others
                log.exception("routing event handler %r failed on %s", handler, event.sid)
        if wants_callback:
            from routing.tasks import event_callback_deliver

            event_callback_deliver.delay(event.pk)

    transaction.on_commit(report)
