"""Input and output shapes of the routing API.

Input serializers check types, shapes and bounds (so that nothing a database cannot store —
NUL, lone surrogates, non-finite numbers, integers past the column — gets past the edge);
the domain rules live in the services and the models. Output serializers are read-only views
of the models, with ISO 8601 dates in UTC and snake_case names.
"""

import json
import math
from datetime import UTC
from typing import Any

from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from routing.events import EVENT_TYPES
from routing.models import (
    DEFAULT_TASK_TIMEOUT,
    MAX_ATTRIBUTES_BYTES,
    MAX_CHANNEL_CAPACITY,
    MAX_RESERVATION_TIMEOUT,
    MAX_TASK_TIMEOUT,
    ReservationStatus,
    TaskOrder,
    TaskStatus,
)

PAGE_TOKEN_PREFIX = "PI"
MAX_PAGE_SIZE = 1000
DEFAULT_PAGE_SIZE = 50
# PositiveIntegerField: PostgreSQL's integer column.
MAX_INT = 2**31 - 1
MAX_CONFIGURATION_BYTES = 65536
# Deep enough for any sensible document, shallow enough that no encoder or evaluator recurses
# anywhere near Python's limit.
MAX_JSON_DEPTH = 32
MAX_STATISTICS_MINUTES = 43200
DEFAULT_STATISTICS_MINUTES = 15
MAX_WAIT_THRESHOLDS = 10
NAME_LENGTH = 64


# Named components: drf-spectacular would otherwise name the enums after the fields
# (`StatusEnum`), which collides as soon as another API has a `status` choice.
@extend_schema_field(
    {"type": "string", "enum": list(TaskStatus.values)}, component_name="TaskStatusEnum"
)
class TaskStatusField(serializers.ChoiceField):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(choices=TaskStatus.choices, **kwargs)


@extend_schema_field(
    {"type": "string", "enum": list(ReservationStatus.values)},
    component_name="ReservationStatusEnum",
)
class ReservationStatusField(serializers.ChoiceField):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(choices=ReservationStatus.choices, **kwargs)


@extend_schema_field(
    {"type": "string", "enum": list(EVENT_TYPES)}, component_name="RoutingEventTypeEnum"
)
class EventTypeField(serializers.ChoiceField):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(choices=EVENT_TYPES, **kwargs)


class UtcDateTimeField(serializers.DateTimeField):
    """ISO 8601, rendered in UTC; an input without an offset is read as UTC."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(default_timezone=UTC, **kwargs)


def _json_problem(value: Any) -> str | None:
    """Why a parsed JSON document cannot be stored, if it cannot (iterative: no recursion)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            return f"nested deeper than {MAX_JSON_DEPTH} levels"
        if isinstance(item, str):
            if "\x00" in item:
                return "NUL characters are not allowed"
            if any("\ud800" <= c <= "\udfff" for c in item):
                return "unpaired surrogate characters are not allowed"
        elif isinstance(item, float) and not math.isfinite(item):
            return "numbers must be finite"
        elif isinstance(item, dict):
            for key, child in item.items():
                stack.append((key, depth))
                stack.append((child, depth + 1))
        elif isinstance(item, list):
            stack.extend((child, depth + 1) for child in item)
    return None


@extend_schema_field(OpenApiTypes.OBJECT)
class JsonObjectField(serializers.Field):
    """A JSON object that the database can store, at most `max_bytes` as compact UTF-8."""

    default_error_messages = {
        "not_an_object": "Must be a JSON object.",
        "unstorable": "{problem}.",
        "too_large": "Takes {size} bytes; the limit is {limit}.",
    }

    def __init__(self, *, max_bytes: int, **kwargs: Any) -> None:
        self.max_bytes = max_bytes
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> dict:
        if not isinstance(data, dict):
            self.fail("not_an_object")
        problem = _json_problem(data)
        if problem:
            self.fail("unstorable", problem=problem)
        size = len(json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode())
        if size > self.max_bytes:
            self.fail("too_large", size=size, limit=self.max_bytes)
        return data

    def to_representation(self, value: Any) -> Any:
        return value


def attributes_field(**kwargs: Any) -> JsonObjectField:
    kwargs.setdefault("help_text", f"A JSON object, at most {MAX_ATTRIBUTES_BYTES} bytes.")
    return JsonObjectField(max_bytes=MAX_ATTRIBUTES_BYTES, **kwargs)


class StringField(serializers.CharField):
    """A JSON string; unlike CharField, a number is refused rather than read as text."""

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


