"""Where a task goes (workflow filters and targets) and who gets it (reservations).

Concurrency (several web processes and Celery workers at once, PostgreSQL):
- Lock order is always task → worker → worker channel. The assignment paths take task and
  worker rows with `FOR UPDATE SKIP LOCKED`, so they never wait on each other: a busy row
  is simply somebody else's job right now (the periodic sweep retries anything left over).
- Capacity is claimed with a conditional `UPDATE ... SET assigned_tasks = assigned_tasks + 1
  WHERE assigned_tasks < capacity` that must change one row, so no worker channel can exceed
  its capacity even if every lock were skipped; a partial unique index refuses a second
  accepted reservation of a task.
- On SQLite (the embedded default) transactions are IMMEDIATE, i.e. serialised.

Triggers: `assignment_request(tasks=..., workers=...)` runs the attempts after the current
transaction commits, in this process (milliseconds, no queue hop): on task created or
re-queued, worker available, capacity freed, reservation rejected or timed out, workflow step
timed out. `routing_tick` (Celery beat) is the safety net.
"""

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Exists, F, OuterRef, Q
from django.utils import timezone

from routing.events import event_record
from routing.expressions import lookup, sort_key
from routing.models import (
    HOLDING,
    WAITING,
    QueueMembership,
    Reservation,
    ReservationStatus,
    Task,
    TaskOrder,
    TaskStatus,
    Worker,
    WorkerChannel,
)
from routing.workflows import Routing, Target, workflow_routing

log = logging.getLogger(__name__)

# How many candidate workers one attempt examines when the target needs no sort by attribute.
CANDIDATE_BATCH = 50
# How many waiting tasks a worker-side attempt examines.
TASK_BATCH = 50


# The event a reservation writes when it reaches a status, where the names differ.
EVENT_FOR_STATUS = {ReservationStatus.WRAPPING: "reservation.wrapup"}


# ---------------------------------------------------------------- triggers


def assignment_request(*, tasks: Iterable[int] = (), workers: Iterable[int] = ()) -> None:
    """Try to assign these tasks and workers once the current transaction has committed."""
    task_ids, worker_ids = tuple(tasks), tuple(workers)
    if not (task_ids or worker_ids):
        return

    def run() -> None:
        for task_id in task_ids:
            task_assign(task_id)
        for worker_id in worker_ids:
            worker_assign(worker_id)

    transaction.on_commit(run, robust=True)


# ---------------------------------------------------------------- placement (workflow)


def task_place(task: Task, *, now: datetime, actor: str, after_filter: int | None = None) -> None:
    """Put a waiting task on the first filter that matches (or the one after `after_filter`),
    at its first target. Cancels the task when no filter is left. Caller holds the lock."""
    routing = workflow_routing(task.workflow)
    start = -1 if after_filter is None else after_filter
    index = routing.first_match(task.attributes, after=start)
    if index is None:
        if after_filter is None:
            task_cancel_locked(task, reason="No workflow filter matched the task", actor=actor)
        else:
            event_record(
                task.workspace,
                "workflow.timeout",
                resource_sid=task.sid,
                description="Task fell off the workflow",
                data={"task_sid": task.sid, "workflow_sid": task.workflow.sid},
                actor=actor,
            )
            task_cancel_locked(task, reason="Workflow Timeout", actor=actor)
        return
    task.filter_index = index
    task.filter_entered_at = now
    target_enter(task, routing, 0, now=now, actor=actor)


def target_enter(task: Task, routing: Routing, index: int, *, now: datetime, actor: str) -> None:
    """Move the task to target `index` of its filter, skipping targets whose `skip_if` holds;
    past the last target, to the next matching filter (or cancel). Caller holds the lock and
    saves the task."""
    flt = routing.filter_at(task.filter_index)
    while flt is not None and index < len(flt.targets):
        target = flt.targets[index]
        if target.skip_if is not None and _skip(task, target):
            event_record(
                task.workspace,
                "workflow.skipped",
                resource_sid=task.sid,
                description=f"Target {index} skipped",
                data=_step_data(task, flt.name, index, target),
                actor=actor,
            )
            index += 1
            continue
        _enter(task, flt.name, flt.targets, index, now=now, actor=actor)
        return
    # Past the last target of this filter.
    if task.filter_index == -1:
        task_place(task, now=now, actor=actor, after_filter=len(routing.filters))
    else:
        task_place(task, now=now, actor=actor, after_filter=task.filter_index)


