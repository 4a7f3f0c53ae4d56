"""Tasks: create, update, cancel, wrap up, complete, delete; step timeouts and TTL expiry."""

from datetime import timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from routing.errors import conflict, invalid
from routing.events import event_record
from routing.models import (
    DEFAULT_TASK_TIMEOUT,
    HOLDING,
    WAITING,
    Reservation,
    ReservationStatus,
    Task,
    TaskChannel,
    TaskStatus,
    Workflow,
    Workspace,
)
from routing.services.assignment import (
    assignment_request,
    reservations_end,
    target_enter,
    task_cancel_locked,
    task_place,
)
from routing.services.validation import full_clean
from routing.workflows import workflow_routing


@transaction.atomic
def task_create(
    *,
    workspace: Workspace,
    workflow: Workflow,
    attributes: dict[str, Any] | None = None,
    task_channel: str = "default",
    priority: int = 0,
    timeout: int = DEFAULT_TASK_TIMEOUT,
    actor: str = "api",
) -> Task:
    """A new task, placed by its workflow and offered to workers once this commits."""
    if workflow.workspace_id != workspace.pk:
        raise invalid("workflow", "The workflow belongs to another workspace.")
    channel = TaskChannel.objects.filter(workspace=workspace, unique_name=task_channel).first()
    if channel is None:
        raise invalid("task_channel", f"No task channel {task_channel!r} in this workspace.")
    now = timezone.now()
    task = Task(
        workspace=workspace,
        workflow=workflow,
        task_channel=channel,
        attributes=attributes if attributes is not None else {},
        priority=priority,
        timeout=timeout,
        expires_at=now,
    )
    full_clean(task, exclude=["expires_at"])
    task.save()
    # The TTL counts from the creation time, as task_update computes it.
    task.expires_at = task.date_created + timedelta(seconds=timeout)
    event_record(
        workspace,
        "task.created",
        resource_sid=task.sid,
        description="Task created",
        data=_task_data(task),
        actor=actor,
    )
    task_place(task, now=now, actor=actor)
    task.save()
    if task.assignment_status == TaskStatus.PENDING:
        assignment_request(tasks=[task.pk])
    return task


def _lock(task: Task) -> Task:
    return (
        Task.objects.select_for_update(of=("self",))
        .select_related("workspace", "workflow", "task_channel", "queue")
        .get(pk=task.pk)
    )


@transaction.atomic
def task_update(
    task: Task,
    *,
    attributes: dict[str, Any] | None = None,
    priority: int | None = None,
    timeout: int | None = None,
    actor: str = "api",
) -> Task:
    """Change attributes, priority or TTL. New attributes of a waiting task send it through
    its workflow again from the first filter."""
    task = _lock(task)
    if task.assignment_status in (TaskStatus.COMPLETED, TaskStatus.CANCELED):
        raise conflict(f"The task is {task.assignment_status}.")
    changed = []
    replace = attributes is not None and attributes != task.attributes
    if attributes is not None:
        task.attributes = attributes
        changed.append("attributes")
    if priority is not None:
        task.priority = priority
        changed.append("priority")
    if timeout is not None:
        task.timeout = timeout
        task.expires_at = task.date_created + timedelta(seconds=timeout)
        changed.append("timeout")
    full_clean(task)
    if not changed:
        return task
    event_record(
        task.workspace,
        "task.updated",
        resource_sid=task.sid,
        description=f"Task updated: {', '.join(changed)}",
        data=_task_data(task),
        actor=actor,
    )
    if replace and task.assignment_status in WAITING:
        task_place(task, now=timezone.now(), actor=actor)
    task.save()
    if task.assignment_status in WAITING:
        assignment_request(tasks=[task.pk])
    return task


@transaction.atomic
def task_cancel(task: Task, *, reason: str = "", actor: str = "api") -> Task:
    task = _lock(task)
    if task.assignment_status not in WAITING:
        raise conflict(
            f"The task is {task.assignment_status}: only pending or reserved tasks can be "
            "canceled; an assigned task is completed."
        )
    task_cancel_locked(task, reason=reason or "Canceled", actor=actor)
    task.save()
    return task


