"""Configuration writes: workspaces (with their default activities and task channels),
activities, task channels, task queues, workflows, and queue membership.

Queue membership (which workers a queue's `target_workers` matches) is recomputed here, when
a queue's expression or a worker's attributes change, so that assignment never evaluates
`target_workers` on the hot path.
"""

import secrets
from typing import Any

from django.db import transaction

from routing.errors import RoutingError, conflict, invalid
from routing.expressions import ExpressionError, compile_expression
from routing.models import (
    ACTIVE_TASK,
    DEFAULT_ACTIVITIES,
    DEFAULT_CHANNELS,
    Activity,
    QueueMembership,
    Task,
    TaskChannel,
    TaskOrder,
    TaskQueue,
    Worker,
    WorkerChannel,
    Workflow,
    Workspace,
)
from routing.services.assignment import assignment_request
from routing.services.validation import full_clean
from routing.workflows import WorkflowError, parse_workflow


@transaction.atomic
def workspace_create(
    *,
    friendly_name: str,
    event_callback_url: str = "",
    events_filter: list[str] | None = None,
    multitask_enabled: bool = True,
) -> Workspace:
    """A workspace with the activities Offline, Available, Unavailable and Break and the task
    channels default, sms, whatsapp, messenger, chat and voice."""
    workspace = Workspace(
        friendly_name=friendly_name,
        event_callback_url=event_callback_url,
        event_callback_secret=secrets.token_urlsafe(32),
        events_filter=events_filter or [],
        multitask_enabled=multitask_enabled,
    )
    full_clean(workspace)
    workspace.save()
    workspace_defaults_ensure(workspace)
    return workspace


def workspace_defaults_ensure(workspace: Workspace) -> None:
    """Idempotent: add missing default activities and channels; Offline by default."""
    activities = {}
    for name, available in DEFAULT_ACTIVITIES.items():
        activities[name], _ = Activity.objects.get_or_create(
            workspace=workspace, friendly_name=name, defaults={"available": available}
        )
    for name in DEFAULT_CHANNELS:
        TaskChannel.objects.get_or_create(
            workspace=workspace, unique_name=name, defaults={"friendly_name": name.title()}
        )
    changed = []
    if workspace.default_activity_id is None:
        workspace.default_activity = activities["Offline"]
        changed.append("default_activity")
    if workspace.timeout_activity_id is None:
        workspace.timeout_activity = activities["Offline"]
        changed.append("timeout_activity")
    if not workspace.event_callback_secret:
        workspace.event_callback_secret = secrets.token_urlsafe(32)
        changed.append("event_callback_secret")
    if changed:
        workspace.save(update_fields=[*changed, "date_updated"])


@transaction.atomic
def workspace_update(workspace: Workspace, **changes: Any) -> Workspace:
    allowed = {
        "friendly_name",
        "event_callback_url",
        "events_filter",
        "multitask_enabled",
        "default_activity",
        "timeout_activity",
    }
    _apply(workspace, changes, allowed)
    full_clean(workspace)
    workspace.save()
    return workspace


@transaction.atomic
def workspace_delete(workspace: Workspace) -> None:
    """Delete a workspace and everything in it; refused while any task is still active."""
    if Task.objects.filter(workspace=workspace, assignment_status__in=ACTIVE_TASK).exists():
        raise conflict("The workspace has active tasks; complete or cancel them first.")
    # Tasks and workers first: they protect the workflows, channels and activities.
    Task.objects.filter(workspace=workspace).delete()
    Worker.objects.filter(workspace=workspace).delete()
    workspace.delete()


@transaction.atomic
def activity_create(*, workspace: Workspace, friendly_name: str, available: bool) -> Activity:
    activity = Activity(workspace=workspace, friendly_name=friendly_name, available=available)
    full_clean(activity)
    activity.save()
    return activity


@transaction.atomic
def activity_delete(activity: Activity) -> None:
    workspace = activity.workspace
    if activity.pk in (workspace.default_activity_id, workspace.timeout_activity_id):
        raise conflict("The workspace's default or timeout activity cannot be deleted.")
    if Worker.objects.filter(activity=activity).exists():
        raise conflict("Workers are in this activity; move them first.")
    activity.delete()


@transaction.atomic
def task_channel_create(
    *, workspace: Workspace, unique_name: str, friendly_name: str = ""
) -> TaskChannel:
    """A new task channel; every worker of the workspace gets it with capacity 1."""
    channel = TaskChannel(workspace=workspace, unique_name=unique_name, friendly_name=friendly_name)
    full_clean(channel)
    channel.save()
    WorkerChannel.objects.bulk_create(
        [
            WorkerChannel(worker_id=worker_id, task_channel=channel, capacity=1)
            for worker_id in Worker.objects.filter(workspace=workspace).values_list("id", flat=True)
        ]
    )
    return channel