def _enter(
    task: Task, filter_name: str, targets: tuple[Target, ...], index: int, *, now, actor
) -> None:
    target = targets[index]
    previous_queue = task.queue_id
    task.target_index = index
    task.routing_step += 1
    if target.priority is not None:
        task.priority = target.priority
    if target.timeout is None:
        task.step_deadline = None
    else:
        # Timeouts add up: target i times out at the sum of the timeouts up to i.
        elapsed = sum(t.timeout or 0 for t in targets[: index + 1])
        task.step_deadline = task.filter_entered_at + timedelta(seconds=elapsed)
    task.queue_id = target.queue_id
    queue_sid = target.queue_sid
    data = _step_data(task, filter_name, index, target)
    if previous_queue != target.queue_id:
        task.queue_entered_at = now
        event_type = "task-queue.entered" if previous_queue is None else "task-queue.moved"
        event_record(
            task.workspace,
            event_type,
            resource_sid=task.sid,
            description=f"Task entered queue {queue_sid}",
            data=data,
            actor=actor,
        )
    event_record(
        task.workspace,
        "workflow.target-matched",
        resource_sid=task.sid,
        description=f"Filter {filter_name!r}, target {index}",
        data=data,
        actor=actor,
    )


def _step_data(task: Task, filter_name: str, index: int, target: Target) -> dict[str, Any]:
    return {
        "task_sid": task.sid,
        "workflow_sid": task.workflow.sid,
        "filter": filter_name,
        "filter_index": task.filter_index,
        "target_index": index,
        "task_queue_sid": target.queue_sid,
        "priority": task.priority,
    }


def _skip(task: Task, target: Target) -> bool:
    available = len(_eligible(task, target, limit=None))
    context = {"workers": {"available": available}, "task": task_context(task)}
    return target.skip_if.evaluate(context)


def current_target(task: Task) -> Target | None:
    if task.filter_index is None or task.target_index is None:
        return None
    flt = workflow_routing(task.workflow).filter_at(task.filter_index)
    if flt is None or task.target_index >= len(flt.targets):
        return None
    return flt.targets[task.target_index]


def task_cancel_locked(task: Task, *, reason: str, actor: str) -> None:
    """Cancel a waiting task: its pending reservations are canceled, capacity freed."""
    now = timezone.now()
    freed = reservations_end(
        task,
        Reservation.objects.filter(task=task, status=ReservationStatus.PENDING),
        ReservationStatus.CANCELED,
        now=now,
        actor=actor,
    )
    task.assignment_status = TaskStatus.CANCELED
    task.reason = reason[:255]
    task.ended_at = now
    task.step_deadline = None
    event_record(
        task.workspace,
        "task.canceled",
        resource_sid=task.sid,
        description=f"Task canceled: {reason}"[:255],
        data={"task_sid": task.sid, "reason": task.reason, **_task_brief(task)},
        actor=actor,
    )
    assignment_request(workers=freed)


def reservations_end(
    task: Task, reservations, status: str, *, now: datetime, actor: str, release: bool = True
) -> list[int]:
    """Move reservations to `status` (and free their capacity unless `release` is False, as
    for wrapping); the ids of workers whose capacity was freed."""
    freed = []
    # Channel rows are released in id order, so two releases never wait on each other crosswise.
    for reservation in reservations.select_related("worker", "worker_channel").order_by(
        "worker_channel_id"
    ):
        previous = reservation.status
        reservation.status = status
        if release:
            reservation.ended_at = now
        reservation.save(update_fields=["status", "ended_at", "date_updated"])
        if release and previous in HOLDING:
            capacity_release(reservation.worker_channel_id)
            freed.append(reservation.worker_id)
        event_record(
            task.workspace,
            EVENT_FOR_STATUS.get(status, f"reservation.{status}"),
            resource_sid=reservation.sid,
            description=f"Reservation {status}",
            data=reservation_data(reservation, task),
            actor=actor,
        )
    return freed


