"""Reservations: accept, reject, time out; wrap-up and complete go through the task."""

from django.db import transaction
from django.utils import timezone

from routing.errors import RoutingError, conflict
from routing.events import event_record
from routing.models import (
    WAITING,
    Activity,
    Reservation,
    ReservationStatus,
    Task,
    TaskStatus,
)
from routing.services.assignment import (
    assignment_request,
    capacity_release,
    reservation_data,
    reservations_end,
)
from routing.services.tasks import task_complete, task_wrapup
from routing.services.workers import worker_activity_set_locked


def _lock(reservation_id: int, *, skip_locked: bool = False) -> tuple[Task, Reservation] | None:
    """Lock the task, then the reservation (the engine's lock order). None when skipping a
    locked task; RoutingError 20404 when the task or reservation is gone."""
    task_id = (
        Reservation.objects.filter(pk=reservation_id).values_list("task_id", flat=True).first()
    )
    if task_id is None:
        raise RoutingError(20404, "No such reservation.")
    task = (
        Task.objects.select_for_update(skip_locked=skip_locked, of=("self",))
        .select_related("workspace", "workflow", "task_channel", "queue")
        .filter(pk=task_id)
        .first()
    )
    if task is None:
        if skip_locked and Task.objects.filter(pk=task_id).exists():
            return None
        raise RoutingError(20404, "No such reservation.")
    reservation = (
        Reservation.objects.select_for_update(of=("self",))
        .select_related("worker", "worker__activity", "worker_channel")
        .filter(pk=reservation_id)
        .first()
    )
    if reservation is None:
        raise RoutingError(20404, "No such reservation.")
    return task, reservation


def _require_pending(reservation: Reservation) -> None:
    if reservation.status != ReservationStatus.PENDING:
        raise conflict(f"The reservation is {reservation.status}, not pending.")


@transaction.atomic
def reservation_accept(reservation: Reservation, *, actor: str = "api") -> Reservation:
    """pending → accepted; the task becomes assigned; other pending offers are rescinded."""
    task, reservation = _lock(reservation.pk)
    _require_pending(reservation)
    if task.assignment_status not in WAITING:
        raise conflict(f"The task is {task.assignment_status}.")
    now = timezone.now()
    reservation.status = ReservationStatus.ACCEPTED
    reservation.accepted_at = now
    reservation.save(update_fields=["status", "accepted_at", "date_updated"])
    task.assignment_status = TaskStatus.ASSIGNED
    task.assigned_at = now
    task.step_deadline = None
    task.save(update_fields=["assignment_status", "assigned_at", "step_deadline", "date_updated"])
    event_record(
        task.workspace,
        "reservation.accepted",
        resource_sid=reservation.sid,
        description=f"{reservation.worker.friendly_name} accepted the task",
        data={
            **reservation_data(reservation, task),
            "wait_seconds": (now - task.date_created).total_seconds(),
        },
        actor=actor,
    )
    freed = reservations_end(
        task,
        Reservation.objects.filter(task=task, status=ReservationStatus.PENDING),
        ReservationStatus.RESCINDED,
        now=now,
        actor="system",
    )
    assignment_request(workers=freed)
    return reservation


@transaction.atomic
def reservation_reject(
    reservation: Reservation,
    *,
    activity: Activity | None = None,
    actor: str = "api",
    reason: str = "",
) -> Reservation:
    """pending → rejected; the worker may move to `activity`; the task is offered again."""
    task, reservation = _lock(reservation.pk)
    _require_pending(reservation)
    if activity is not None and activity.workspace_id != task.workspace_id:
        raise RoutingError(20001, "Choose an activity of this workspace.", "activity")
    _end(task, reservation, ReservationStatus.REJECTED, actor=actor, reason=reason)
    if activity is not None:
        worker_activity_set_locked(reservation.worker_id, activity, actor=actor)
    return reservation


def reservation_timeout(reservation_id: int) -> bool:
    """A pending reservation past its timeout: the worker goes to the workspace's timeout
    activity and the task is offered again."""
    with transaction.atomic():
        try:
            locked = _lock(reservation_id, skip_locked=True)
        except RoutingError:  # deleted meanwhile
            return False
        if locked is None:
            return False
        task, reservation = locked
        if (
            reservation.status != ReservationStatus.PENDING
            or reservation.timeout_at > timezone.now()
        ):
            return False
        _end(task, reservation, ReservationStatus.TIMEOUT, actor="system", reason="")
        timeout_activity = task.workspace.timeout_activity
        if timeout_activity is not None:
            worker_activity_set_locked(reservation.worker_id, timeout_activity, actor="system")
        return True


def _end(task: Task, reservation: Reservation, status: str, *, actor: str, reason: str) -> None:
    now = timezone.now()
    reservation.status = status
    reservation.ended_at = now
    reservation.save(update_fields=["status", "ended_at", "date_updated"])
    capacity_release(reservation.worker_channel_id)
    data = reservation_data(reservation, task)
    if reason:
        data["reason"] = reason
    event_record(
        task.workspace,
        f"reservation.{status}",
        resource_sid=reservation.sid,
        description=f"{reservation.worker.friendly_name}: reservation {status}",
        data=data,
        actor=actor,
    )
    others = Reservation.objects.filter(task=task, status=ReservationStatus.PENDING).exists()
    if task.assignment_status == TaskStatus.RESERVED and not others:
        task.assignment_status = TaskStatus.PENDING
        task.save(update_fields=["assignment_status", "date_updated"])
    assignment_request(tasks=[task.pk], workers=[reservation.worker_id])


def reservation_wrapup(reservation: Reservation, *, actor: str = "api") -> Reservation:
    if reservation.status != ReservationStatus.ACCEPTED:
        raise conflict(f"The reservation is {reservation.status}, not accepted.")
    task_wrapup(reservation.task, actor=actor)
    reservation.refresh_from_db()
    return reservation


def reservation_complete(reservation: Reservation, *, actor: str = "api") -> Reservation:
    if reservation.status not in (ReservationStatus.ACCEPTED, ReservationStatus.WRAPPING):
        raise conflict(f"The reservation is {reservation.status}; accept it first.")
    task_complete(reservation.task, actor=actor)
    reservation.refresh_from_db()
    return reservation
