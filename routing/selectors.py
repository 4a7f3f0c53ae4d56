"""Reads: lookups by sid, who may act on what, events, statistics.

Real-time statistics are computed when asked, over the *active* tasks only (a partial index
covers them: pending, reserved, assigned, wrapping) and the workspace's workers — never a count
over every task ever created, and nothing extra written on the hot assignment path (a shared
counter row would serialise every assignment of a queue). Cumulative statistics read the
append-only event log through its (workspace, type, date) index.
"""

import math
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.db.models import Count, F
from django.utils import timezone

from routing.errors import RoutingError
from routing.models import (
    ACTIVE_TASK,
    WAITING,
    Activity,
    Event,
    QueueMembership,
    Reservation,
    Task,
    TaskQueue,
    TaskStatus,
    Worker,
    WorkerChannel,
    Workspace,
)

SUPERVISE = "routing.supervise_workspace"
DEFAULT_WAIT_THRESHOLDS = (30, 60, 120, 300)


# ---------------------------------------------------------------- lookups and permissions


def get_by_sid(queryset, sid: str, *, label: str):
    obj = queryset.filter(sid=sid).first()
    if obj is None:
        raise RoutingError(20404, f"No {label} {sid}.")
    return obj


def can_configure(user) -> bool:
    """Admins: create, change and delete configuration."""
    return bool(user and user.is_active and user.is_superuser)


def can_supervise(user) -> bool:
    """Supervisors (and admins) act on any task, reservation or worker."""
    return bool(user and user.is_active and (user.is_superuser or user.has_perm(SUPERVISE)))


def worker_of_user(workspace: Workspace, user) -> Worker | None:
    if not (user and user.is_authenticated):
        return None
    return Worker.objects.filter(workspace=workspace, user=user).first()


def worker_for_actor(worker: Worker, user) -> Worker:
    """The worker, if `user` may act on it: its own person or a supervisor."""
    if can_supervise(user) or (worker.user_id is not None and worker.user_id == user.pk):
        return worker
    raise RoutingError(20403, "You may only act on your own worker.")


def reservation_for_actor(reservation: Reservation, user) -> Reservation:
    worker_for_actor(reservation.worker, user)
    return reservation


def task_for_actor(task: Task, user) -> Task:
    """Supervisors act on any task; an agent only on a task it holds a reservation for."""
    if can_supervise(user):
        return task
    holds = Reservation.objects.filter(
        task=task, worker__user=user, status__in=["pending", "accepted", "wrapping"]
    ).exists()
    if not holds:
        raise RoutingError(20403, "You may only act on tasks reserved for you.")
    return task


# ---------------------------------------------------------------- events


def events_list(
    workspace: Workspace,
    *,
    event_types: Iterable[str] = (),
    resource_sid: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    before_id: int | None = None,
    limit: int = 50,
) -> list[Event]:
    """Newest first; page with `before_id` (the last id of the previous page)."""
    events = Event.objects.filter(workspace=workspace)
    types = list(event_types)
    if types:
        events = events.filter(event_type__in=types)
    if resource_sid:
        events = events.filter(resource_sid=resource_sid)
    if start:
        events = events.filter(date_created__gte=start)
    if end:
        events = events.filter(date_created__lt=end)
    if before_id is not None:
        events = events.filter(id__lt=before_id)
    return list(events.order_by("-id")[:limit])


# ---------------------------------------------------------------- real-time statistics


def realtime_statistics(workspace: Workspace, *, queue: TaskQueue | None = None) -> dict[str, Any]:
    """Tasks by status and priority, the longest waiting task, available and eligible workers
    and workers per activity — for the workspace, or one queue and its members."""
    now = timezone.now()
    tasks = Task.objects.filter(workspace=workspace, assignment_status__in=ACTIVE_TASK)
    workers = Worker.objects.filter(workspace=workspace)
    if queue is not None:
        tasks = tasks.filter(queue=queue)
        workers = workers.filter(
            id__in=QueueMembership.objects.filter(queue=queue).values("worker_id")
        )

    by_status = {status: 0 for status in ACTIVE_TASK}
    for row in tasks.values("assignment_status").annotate(n=Count("id")):
        by_status[row["assignment_status"]] = row["n"]
    waiting = tasks.filter(assignment_status__in=WAITING)
    by_priority = {
        str(row["priority"]): row["n"]
        for row in waiting.values("priority").annotate(n=Count("id")).order_by("-priority")
    }
    oldest = waiting.order_by("date_created").values("sid", "date_created").first()

    per_activity = dict(workers.values_list("activity_id").annotate(n=Count("id")))
    activities = [
        {
            "sid": a.sid,
            "friendly_name": a.friendly_name,
            "available": a.available,
            "workers": per_activity.get(a.pk, 0),
        }
        for a in Activity.objects.filter(workspace=workspace).order_by("friendly_name")
    ]
    available = workers.filter(available=True)
    eligible = available.filter(
        id__in=WorkerChannel.objects.filter(
            available=True, capacity__gt=0, assigned_tasks__lt=F("capacity")
        ).values("worker_id")
    )
    return {
        "workspace_sid": workspace.sid,
        "task_queue_sid": queue.sid if queue else None,
        "total_tasks": sum(by_status.values()),
        "tasks_by_status": dict(by_status),
        "tasks_by_priority": by_priority,
        "longest_task_waiting_age": (
            int((now - oldest["date_created"]).total_seconds()) if oldest else 0
        ),
        "longest_task_waiting_sid": oldest["sid"] if oldest else None,
        "total_workers": workers.count(),
        "total_available_workers": available.count(),
        "total_eligible_workers": eligible.count(),
        "activity_statistics": activities,
    }