def capacity_release(worker_channel_id: int) -> None:
    WorkerChannel.objects.filter(pk=worker_channel_id, assigned_tasks__gt=0).update(
        assigned_tasks=F("assigned_tasks") - 1
    )


def reservation_data(reservation: Reservation, task: Task) -> dict[str, Any]:
    return {
        "reservation_sid": reservation.sid,
        "task_sid": task.sid,
        "worker_sid": reservation.worker.sid,
        "worker_name": reservation.worker.friendly_name,
        "status": reservation.status,
        **_task_brief(task),
    }


def _task_brief(task: Task) -> dict[str, Any]:
    return {
        "task_channel": task.task_channel.unique_name,
        "task_queue_sid": task.queue.sid if task.queue_id else None,
        "task_priority": task.priority,
        "task_age": int((timezone.now() - task.date_created).total_seconds()),
        "task_attributes": task.attributes,
    }


# ---------------------------------------------------------------- candidates


@dataclass
class Candidate:
    worker_channel_id: int
    worker: Worker
    context: dict[str, Any] = field(default_factory=dict)


def task_context(task: Task) -> dict[str, Any]:
    age = int((timezone.now() - task.date_created).total_seconds())
    return {**task.attributes, "sid": task.sid, "priority": task.priority, "age": age}


def worker_context(worker: Worker, channels: list[WorkerChannel] | None = None) -> dict:
    """What `worker.` means in a target expression: attributes plus sid, name, activity and
    (when `channels` are given) counters per task channel."""
    context = {
        **worker.attributes,
        "sid": worker.sid,
        "friendly_name": worker.friendly_name,
        "activity_name": worker.activity.friendly_name,
    }
    if channels is not None:
        context["channel"] = {
            wc.task_channel.unique_name: {
                "assigned_tasks": wc.assigned_tasks,
                "configured_capacity": wc.capacity,
                "available": wc.available,
                "available_capacity_percentage": (
                    int(100 * (wc.capacity - wc.assigned_tasks) / wc.capacity) if wc.capacity else 0
                ),
            }
            for wc in channels
        }
    return context


def _eligible(
    task: Task, target: Target, *, limit: int | None, only_worker: int | None = None
) -> list[Candidate]:
    """Workers who may get an offer of this task now, best first (not locked: a hint)."""
    rows = (
        WorkerChannel.objects.filter(
            task_channel_id=task.task_channel_id,
            available=True,
            assigned_tasks__lt=F("capacity"),
            worker__available=True,
            worker__workspace_id=task.workspace_id,
        )
        .select_related("worker", "worker__activity")
        .order_by("worker__idle_since", "worker_id")
    )
    if only_worker is not None:
        rows = rows.filter(worker_id=only_worker)
    known = _known_worker(task, target)
    if known is not None:
        rows = rows.filter(**{f"worker__{target.known_worker_by}": known})
    else:
        rows = rows.filter(worker__queuemembership__queue_id=target.queue_id)
    excluded = _excluded_workers(task)
    if excluded:
        rows = rows.exclude(worker_id__in=excluded)
    if not task.workspace.multitask_enabled:
        rows = rows.exclude(worker__channels__assigned_tasks__gt=0)

    needs_all = bool(target.order_by)
    if not needs_all and target.expression is None and limit is not None:
        rows = rows[:limit]
    candidates = [Candidate(wc.id, wc.worker) for wc in rows]
    if target.expression is not None or target.order_by:
        candidates = _by_target(task, target, candidates)
    return candidates if limit is None else candidates[:limit]


def _known_worker(task: Task, target: Target) -> str | None:
    if target.known_worker_attribute is None:
        return None
    value = lookup(task.attributes, target.known_worker_attribute)
    return str(value) if value is not None else ""