@transaction.atomic
def task_wrapup(task: Task, *, actor: str = "api") -> Task:
    """assigned → wrapping (the agent is writing notes; capacity is still held)."""
    task = _lock(task)
    if task.assignment_status != TaskStatus.ASSIGNED:
        raise conflict(f"The task is {task.assignment_status}; only an assigned task wraps up.")
    task.assignment_status = TaskStatus.WRAPPING
    task.save(update_fields=["assignment_status", "date_updated"])
    event_record(
        task.workspace,
        "task.wrapup",
        resource_sid=task.sid,
        description="Task wrapping up",
        data=_task_data(task),
        actor=actor,
    )
    reservations_end(
        task,
        Reservation.objects.filter(task=task, status=ReservationStatus.ACCEPTED),
        ReservationStatus.WRAPPING,
        now=timezone.now(),
        actor=actor,
        release=False,
    )
    return task


@transaction.atomic
def task_complete(task: Task, *, reason: str = "", actor: str = "api") -> Task:
    """assigned | wrapping → completed; the worker's capacity is freed."""
    task = _lock(task)
    if task.assignment_status not in (TaskStatus.ASSIGNED, TaskStatus.WRAPPING):
        raise conflict(
            f"The task is {task.assignment_status}; only an assigned or wrapping task completes."
        )
    now = timezone.now()
    task.assignment_status = TaskStatus.COMPLETED
    task.reason = reason[:255]
    task.ended_at = now
    task.save(update_fields=["assignment_status", "reason", "ended_at", "date_updated"])
    event_record(
        task.workspace,
        "task.completed",
        resource_sid=task.sid,
        description="Task completed",
        data=_task_data(task),
        actor=actor,
    )
    freed = reservations_end(
        task,
        Reservation.objects.filter(
            task=task, status__in=[ReservationStatus.ACCEPTED, ReservationStatus.WRAPPING]
        ),
        ReservationStatus.COMPLETED,
        now=now,
        actor=actor,
    )
    assignment_request(workers=freed)
    return task


@transaction.atomic
def task_delete(task: Task, *, actor: str = "api") -> None:
    task = _lock(task)
    freed = reservations_end(
        task,
        Reservation.objects.filter(task=task, status__in=HOLDING),
        ReservationStatus.CANCELED,
        now=timezone.now(),
        actor=actor,
    )
    event_record(
        task.workspace,
        "task.deleted",
        resource_sid=task.sid,
        description="Task deleted",
        data=_task_data(task),
        actor=actor,
    )
    assignment_request(workers=freed)
    task.delete()


def task_step_timeout(task_id: int) -> bool:
    """Move a waiting task whose target timed out to the next target (or filter, or cancel)."""
    with transaction.atomic():
        now = timezone.now()
        task = (
            Task.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("workspace", "workflow", "task_channel", "queue")
            .filter(pk=task_id, assignment_status__in=WAITING, step_deadline__lte=now)
            .first()
        )
        if task is None:
            return False
        event_record(
            task.workspace,
            "task-queue.timeout",
            resource_sid=task.sid,
            description=f"Target {task.target_index} timed out",
            data={**_task_data(task), "target_index": task.target_index},
            actor="system",
        )
        target_enter(
            task, workflow_routing(task.workflow), task.target_index + 1, now=now, actor="system"
        )
        task.save()
        if task.assignment_status in WAITING:
            assignment_request(tasks=[task.pk])
        return True


def task_expire(task_id: int) -> bool:
    """Cancel a waiting task whose TTL has passed."""
    with transaction.atomic():
        task = (
            Task.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("workspace", "workflow", "task_channel", "queue")
            .filter(pk=task_id, assignment_status__in=WAITING, expires_at__lte=timezone.now())
            .first()
        )
        if task is None:
            return False
        task_cancel_locked(task, reason="Task TTL Exceeded", actor="system")
        task.save()
        return True


def _task_data(task: Task) -> dict[str, Any]:
    return {
        "task_sid": task.sid,
        "task_attributes": task.attributes,
        "task_priority": task.priority,
        "task_assignment_status": task.assignment_status,
        "task_channel": task.task_channel.unique_name,
        "task_queue_sid": task.queue.sid if task.queue_id else None,
        "workflow_sid": task.workflow.sid,
        "task_reason": task.reason,
    }