# ---------------------------------------------------------------- queues


@transaction.atomic
def queue_create(
    *,
    workspace: Workspace,
    friendly_name: str,
    target_workers: str = "1==1",
    task_order: str = TaskOrder.FIFO,
    max_reserved_workers: int = 1,
) -> TaskQueue:
    queue = TaskQueue(
        workspace=workspace,
        friendly_name=friendly_name,
        target_workers=target_workers,
        task_order=task_order,
        max_reserved_workers=max_reserved_workers,
    )
    full_clean(queue)
    queue.save()
    workers = queue_members_refresh(queue)
    assignment_request(workers=workers)
    return queue


@transaction.atomic
def queue_update(queue: TaskQueue, **changes: Any) -> TaskQueue:
    allowed = {"friendly_name", "target_workers", "task_order", "max_reserved_workers"}
    _apply(queue, changes, allowed)
    full_clean(queue)
    queue.save()
    workers = queue_members_refresh(queue)
    tasks = Task.objects.filter(queue=queue, assignment_status="pending").values_list(
        "id", flat=True
    )[:500]
    assignment_request(tasks=list(tasks), workers=workers)
    return queue


@transaction.atomic
def queue_delete(queue: TaskQueue) -> None:
    if Task.objects.filter(queue=queue, assignment_status__in=ACTIVE_TASK).exists():
        raise conflict("The queue holds active tasks.")
    if any(
        queue.sid in str(workflow.configuration)
        for workflow in Workflow.objects.filter(workspace_id=queue.workspace_id)
    ):
        raise conflict("A workflow routes to this queue; change the workflow first.")
    queue.delete()


def queue_members_refresh(queue: TaskQueue) -> list[int]:
    """Recompute the queue's members; the ids of workers who joined."""
    expression = compile_expression(queue.target_workers)
    matching = {
        worker_id
        for worker_id, attributes in Worker.objects.filter(
            workspace_id=queue.workspace_id
        ).values_list("id", "attributes")
        if expression.evaluate(attributes or {})
    }
    current = set(QueueMembership.objects.filter(queue=queue).values_list("worker_id", flat=True))
    QueueMembership.objects.filter(queue=queue, worker_id__in=current - matching).delete()
    joined = matching - current
    QueueMembership.objects.bulk_create(
        [QueueMembership(queue=queue, worker_id=worker_id) for worker_id in joined],
        ignore_conflicts=True,
    )
    return sorted(joined)


def worker_memberships_refresh(worker: Worker) -> bool:
    """Recompute which queues the worker belongs to; True when it joined any."""
    matching = set()
    for queue_id, text in TaskQueue.objects.filter(workspace_id=worker.workspace_id).values_list(
        "id", "target_workers"
    ):
        try:
            if compile_expression(text).evaluate(worker.attributes or {}):
                matching.add(queue_id)
        except ExpressionError:  # saved before validation existed: matches nobody
            continue
    current = set(QueueMembership.objects.filter(worker=worker).values_list("queue_id", flat=True))
    QueueMembership.objects.filter(worker=worker, queue_id__in=current - matching).delete()
    QueueMembership.objects.bulk_create(
        [QueueMembership(queue_id=queue_id, worker=worker) for queue_id in matching - current],
        ignore_conflicts=True,
    )
    return bool(matching - current)


# ---------------------------------------------------------------- workflows


@transaction.atomic
def workflow_create(
    *,
    workspace: Workspace,
    friendly_name: str,
    configuration: dict,
    task_reservation_timeout: int = 120,
) -> Workflow:
    workflow = Workflow(
        workspace=workspace,
        friendly_name=friendly_name,
        configuration=configuration,
        task_reservation_timeout=task_reservation_timeout,
    )
    _check_configuration(workflow)
    full_clean(workflow)
    workflow.save()
    return workflow


@transaction.atomic
def workflow_update(workflow: Workflow, **changes: Any) -> Workflow:
    _apply(workflow, changes, {"friendly_name", "configuration", "task_reservation_timeout"})
    _check_configuration(workflow)
    full_clean(workflow)
    workflow.save()
    return workflow


@transaction.atomic
def workflow_delete(workflow: Workflow) -> None:
    if Task.objects.filter(workflow=workflow, assignment_status__in=ACTIVE_TASK).exists():
        raise conflict("Active tasks use this workflow.")
    Task.objects.filter(workflow=workflow).delete()
    workflow.delete()


def _check_configuration(workflow: Workflow) -> None:
    try:
        parse_workflow(workflow.configuration, workspace_id=workflow.workspace_id)
    except WorkflowError as error:
        raise invalid("configuration", str(error)) from error


def _apply(instance: Any, changes: dict[str, Any], allowed: set[str]) -> None:
    for name, value in changes.items():
        if name not in allowed:
            raise RoutingError(20001, f"{name} cannot be changed", name)
        setattr(instance, name, value)
