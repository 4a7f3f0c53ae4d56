"""What the engines tell the desk, turned into live events (registered in `apps.py`).

routing reports its events after commit; messaging reports inbound messages and status
changes after commit. Each handler publishes to the streams concerned and nothing else:
the browsers resync from the snapshots, so a handler that fails loses no data.
"""

from typing import Any

from contactcenter.desk import events, selectors, services

# reservation.* event → the status the desk shows
RESERVATION_STATUS = {
    "reservation.accepted": "accepted",
    "reservation.rejected": "rejected",
    "reservation.timeout": "timeout",
    "reservation.canceled": "canceled",
    "reservation.rescinded": "rescinded",
    "reservation.wrapup": "wrapping",
    "reservation.completed": "completed",
}
# After these the agent no longer holds the conversation: its sockets leave the stream.
RELEASED = {"completed", "rejected", "timeout", "canceled", "rescinded"}
# What moves the supervisor's figures (not every routing step: the stream stays small).
SUPERVISOR_EVENTS = {
    "task.created",
    "task.canceled",
    "task.wrapup",
    "task.completed",
    "task-queue.moved",
    "reservation.created",
    "reservation.accepted",
    "reservation.rejected",
    "reservation.timeout",
    "reservation.completed",
    "worker.capacity.update",
}


def routing_events(records: list[dict[str, Any]]) -> None:
    batch: list[tuple[str, events.LiveEvent, str | None]] = []
    for record in records:
        batch += _live_events(record)
    events.publish_many(batch)


def _live_events(record: dict[str, Any]) -> list[tuple[str, events.LiveEvent, str | None]]:
    event_type = record["event_type"]
    data = record.get("data") or {}
    found: list[tuple[str, events.LiveEvent, str | None]] = []
    if event_type == "reservation.created":
        offer = selectors.offer_event_by_sid(record["resource_sid"])
        if offer is not None:
            found.append((events.agent_stream(data["worker_sid"]), offer, None))
    elif event_type in RESERVATION_STATUS:
        found += _reservation_changed(event_type, data)
    elif event_type == "worker.activity.update":
        change = events.WorkerActivityChanged(
            worker_sid=data["worker_sid"],
            activity_sid=data["worker_activity_sid"],
            activity_name=data["worker_activity_name"],
            available=bool(data["worker_available"]),
            changed_at=record["date_created"],
        )
        found.append((events.agent_stream(data["worker_sid"]), change, None))
        found.append((events.SUPERVISOR_STREAM, change, None))
    if event_type in SUPERVISOR_EVENTS:
        changed = events.RoutingChanged(
            event_type=event_type,
            task_sid=data.get("task_sid"),
            worker_sid=data.get("worker_sid"),
            queue_sid=data.get("task_queue_sid"),
        )
        found.append((events.SUPERVISOR_STREAM, changed, None))
    return found


def _reservation_changed(event_type: str, data: dict[str, Any]):
    status = RESERVATION_STATUS[event_type]
    conversation_sid = (data.get("task_attributes") or {}).get("conversationSid")
    conversation = events.conversation_stream(conversation_sid) if conversation_sid else None
    updated = events.ReservationUpdated(
        reservation_sid=data["reservation_sid"],
        task_sid=data["task_sid"],
        conversation_sid=conversation_sid,
        status=status,
        reason="",
    )
    revoke = conversation if status in RELEASED else None
    found = []
    if conversation and status in ("accepted", "wrapping", "completed"):
        task_status = {"accepted": "assigned", "wrapping": "wrapping"}.get(status, "completed")
        agent = data.get("worker_name") if status != "completed" else None
        found.append(
            (
                conversation,
                events.ConversationUpdated(
                    conversation_sid=conversation_sid,
                    task_sid=data["task_sid"],
                    task_status=task_status,
                    agent_name=agent,
                ),
                None,
            )
        )
    # Last: the socket leaves the conversation on this frame, after the frame above.
    found.append((events.agent_stream(data["worker_sid"]), updated, revoke))
    return found


def inbound_message_arrived(message_id: int) -> None:
    services.message_announce(message_id)


def message_status_changed(message_id: int, status: str) -> None:
    services.message_status_announce(message_id)
