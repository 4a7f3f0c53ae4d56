"""Workers: creation, attributes, activity, capacity per channel."""

from typing import Any

from django.db import transaction
from django.utils import timezone

from routing.errors import RoutingError, conflict, invalid
from routing.events import event_record
from routing.models import (
    MAX_CHANNEL_CAPACITY,
    Activity,
    Reservation,
    ReservationStatus,
    TaskChannel,
    Worker,
    WorkerChannel,
    Workspace,
)
from routing.services.assignment import assignment_request
from routing.services.config import worker_memberships_refresh
from routing.services.validation import full_clean

# Capacity of a new worker per channel: one conversation at a time on each messaging channel.
DEFAULT_CAPACITY = 1


@transaction.atomic
def worker_create(
    *,
    workspace: Workspace,
    friendly_name: str,
    attributes: dict | None = None,
    activity: Activity | None = None,
    user=None,
    capacities: dict[str, int] | None = None,
    actor: str = "system",
) -> Worker:
    """A worker in the workspace's default activity (unless given), with one channel row per
    task channel (capacity from `capacities`, else 1)."""
    now = timezone.now()
    activity = activity or workspace.default_activity
    if activity is None:
        raise invalid("activity", "The workspace has no default activity; choose one.")
    worker = Worker(
        workspace=workspace,
        friendly_name=friendly_name,
        attributes=attributes if attributes is not None else {},
        activity=activity,
        available=activity.available,
        activity_changed_at=now,
        idle_since=now,
        user=user,
    )
    full_clean(worker)
    worker.save()
    capacities = capacities or {}
    channels = {c.unique_name: c for c in TaskChannel.objects.filter(workspace=workspace)}
    unknown = set(capacities) - set(channels)
    if unknown:
        raise invalid("capacities", f"no task channel {sorted(unknown)[0]!r} in this workspace")
    for name, channel in channels.items():
        capacity = capacities.get(name, DEFAULT_CAPACITY)
        _check_capacity(capacity)
        WorkerChannel.objects.create(worker=worker, task_channel=channel, capacity=capacity)
    worker_memberships_refresh(worker)
    event_record(
        workspace,
        "worker.created",
        resource_sid=worker.sid,
        description=f"Worker {friendly_name} created",
        data=worker_data(worker),
        actor=actor,
    )
    if worker.available:
        assignment_request(workers=[worker.pk])
    return worker


@transaction.atomic
def worker_update(
    worker: Worker,
    *,
    friendly_name: str | None = None,
    attributes: dict | None = None,
    user: Any = ...,
    actor: str = "system",
) -> Worker:
    locked = Worker.objects.select_for_update().get(pk=worker.pk)
    if friendly_name is not None:
        locked.friendly_name = friendly_name
    if user is not ...:
        locked.user = user
    attributes_changed = attributes is not None and attributes != locked.attributes
    if attributes is not None:
        locked.attributes = attributes
    full_clean(locked)
    locked.save()
    if attributes_changed:
        joined = worker_memberships_refresh(locked)
        event_record(
            locked.workspace,
            "worker.attributes.update",
            resource_sid=locked.sid,
            description=f"Attributes of {locked.friendly_name} changed",
            data=worker_data(locked),
            actor=actor,
        )
        if joined and locked.available:
            assignment_request(workers=[locked.pk])
    return locked


def worker_activity_set(worker: Worker, *, activity: Activity, actor: str = "system") -> Worker:
    """Move a worker to an activity. Leaving availability rejects its pending offers (each
    task is re-routed); becoming available triggers an assignment attempt."""
    if activity.workspace_id != worker.workspace_id:
        raise invalid("activity", "Choose an activity of the worker's workspace.")
    with transaction.atomic():
        locked = worker_activity_set_locked(worker.pk, activity, actor=actor)
        if locked.available:
            assignment_request(workers=[locked.pk])
    if not activity.available:
        from routing.services.reservations import reservation_reject

        for reservation in Reservation.objects.filter(
            worker_id=worker.pk, status=ReservationStatus.PENDING
        ):
            try:
                reservation_reject(reservation, actor=actor, reason="worker became unavailable")
            except RoutingError:  # accepted or ended meanwhile
                continue
    return locked