def sid_field(prefix: str, **kwargs: Any) -> StringField:
    """Any string: a sid that cannot exist is a 404 at the lookup, like an unknown one."""
    kwargs.setdefault("help_text", f"A sid ({prefix}...).")
    return StringField(**kwargs)


def page_token_field() -> serializers.RegexField:
    return serializers.RegexField(
        rf"^{PAGE_TOKEN_PREFIX}[1-9][0-9]{{0,17}}$",
        required=False,
        error_messages={"invalid": "Not a page token from this API."},
        help_text="next_page_token of the previous page.",
    )


def page_size_field() -> serializers.IntegerField:
    return serializers.IntegerField(
        required=False, min_value=1, max_value=MAX_PAGE_SIZE, default=DEFAULT_PAGE_SIZE
    )


class RoutingErrorOutput(serializers.Serializer):
    code = serializers.IntegerField(help_text="20001 invalid, 20003, 20403, 20404, 20409...")
    message = serializers.CharField()
    field = serializers.CharField(allow_null=True, help_text="The input field at fault, if any.")
    status = serializers.IntegerField(help_text="The HTTP status.")


class EmptyInput(serializers.Serializer):
    """An action that takes no input: any body key is refused (a typo is not ignored)."""


# ---------------------------------------------------------------- workspaces


class WorkspaceCreateInput(serializers.Serializer):
    friendly_name = serializers.CharField(max_length=NAME_LENGTH)
    event_callback_url = serializers.URLField(
        max_length=200, required=False, allow_blank=True, help_text="Events are POSTed here."
    )
    events_filter = serializers.ListField(
        child=EventTypeField(),
        required=False,
        help_text="Event types to POST; empty: all of them.",
    )
    multitask_enabled = serializers.BooleanField(required=False)


class WorkspaceUpdateInput(WorkspaceCreateInput):
    default_activity_sid = sid_field("WA", required=False)
    timeout_activity_sid = sid_field("WA", required=False)


class WorkspaceOutput(serializers.Serializer):
    sid = serializers.CharField()
    friendly_name = serializers.CharField()
    default_activity_sid = serializers.CharField(source="default_activity.sid", allow_null=True)
    default_activity_name = serializers.CharField(
        source="default_activity.friendly_name", allow_null=True
    )
    timeout_activity_sid = serializers.CharField(source="timeout_activity.sid", allow_null=True)
    timeout_activity_name = serializers.CharField(
        source="timeout_activity.friendly_name", allow_null=True
    )
    event_callback_url = serializers.CharField()
    events_filter = serializers.ListField(child=serializers.CharField())
    multitask_enabled = serializers.BooleanField()
    date_created = UtcDateTimeField()
    date_updated = UtcDateTimeField()


class WorkspaceListOutput(serializers.Serializer):
    results = WorkspaceOutput(many=True)


# ---------------------------------------------------------------- activities and channels


class ActivityInput(serializers.Serializer):
    friendly_name = serializers.CharField(max_length=NAME_LENGTH)
    available = serializers.BooleanField(
        required=False, default=False, help_text="Workers in it can receive tasks."
    )


class ActivityOutput(serializers.Serializer):
    sid = serializers.CharField()
    friendly_name = serializers.CharField()
    available = serializers.BooleanField()
    date_created = UtcDateTimeField()
    date_updated = UtcDateTimeField()


class ActivityListOutput(serializers.Serializer):
    results = ActivityOutput(many=True)


class TaskChannelInput(serializers.Serializer):
    unique_name = serializers.SlugField(max_length=NAME_LENGTH)
    friendly_name = serializers.CharField(
        max_length=NAME_LENGTH, required=False, allow_blank=True, default=""
    )


class TaskChannelOutput(serializers.Serializer):
    sid = serializers.CharField()
    unique_name = serializers.CharField()
    friendly_name = serializers.CharField()
    date_created = UtcDateTimeField()
    date_updated = UtcDateTimeField()


class TaskChannelListOutput(serializers.Serializer):
    results = TaskChannelOutput(many=True)


# ---------------------------------------------------------------- queues and workflows


class TaskQueueInput(serializers.Serializer):
    """Create: friendly_name is required. Update (PATCH): any subset."""

    friendly_name = serializers.CharField(max_length=NAME_LENGTH)
    target_workers = serializers.CharField(
        max_length=4096,
        required=False,
        help_text="Expression over worker attributes, e.g. languages HAS 'es'; default 1==1.",
    )
    task_order = serializers.ChoiceField(choices=TaskOrder.choices, required=False)
    max_reserved_workers = serializers.IntegerField(min_value=1, max_value=50, required=False)