# ---------------------------------------------------------------- cumulative statistics


def cumulative_statistics(
    workspace: Workspace,
    *,
    queue: TaskQueue | None = None,
    start: datetime,
    end: datetime,
    split_by_wait_time: Iterable[int] = DEFAULT_WAIT_THRESHOLDS,
) -> dict[str, Any]:
    """What happened between `start` and `end` (from the event log and the reservations)."""
    events = Event.objects.filter(
        workspace=workspace, date_created__gte=start, date_created__lt=end
    )
    if queue is not None:
        events = events.filter(data__task_queue_sid=queue.sid)
    counts = dict(events.values_list("event_type").annotate(n=Count("id")))
    if queue is None:
        entered = counts.get("task.created", 0)
    else:
        entered = counts.get("task-queue.entered", 0) + counts.get("task-queue.moved", 0)

    accepted = Reservation.objects.filter(
        workspace=workspace, accepted_at__gte=start, accepted_at__lt=end
    ).select_related("task")
    if queue is not None:
        accepted = accepted.filter(queue=queue)
    waits, acceptance = [], []
    for reservation in accepted.only("accepted_at", "date_created", "task__date_created"):
        waits.append((reservation.accepted_at - reservation.task.date_created).total_seconds())
        acceptance.append((reservation.accepted_at - reservation.date_created).total_seconds())
    thresholds = sorted({int(t) for t in split_by_wait_time if int(t) > 0})
    return {
        "workspace_sid": workspace.sid,
        "task_queue_sid": queue.sid if queue else None,
        "start_time": start.isoformat(),
        "end_time": end.isoformat(),
        "tasks_entered": entered,
        "tasks_canceled": counts.get("task.canceled", 0),
        "tasks_completed": counts.get("task.completed", 0),
        "tasks_moved": counts.get("task-queue.moved", 0),
        "reservations_created": counts.get("reservation.created", 0),
        "reservations_accepted": counts.get("reservation.accepted", 0),
        "reservations_rejected": counts.get("reservation.rejected", 0),
        "reservations_timed_out": counts.get("reservation.timeout", 0),
        "reservations_canceled": counts.get("reservation.canceled", 0),
        "reservations_rescinded": counts.get("reservation.rescinded", 0),
        "avg_task_acceptance_time": round(sum(acceptance) / len(acceptance), 3)
        if acceptance
        else 0,
        "wait_duration_until_accepted": summary(waits),
        "split_by_wait_time": {
            str(t): {
                "below": sum(1 for w in waits if w < t),
                "above": sum(1 for w in waits if w >= t),
            }
            for t in thresholds
        },
    }


def summary(values: list[float]) -> dict[str, float]:
    """avg, min, max and the p50/p90/p99 percentiles (nearest rank) of `values`."""
    if not values:
        return {"avg": 0, "min": 0, "max": 0, "total": 0, "p50": 0, "p90": 0, "p99": 0}
    ordered = sorted(values)

    def rank(p: float) -> float:
        return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]

    return {
        "avg": round(sum(ordered) / len(ordered), 3),
        "min": round(ordered[0], 3),
        "max": round(ordered[-1], 3),
        "total": round(sum(ordered), 3),
        "p50": round(rank(50), 3),
        "p90": round(rank(90), 3),
        "p99": round(rank(99), 3),
    }


def tasks_list(
    workspace: Workspace,
    *,
    statuses: Iterable[str] = (),
    queue: TaskQueue | None = None,
    before_id: int | None = None,
    limit: int = 50,
) -> list[Task]:
    tasks = Task.objects.filter(workspace=workspace).select_related(
        "workflow", "task_channel", "queue"
    )
    wanted = [s for s in statuses if s in TaskStatus.values]
    if wanted:
        tasks = tasks.filter(assignment_status__in=wanted)
    if queue is not None:
        tasks = tasks.filter(queue=queue)
    if before_id is not None:
        tasks = tasks.filter(id__lt=before_id)
    return list(tasks.order_by("-id")[:limit])


def reservations_of_worker(worker: Worker, *, statuses: Iterable[str] = ()) -> list[Reservation]:
    reservations = Reservation.objects.filter(worker=worker).select_related("task", "queue")
    wanted = list(statuses)
    if wanted:
        reservations = reservations.filter(status__in=wanted)
    return list(reservations.order_by("-id")[:200])