def worker_activity_set_locked(worker_id: int, activity: Activity, *, actor: str) -> Worker:
    """The activity change itself, inside the caller's transaction (lock order: the caller
    may hold task rows; this takes the worker row)."""
    worker = (
        Worker.objects.select_for_update(of=("self",))
        .select_related("workspace", "activity")
        .get(pk=worker_id)
    )
    if worker.activity_id == activity.pk:
        return worker
    now = timezone.now()
    previous = worker.activity
    seconds_in_previous = int((now - worker.activity_changed_at).total_seconds())
    worker.activity = activity
    worker.available = activity.available
    worker.activity_changed_at = now
    if activity.available and not previous.available:
        worker.idle_since = now
    worker.save(
        update_fields=["activity", "available", "activity_changed_at", "idle_since", "date_updated"]
    )
    event_record(
        worker.workspace,
        "worker.activity.update",
        resource_sid=worker.sid,
        description=f"{worker.friendly_name}: {previous.friendly_name} → {activity.friendly_name}",
        data={
            **worker_data(worker),
            "previous_activity_sid": previous.sid,
            "previous_activity_name": previous.friendly_name,
            "time_in_previous_activity": seconds_in_previous,
        },
        actor=actor,
    )
    return worker


@transaction.atomic
def worker_channel_update(
    worker: Worker,
    *,
    task_channel: str,
    capacity: int | None = None,
    available: bool | None = None,
    actor: str = "system",
) -> WorkerChannel:
    wc = (
        WorkerChannel.objects.select_for_update()
        .select_related("task_channel", "worker__workspace")
        .filter(worker=worker, task_channel__unique_name=task_channel)
        .first()
    )
    if wc is None:
        raise RoutingError(20404, f"The worker has no channel {task_channel!r}.", "task_channel")
    if capacity is not None:
        _check_capacity(capacity)
        wc.capacity = capacity
    if available is not None:
        wc.available = available
    wc.save(update_fields=["capacity", "available", "date_updated"])
    event_record(
        wc.worker.workspace,
        "worker.capacity.update",
        resource_sid=wc.worker.sid,
        description=f"{wc.worker.friendly_name}: {task_channel} capacity {wc.capacity}"
        + ("" if wc.available else " (off)"),
        data={
            **worker_data(wc.worker),
            "task_channel": task_channel,
            "configured_capacity": wc.capacity,
            "channel_available": wc.available,
        },
        actor=actor,
    )
    if wc.available and wc.assigned_tasks < wc.capacity:
        assignment_request(workers=[worker.pk])
    return wc


@transaction.atomic
def worker_delete(worker: Worker) -> None:
    if Reservation.objects.filter(
        worker=worker, status__in=["pending", "accepted", "wrapping"]
    ).exists():
        raise conflict("The worker holds reservations; complete or reject them first.")
    worker.delete()


def worker_data(worker: Worker) -> dict[str, Any]:
    return {
        "worker_sid": worker.sid,
        "worker_name": worker.friendly_name,
        "worker_activity_sid": worker.activity.sid,
        "worker_activity_name": worker.activity.friendly_name,
        "worker_available": worker.available,
        "worker_attributes": worker.attributes,
    }


def _check_capacity(capacity: Any) -> None:
    if isinstance(capacity, bool) or not isinstance(capacity, int):
        raise invalid("capacity", "Capacity must be an integer.")
    if not 0 <= capacity <= MAX_CHANNEL_CAPACITY:
        raise invalid("capacity", f"Capacity must be between 0 and {MAX_CHANNEL_CAPACITY}.")