class TaskQueueOutput(serializers.Serializer):
    sid = serializers.CharField()
    friendly_name = serializers.CharField()
    target_workers = serializers.CharField()
    task_order = serializers.CharField()
    max_reserved_workers = serializers.IntegerField()
    members = serializers.IntegerField(
        source="members_count", help_text="How many workers target_workers matches."
    )
    date_created = UtcDateTimeField()
    date_updated = UtcDateTimeField()


class TaskQueueListOutput(serializers.Serializer):
    results = TaskQueueOutput(many=True)


class WorkflowInput(serializers.Serializer):
    """Create: friendly_name and configuration are required. Update (PATCH): any subset."""

    friendly_name = serializers.CharField(max_length=NAME_LENGTH)
    configuration = JsonObjectField(
        max_bytes=MAX_CONFIGURATION_BYTES,
        help_text='{"task_routing": {"filters": [...], "default_filter": {"queue": "WQ..."}}}',
    )
    task_reservation_timeout = serializers.IntegerField(
        min_value=1,
        max_value=MAX_RESERVATION_TIMEOUT,
        required=False,
        help_text="Seconds a worker has to accept an offer (default 120).",
    )


class WorkflowOutput(serializers.Serializer):
    sid = serializers.CharField()
    friendly_name = serializers.CharField()
    configuration = serializers.JSONField()
    task_reservation_timeout = serializers.IntegerField()
    date_created = UtcDateTimeField()
    date_updated = UtcDateTimeField()


class WorkflowListOutput(serializers.Serializer):
    results = WorkflowOutput(many=True)


# ---------------------------------------------------------------- workers


class WorkerCreateInput(serializers.Serializer):
    friendly_name = serializers.CharField(max_length=NAME_LENGTH)
    attributes = attributes_field(required=False, default=dict)
    activity_sid = sid_field(
        "WA", required=False, help_text="Default: the workspace's default activity."
    )
    capacities = serializers.DictField(
        child=serializers.IntegerField(min_value=0, max_value=MAX_CHANNEL_CAPACITY),
        required=False,
        help_text='Capacity per task channel, e.g. {"sms": 3}; 1 for the others.',
    )
    user = serializers.CharField(
        max_length=150,
        required=False,
        allow_null=True,
        help_text="The username of the person who works as this worker.",
    )


class WorkerUpdateInput(serializers.Serializer):
    friendly_name = serializers.CharField(max_length=NAME_LENGTH, required=False)
    attributes = attributes_field(required=False)
    user = serializers.CharField(
        max_length=150, required=False, allow_null=True, help_text="A username, or null."
    )


class WorkerActivityInput(serializers.Serializer):
    activity_sid = sid_field("WA")


class WorkerChannelInput(serializers.Serializer):
    capacity = serializers.IntegerField(min_value=0, max_value=MAX_CHANNEL_CAPACITY, required=False)
    available = serializers.BooleanField(required=False, help_text="Off: no tasks on it.")


class WorkerChannelOutput(serializers.Serializer):
    sid = serializers.CharField()
    task_channel = serializers.CharField(source="task_channel.unique_name")
    task_channel_sid = serializers.CharField(source="task_channel.sid")
    capacity = serializers.IntegerField()
    available = serializers.BooleanField()
    assigned_tasks = serializers.IntegerField(
        help_text="Reservations holding capacity (pending, accepted, wrapping)."
    )
    available_capacity_percentage = serializers.SerializerMethodField()

    def get_available_capacity_percentage(self, wc: Any) -> int:
        if not wc.capacity:
            return 0
        return max(0, int(100 * (wc.capacity - wc.assigned_tasks) / wc.capacity))


class WorkerOutput(serializers.Serializer):
    sid = serializers.CharField()
    friendly_name = serializers.CharField()
    user = serializers.CharField(source="user.username", allow_null=True)
    attributes = serializers.DictField()
    activity_sid = serializers.CharField(source="activity.sid")
    activity_name = serializers.CharField(source="activity.friendly_name")
    available = serializers.BooleanField()
    activity_changed_at = UtcDateTimeField()
    channels = serializers.SerializerMethodField()
    date_created = UtcDateTimeField()
    date_updated = UtcDateTimeField()

    @extend_schema_field(WorkerChannelOutput(many=True))
    def get_channels(self, worker: Any) -> list:
        # Sorted here so that a prefetched page and a single worker agree on the order.
        channels = sorted(worker.channels.all(), key=lambda wc: wc.task_channel.unique_name)
        return WorkerChannelOutput(channels, many=True).data