def _excluded_workers(task: Task) -> set[int]:
    """Workers holding a pending offer of this task, or who refused it at this step."""
    refused = Q(
        status__in=[ReservationStatus.REJECTED, ReservationStatus.TIMEOUT],
        routing_step=task.routing_step,
    )
    return set(
        Reservation.objects.filter(task=task)
        .filter(Q(status=ReservationStatus.PENDING) | refused)
        .values_list("worker_id", flat=True)
    )


def _by_target(task: Task, target: Target, candidates: list[Candidate]) -> list[Candidate]:
    needs_channels = target.expression is not None and any(
        key.startswith("worker.channel") for key in target.expression.keys
    )
    channels: dict[int, list[WorkerChannel]] = {}
    if needs_channels:
        for wc in WorkerChannel.objects.filter(
            worker_id__in=[c.worker.pk for c in candidates]
        ).select_related("task_channel"):
            channels.setdefault(wc.worker_id, []).append(wc)
    task_attributes = task_context(task)
    kept = []
    for candidate in candidates:
        candidate.context = {
            "task": task_attributes,
            "worker": worker_context(
                candidate.worker, channels.get(candidate.worker.pk, []) if needs_channels else None
            ),
        }
        if target.expression is None or target.expression.evaluate(candidate.context):
            kept.append(candidate)
    if target.order_by:
        order = sort_key(target.order_by)
        # Stable sort: ties keep the longest-idle order of the query.
        kept.sort(key=lambda c: order(c.context))
    return kept


# ---------------------------------------------------------------- reservations


def task_assign(task_id: int) -> int:
    """Offer a waiting task to as many eligible workers as its queue allows; the count made."""
    with transaction.atomic():
        task = _lock_waiting_task(task_id)
        if task is None:
            return 0
        target = current_target(task)
        if target is None:
            return 0
        slots = _free_slots(task)
        if slots <= 0:
            return 0
        made = 0
        # A small first batch is usually enough; a larger one only when those were taken.
        tried: set[int] = set()
        for limit in (slots + 2, CANDIDATE_BATCH):
            candidates = _eligible(task, target, limit=limit)
            for candidate in candidates:
                if candidate.worker_channel_id in tried:
                    continue
                tried.add(candidate.worker_channel_id)
                if _reserve(task, candidate.worker.pk, candidate.worker_channel_id):
                    made += 1
                    if made == slots:
                        break
            if made == slots or len(candidates) < limit:
                break
        if made:
            _mark_reserved(task)
        return made


def worker_assign(worker_id: int) -> int:
    """Offer this worker the best waiting tasks of its queues while it has spare capacity."""
    made = 0
    open_channels = _channels_with_room(worker_id)
    for task_id, channel_id in _waiting_tasks_for(worker_id, open_channels):
        if channel_id not in open_channels:
            continue
        with transaction.atomic():
            task = _lock_waiting_task(task_id)
            if task is None or _free_slots(task) <= 0:
                continue
            target = current_target(task)
            if target is None:
                continue
            eligible = _eligible(task, target, limit=1, only_worker=worker_id)
            if not eligible:
                continue
            if _reserve(task, worker_id, eligible[0].worker_channel_id):
                made += 1
                _mark_reserved(task)
        open_channels = _channels_with_room(worker_id)
        if not open_channels:
            break
    return made


def _channels_with_room(worker_id: int) -> set[int]:
    return set(
        WorkerChannel.objects.filter(
            worker_id=worker_id,
            available=True,
            assigned_tasks__lt=F("capacity"),
            worker__available=True,
        ).values_list("task_channel_id", flat=True)
    )