class WorkerPageOutput(serializers.Serializer):
    results = WorkerOutput(many=True)
    next_page_token = serializers.CharField(allow_null=True)


class WorkerListQuery(serializers.Serializer):
    page_size = page_size_field()
    page_token = page_token_field()


# ---------------------------------------------------------------- tasks


class TaskCreateInput(serializers.Serializer):
    workflow_sid = sid_field("WW")
    attributes = attributes_field(required=False, default=dict)
    task_channel = serializers.SlugField(
        max_length=NAME_LENGTH, required=False, default="default", help_text="sms, chat..."
    )
    priority = serializers.IntegerField(
        min_value=0, max_value=MAX_INT, required=False, default=0, help_text="Higher first."
    )
    timeout = serializers.IntegerField(
        min_value=1,
        max_value=MAX_TASK_TIMEOUT,
        required=False,
        default=DEFAULT_TASK_TIMEOUT,
        help_text="Seconds the task may wait before it is canceled.",
    )


class TaskUpdateInput(serializers.Serializer):
    attributes = attributes_field(
        required=False,
        help_text="New attributes send a waiting task through its workflow again.",
    )
    priority = serializers.IntegerField(min_value=0, max_value=MAX_INT, required=False)
    timeout = serializers.IntegerField(min_value=1, max_value=MAX_TASK_TIMEOUT, required=False)


class TaskReasonInput(serializers.Serializer):
    reason = serializers.CharField(max_length=255, required=False, allow_blank=True, default="")


class TaskListQuery(serializers.Serializer):
    status = serializers.ListField(
        child=TaskStatusField(),
        required=False,
        help_text="Repeat to ask for several.",
    )
    queue_sid = sid_field("WQ", required=False)
    page_size = page_size_field()
    page_token = page_token_field()


class TaskOutput(serializers.Serializer):
    sid = serializers.CharField()
    workflow_sid = serializers.CharField(source="workflow.sid")
    workflow_name = serializers.CharField(source="workflow.friendly_name")
    task_channel = serializers.CharField(source="task_channel.unique_name")
    attributes = serializers.DictField()
    priority = serializers.IntegerField()
    timeout = serializers.IntegerField()
    assignment_status = TaskStatusField()
    reason = serializers.CharField()
    task_queue_sid = serializers.CharField(source="queue.sid", allow_null=True)
    task_queue_name = serializers.CharField(source="queue.friendly_name", allow_null=True)
    age = serializers.SerializerMethodField(help_text="Seconds since it was created.")
    expires_at = UtcDateTimeField()
    assigned_at = UtcDateTimeField(allow_null=True)
    ended_at = UtcDateTimeField(allow_null=True)
    date_created = UtcDateTimeField()
    date_updated = UtcDateTimeField()

    def get_age(self, task: Any) -> int:
        now = self.context.get("now") or timezone.now()
        return max(0, int((now - task.date_created).total_seconds()))


class TaskPageOutput(serializers.Serializer):
    results = TaskOutput(many=True)
    next_page_token = serializers.CharField(allow_null=True)


# ---------------------------------------------------------------- reservations


class ReservationRejectInput(serializers.Serializer):
    activity_sid = sid_field(
        "WA", required=False, allow_null=True, help_text="Move the worker to this activity."
    )


class ReservationListQuery(serializers.Serializer):
    status = serializers.ListField(
        child=ReservationStatusField(),
        required=False,
        help_text="Repeat to ask for several.",
    )


class ReservationOutput(serializers.Serializer):
    sid = serializers.CharField()
    status = ReservationStatusField()
    worker_sid = serializers.CharField(source="worker.sid")
    worker_name = serializers.CharField(source="worker.friendly_name")
    task_queue_sid = serializers.CharField(source="queue.sid", allow_null=True)
    timeout_at = UtcDateTimeField()
    accepted_at = UtcDateTimeField(allow_null=True)
    ended_at = UtcDateTimeField(allow_null=True)
    date_created = UtcDateTimeField()
    date_updated = UtcDateTimeField()
    task = TaskOutput()


class ReservationListOutput(serializers.Serializer):
    results = ReservationOutput(many=True)


# ---------------------------------------------------------------- statistics


class StatisticsQuery(serializers.Serializer):
    minutes = serializers.IntegerField(
        min_value=1,
        max_value=MAX_STATISTICS_MINUTES,
        required=False,
        help_text=f"The cumulative window ending now (default {DEFAULT_STATISTICS_MINUTES}).",
    )
    start = UtcDateTimeField(required=False, help_text="Window start (instead of minutes).")
    end = UtcDateTimeField(required=False, help_text="Window end (default now).")
    split_by_wait_time = serializers.RegexField(
        rf"^[0-9]{{1,6}}(,[0-9]{{1,6}}){{0,{MAX_WAIT_THRESHOLDS - 1}}}$",
        required=False,
        error_messages={"invalid": "Comma-separated seconds, e.g. 30,60 (at most 10)."},
        help_text="Wait thresholds in seconds, e.g. 30,60.",
    )

    def validate(self, data: dict) -> dict:
        if "minutes" in data and ("start" in data or "end" in data):
            raise serializers.ValidationError({"minutes": "Give minutes or start/end, not both."})
        return data


class ActivityStatisticsOutput(serializers.Serializer):
    sid = serializers.CharField()
    friendly_name = serializers.CharField()
    available = serializers.BooleanField()
    workers = serializers.IntegerField()


class RealtimeStatisticsOutput(serializers.Serializer):
    workspace_sid = serializers.CharField()
    task_queue_sid = serializers.CharField(allow_null=True)
    total_tasks = serializers.IntegerField()
    tasks_by_status = serializers.DictField(child=serializers.IntegerField())
    tasks_by_priority = serializers.DictField(child=serializers.IntegerField())
    longest_task_waiting_age = serializers.IntegerField(help_text="Seconds.")
    longest_task_waiting_sid = serializers.CharField(allow_null=True)
    total_workers = serializers.IntegerField()
    total_available_workers = serializers.IntegerField()
    total_eligible_workers = serializers.IntegerField()
    activity_statistics = ActivityStatisticsOutput(many=True)


class DurationSummaryOutput(serializers.Serializer):
    avg = serializers.FloatField()
    min = serializers.FloatField()
    max = serializers.FloatField()
    total = serializers.FloatField()
    p50 = serializers.FloatField()
    p90 = serializers.FloatField()
    p99 = serializers.FloatField()


class WaitSplitOutput(serializers.Serializer):
    below = serializers.IntegerField()
    above = serializers.IntegerField()


class CumulativeStatisticsOutput(serializers.Serializer):
    workspace_sid = serializers.CharField()
    task_queue_sid = serializers.CharField(allow_null=True)
    start_time = serializers.CharField()
    end_time = serializers.CharField()
    tasks_entered = serializers.IntegerField()
    tasks_canceled = serializers.IntegerField()
    tasks_completed = serializers.IntegerField()
    tasks_moved = serializers.IntegerField()
    reservations_created = serializers.IntegerField()
    reservations_accepted = serializers.IntegerField()
    reservations_rejected = serializers.IntegerField()
    reservations_timed_out = serializers.IntegerField()
    reservations_canceled = serializers.IntegerField()
    reservations_rescinded = serializers.IntegerField()
    avg_task_acceptance_time = serializers.FloatField(help_text="Seconds.")
    wait_duration_until_accepted = DurationSummaryOutput(help_text="Seconds.")
    split_by_wait_time = serializers.DictField(child=WaitSplitOutput())


class StatisticsOutput(serializers.Serializer):
    realtime = RealtimeStatisticsOutput()
    cumulative = CumulativeStatisticsOutput()


# ---------------------------------------------------------------- events


class EventListQuery(serializers.Serializer):
    event_type = serializers.ListField(
        child=EventTypeField(),
        required=False,
        help_text="Repeat to ask for several.",
    )
    resource_sid = serializers.RegexField(
        r"^[A-Z]{2}[0-9a-f]{32}$",
        required=False,
        error_messages={"invalid": "Not a sid."},
        help_text="Events of this task, reservation or worker.",
    )
    start = UtcDateTimeField(required=False, help_text="date_created ≥ this instant.")
    end = UtcDateTimeField(required=False, help_text="date_created < this instant.")
    page_size = page_size_field()
    page_token = page_token_field()


class EventOutput(serializers.Serializer):
    sid = serializers.CharField()
    event_type = serializers.CharField()
    resource_type = serializers.CharField()
    resource_sid = serializers.CharField()
    description = serializers.CharField()
    actor = serializers.CharField()
    data = serializers.DictField()
    date_created = UtcDateTimeField()


class EventPageOutput(serializers.Serializer):
    results = EventOutput(many=True)
    next_page_token = serializers.CharField(allow_null=True)