def _waiting_tasks_for(worker_id: int, channel_ids: set[int]) -> list[tuple[int, int]]:
    """(task id, channel id) of waiting tasks of the worker's queues on channels where it has
    room, best first: higher priority, then the queue's order (FIFO oldest, LIFO newest)."""
    if not channel_ids:
        return []
    queue_ids = QueueMembership.objects.filter(worker_id=worker_id).values_list(
        "queue_id", flat=True
    )
    # Pending tasks, and reserved ones only where the queue offers a task to several workers
    # (the attempt checks the exact number of free offers); never a task this worker holds an
    # offer of or refused at its current step.
    mine = Reservation.objects.filter(task=OuterRef("pk"), worker_id=worker_id).filter(
        Q(status=ReservationStatus.PENDING)
        | Q(
            status__in=[ReservationStatus.REJECTED, ReservationStatus.TIMEOUT],
            routing_step=OuterRef("routing_step"),
        )
    )
    waiting = (
        Task.objects.filter(task_channel_id__in=channel_ids, queue_id__in=queue_ids)
        .filter(
            Q(assignment_status=TaskStatus.PENDING)
            | Q(assignment_status=TaskStatus.RESERVED, queue__max_reserved_workers__gt=1)
        )
        .exclude(Exists(mine))
    )
    rows: list[tuple] = []
    for order in (TaskOrder.FIFO, TaskOrder.LIFO):
        newest_first = order == TaskOrder.LIFO
        ordered = waiting.filter(queue__task_order=order).order_by(
            "-priority", "-date_created" if newest_first else "date_created"
        )
        for task_id, channel_id, priority, created in ordered.values_list(
            "id", "task_channel_id", "priority", "date_created"
        )[:TASK_BATCH]:
            age_key = -created.timestamp() if newest_first else created.timestamp()
            rows.append((-priority, age_key, task_id, channel_id))
    rows.sort()
    return [(task_id, channel_id) for _p, _a, task_id, channel_id in rows[:TASK_BATCH]]


def _lock_waiting_task(task_id: int) -> Task | None:
    return (
        Task.objects.select_for_update(skip_locked=True, of=("self",))
        .select_related("workspace", "workflow", "task_channel", "queue")
        .filter(pk=task_id, assignment_status__in=WAITING)
        .first()
    )


def _free_slots(task: Task) -> int:
    maximum = task.queue.max_reserved_workers if task.queue_id else 1
    pending = Reservation.objects.filter(task=task, status=ReservationStatus.PENDING).count()
    return maximum - pending


def _reserve(task: Task, worker_id: int, worker_channel_id: int) -> bool:
    """Claim one unit of the worker's capacity and create the reservation, or do nothing."""
    worker = (
        Worker.objects.select_for_update(skip_locked=True, of=("self",))
        .filter(pk=worker_id, available=True)
        .first()
    )
    if worker is None:
        return False  # busy elsewhere right now, or no longer available
    # Lock the channel row without waiting too (a release may hold it): assignment never
    # waits on a lock, so it can never be part of a deadlock.
    room = (
        WorkerChannel.objects.select_for_update(skip_locked=True)
        .filter(pk=worker_channel_id, available=True, assigned_tasks__lt=F("capacity"))
        .values_list("pk", flat=True)
        .first()
    )
    if room is None:
        return False
    claimed = WorkerChannel.objects.filter(
        pk=worker_channel_id, available=True, assigned_tasks__lt=F("capacity")
    ).update(assigned_tasks=F("assigned_tasks") + 1)
    if claimed != 1:
        return False
    now = timezone.now()
    try:
        with transaction.atomic():
            reservation = Reservation.objects.create(
                workspace_id=task.workspace_id,
                task=task,
                worker=worker,
                worker_channel_id=worker_channel_id,
                queue_id=task.queue_id,
                routing_step=task.routing_step,
                timeout_at=now + timedelta(seconds=task.workflow.task_reservation_timeout),
            )
    except IntegrityError:  # already holds a pending offer of this task
        capacity_release(worker_channel_id)
        return False
    Worker.objects.filter(pk=worker.pk).update(idle_since=now)
    event_record(
        task.workspace,
        "reservation.created",
        resource_sid=reservation.sid,
        description=f"Task offered to {worker.friendly_name}",
        data={
            **reservation_data(reservation, task),
            "timeout_at": reservation.timeout_at.isoformat(),
        },
    )
    return True


def _mark_reserved(task: Task) -> None:
    if task.assignment_status == TaskStatus.PENDING:
        task.assignment_status = TaskStatus.RESERVED
        task.save(update_fields=["assignment_status", "date_updated"])
