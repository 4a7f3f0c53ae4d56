"""Routing data (REFERENCE.md 7): workspaces, activities, task channels, workers and their
channel capacities, task queues and their computed members, workflows, tasks, reservations and
the append-only event log.

The engine knows nothing about messages or the desk: a task is attributes + a channel. Field
rules live in `clean()` (the admin and the API both call `full_clean()`); every state change
goes through `routing/services/`.
"""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from routing.sids import sid_default

MAX_ATTRIBUTES_BYTES = 4096
MAX_CHANNEL_CAPACITY = 50
DEFAULT_TASK_TIMEOUT = 24 * 3600
MAX_TASK_TIMEOUT = 14 * 24 * 3600
DEFAULT_RESERVATION_TIMEOUT = 120
MAX_RESERVATION_TIMEOUT = 24 * 3600
DEFAULT_CHANNELS = ("default", "sms", "whatsapp", "messenger", "chat", "voice")
# name → available. Offline is the default and the timeout activity of a new workspace.
DEFAULT_ACTIVITIES = {"Offline": False, "Available": True, "Unavailable": False, "Break": False}


class TaskStatus(models.TextChoices):
    PENDING = "pending", _("pending")
    RESERVED = "reserved", _("reserved")
    ASSIGNED = "assigned", _("assigned")
    WRAPPING = "wrapping", _("wrapping")
    COMPLETED = "completed", _("completed")
    CANCELED = "canceled", _("canceled")


# Tasks still waiting for a worker: the assignment engine only looks at these.
WAITING = (TaskStatus.PENDING, TaskStatus.RESERVED)
# Tasks not yet finished: TTL applies to waiting ones; statistics count all of these.
ACTIVE_TASK = (*WAITING, TaskStatus.ASSIGNED, TaskStatus.WRAPPING)


class ReservationStatus(models.TextChoices):
    PENDING = "pending", _("pending")
    ACCEPTED = "accepted", _("accepted")
    REJECTED = "rejected", _("rejected")
    TIMEOUT = "timeout", _("timeout")
    CANCELED = "canceled", _("canceled")
    RESCINDED = "rescinded", _("rescinded")
    WRAPPING = "wrapping", _("wrapping")
    COMPLETED = "completed", _("completed")


# Reservations that hold one unit of the worker's capacity on the task's channel.
HOLDING = (ReservationStatus.PENDING, ReservationStatus.ACCEPTED, ReservationStatus.WRAPPING)
# At most one reservation of a task ever gets this far.
TAKEN = (ReservationStatus.ACCEPTED, ReservationStatus.WRAPPING, ReservationStatus.COMPLETED)


class TaskOrder(models.TextChoices):
    FIFO = "FIFO", _("First in, first out")
    LIFO = "LIFO", _("Last in, first out")


def validate_attributes(value) -> None:
    import json

    if not isinstance(value, dict):
        raise ValidationError(_("Attributes must be a JSON object."), code="invalid")
    size = len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())
    if size > MAX_ATTRIBUTES_BYTES:
        raise ValidationError(
            _("Attributes take %(size)d bytes; the limit is %(limit)d."),
            code="too_large",
            params={"size": size, "limit": MAX_ATTRIBUTES_BYTES},
        )


def validate_expression_text(value: str) -> None:
    from routing.expressions import ExpressionError, compile_expression

    try:
        compile_expression(value)
    except ExpressionError as error:
        raise ValidationError(str(error), code="expression") from error


class Workspace(models.Model):
    sid = models.CharField(max_length=34, unique=True, default=sid_default("WS"), editable=False)
    friendly_name = models.CharField(_("name"), max_length=64, unique=True)
    default_activity = models.ForeignKey(
        "Activity",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text=_("The activity of a new worker."),
    )
    timeout_activity = models.ForeignKey(
        "Activity",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text=_("Where a worker goes when it lets a reservation time out."),
    )
    event_callback_url = models.URLField(
        _("event callback URL"),
        blank=True,
        help_text=_("Every event is POSTed here as JSON, signed with the callback secret."),
    )
    event_callback_secret = models.CharField(
        max_length=64,
        blank=True,
        help_text=_(
            "HMAC-SHA256 key of the X-Routing-Signature header. Generated when left empty."
        ),
    )
    events_filter = models.JSONField(
        default=list,
        blank=True,
        help_text=_("Event types to POST (a JSON list). Empty: all of them."),
    )
    multitask_enabled = models.BooleanField(
        default=True,
        help_text=_("Workers may hold several tasks at once, up to their channel capacity."),
    )
    date_created = models.DateTimeField(auto_now_add=True)
    date_updated = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("workspace")
        verbose_name_plural = _("workspaces")
        permissions = [("supervise_workspace", "Can act on any task, reservation or worker")]

    def __str__(self) -> str:
        return self.friendly_name

    def clean(self) -> None:
        from routing.events import EVENT_TYPES

        if not isinstance(self.events_filter, list) or any(
            event_type not in EVENT_TYPES for event_type in self.events_filter
        ):
            raise ValidationError(
                {"events_filter": _('A JSON list of event types, e.g. ["task.created"].')}
            )
        for field in ("default_activity", "timeout_activity"):
            activity = getattr(self, field)
            if activity is not None and self.pk and activity.workspace_id != self.pk:
                raise ValidationError({field: _("Choose an activity of this workspace.")})


class Activity(models.Model):
    sid = models.CharField(max_length=34, unique=True, default=sid_default("WA"), editable=False)
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="activities")
    friendly_name = models.CharField(_("name"), max_length=64)
    available = models.BooleanField(
        default=False, help_text=_("Workers in this activity can receive tasks.")
    )
    date_created = models.DateTimeField(auto_now_add=True)
    date_updated = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("activity")
        verbose_name_plural = _("activities")
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "friendly_name"], name="activity_unique_name"
            )
        ]

    def __str__(self) -> str:
        return self.friendly_name


class TaskChannel(models.Model):
    sid = models.CharField(max_length=34, unique=True, default=sid_default("TC"), editable=False)
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="channels")
    unique_name = models.SlugField(max_length=64)
    friendly_name = models.CharField(_("name"), max_length=64, blank=True)
    date_created = models.DateTimeField(auto_now_add=True)
    date_updated = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("task channel")
        verbose_name_plural = _("task channels")
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "unique_name"], name="taskchannel_unique_name"
            )
        ]

    def __str__(self) -> str:
        return self.unique_name


class Worker(models.Model):
    sid = models.CharField(max_length=34, unique=True, default=sid_default("WK"), editable=False)
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="workers")
    friendly_name = models.CharField(_("name"), max_length=64)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="routing_workers",
        help_text=_("The person who works as this worker (at most one worker per workspace)."),
    )
    attributes = models.JSONField(
        default=dict,
        blank=True,
        validators=[validate_attributes],
        help_text=_('JSON object, at most 4 KB, e.g. {"languages": ["es", "en"]}.'),
    )
    activity = models.ForeignKey(Activity, on_delete=models.PROTECT, related_name="workers")
    activity_changed_at = models.DateTimeField()
    # Copy of activity.available, so that the assignment query needs no join.
    available = models.BooleanField(default=False, editable=False)
    # Longest idle first: set when the worker becomes available and when it gets an offer.
    idle_since = models.DateTimeField()
    date_created = models.DateTimeField(auto_now_add=True)
    date_updated = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("worker")
        verbose_name_plural = _("workers")
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "friendly_name"], name="worker_unique_name"
            ),
            models.UniqueConstraint(
                fields=["workspace", "user"],
                condition=Q(user__isnull=False),
                name="worker_one_per_user",
            ),
        ]
        indexes = [models.Index(fields=["workspace", "available", "idle_since"])]

    def __str__(self) -> str:
        return self.friendly_name

    def clean(self) -> None:
        if (
            self.activity_id
            and self.workspace_id
            and self.activity.workspace_id != self.workspace_id
        ):
            raise ValidationError({"activity": _("Choose an activity of this workspace.")})


class WorkerChannel(models.Model):
    """A worker's capacity on one task channel. `assigned_tasks` counts the reservations that
    hold capacity (pending, accepted, wrapping); it only changes by conditional UPDATEs."""

    sid = models.CharField(max_length=34, unique=True, default=sid_default("WC"), editable=False)
    worker = models.ForeignKey(Worker, on_delete=models.CASCADE, related_name="channels")
    task_channel = models.ForeignKey(TaskChannel, on_delete=models.CASCADE, related_name="+")
    capacity = models.PositiveSmallIntegerField(
        default=1, validators=[MaxValueValidator(MAX_CHANNEL_CAPACITY)]
    )
    available = models.BooleanField(default=True, help_text=_("Off: no tasks on this channel."))
    assigned_tasks = models.PositiveSmallIntegerField(default=0, editable=False)
    date_created = models.DateTimeField(auto_now_add=True)
    date_updated = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("worker channel")
        verbose_name_plural = _("worker channels")
        constraints = [
            models.UniqueConstraint(
                fields=["worker", "task_channel"], name="workerchannel_unique_channel"
            ),
            models.CheckConstraint(
                condition=Q(capacity__lte=MAX_CHANNEL_CAPACITY), name="workerchannel_capacity_max"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.worker} · {self.task_channel}"


class TaskQueue(models.Model):
    sid = models.CharField(max_length=34, unique=True, default=sid_default("WQ"), editable=False)
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="queues")
    friendly_name = models.CharField(_("name"), max_length=64)
    target_workers = models.CharField(
        _("target workers"),
        max_length=4096,
        default="1==1",
        validators=[validate_expression_text],
        help_text=_("Expression over worker attributes, e.g. languages HAS 'es'."),
    )
    task_order = models.CharField(max_length=4, choices=TaskOrder.choices, default=TaskOrder.FIFO)
    max_reserved_workers = models.PositiveSmallIntegerField(
        default=1,
        validators=[MinValueValidator(1), MaxValueValidator(50)],
        help_text=_("Offer each task to this many workers at once; the first to accept wins."),
    )
    members = models.ManyToManyField(
        Worker, through="QueueMembership", related_name="queues", blank=True
    )
    date_created = models.DateTimeField(auto_now_add=True)
    date_updated = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("task queue")
        verbose_name_plural = _("task queues")
        constraints = [
            models.UniqueConstraint(fields=["workspace", "friendly_name"], name="queue_unique_name")
        ]

    def __str__(self) -> str:
        return self.friendly_name


class QueueMembership(models.Model):
    """Which workers a queue's `target_workers` matches, recomputed when either side changes,
    so that assignment is an indexed join instead of evaluating every worker every time."""

    queue = models.ForeignKey(TaskQueue, on_delete=models.CASCADE)
    worker = models.ForeignKey(Worker, on_delete=models.CASCADE)

    class Meta:
        verbose_name = _("queue membership")
        verbose_name_plural = _("queue memberships")
        constraints = [
            models.UniqueConstraint(fields=["queue", "worker"], name="membership_unique")
        ]
        indexes = [models.Index(fields=["worker", "queue"])]

    def __str__(self) -> str:
        return f"{self.worker_id} ∈ {self.queue_id}"


class Workflow(models.Model):
    sid = models.CharField(max_length=34, unique=True, default=sid_default("WW"), editable=False)
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="workflows")
    friendly_name = models.CharField(_("name"), max_length=64)
    configuration = models.JSONField(
        help_text=_(
            'Task routing: {"task_routing": {"filters": [...], "default_filter": {"queue": '
            '"WQ..."}}}'
        )
    )
    task_reservation_timeout = models.PositiveIntegerField(
        default=DEFAULT_RESERVATION_TIMEOUT,
        validators=[MinValueValidator(1), MaxValueValidator(MAX_RESERVATION_TIMEOUT)],
        help_text=_("Seconds a worker has to accept an offer."),
    )
    date_created = models.DateTimeField(auto_now_add=True)
    date_updated = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("workflow")
        verbose_name_plural = _("workflows")
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "friendly_name"], name="workflow_unique_name"
            )
        ]

    def __str__(self) -> str:
        return self.friendly_name

    def clean(self) -> None:
        from routing.workflows import WorkflowError, parse_workflow

        if not self.workspace_id:
            return
        try:
            parse_workflow(self.configuration, workspace_id=self.workspace_id)
        except WorkflowError as error:
            raise ValidationError({"configuration": str(error)}) from error


class Task(models.Model):
    sid = models.CharField(max_length=34, unique=True, default=sid_default("WT"), editable=False)
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="tasks")
    workflow = models.ForeignKey(Workflow, on_delete=models.PROTECT, related_name="tasks")
    task_channel = models.ForeignKey(TaskChannel, on_delete=models.PROTECT, related_name="+")
    attributes = models.JSONField(default=dict, blank=True, validators=[validate_attributes])
    priority = models.PositiveIntegerField(default=0)
    timeout = models.PositiveIntegerField(
        default=DEFAULT_TASK_TIMEOUT,
        validators=[MinValueValidator(1), MaxValueValidator(MAX_TASK_TIMEOUT)],
        help_text=_("Seconds the task may live before it is canceled (TTL)."),
    )
    assignment_status = models.CharField(
        max_length=10, choices=TaskStatus.choices, default=TaskStatus.PENDING
    )
    reason = models.CharField(max_length=255, blank=True)
    # Where the workflow has put the task: filter (-1 = default filter), target, queue.
    queue = models.ForeignKey(
        TaskQueue, on_delete=models.SET_NULL, null=True, blank=True, related_name="tasks"
    )
    filter_index = models.SmallIntegerField(null=True, blank=True)
    target_index = models.SmallIntegerField(null=True, blank=True)
    # Increases at every routing step: workers who rejected the task are skipped until it moves.
    routing_step = models.PositiveIntegerField(default=0)
    # Target timeouts add up from the moment the task entered its current filter.
    filter_entered_at = models.DateTimeField(null=True, blank=True)
    step_deadline = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField()
    queue_entered_at = models.DateTimeField(null=True, blank=True)
    assigned_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    date_created = models.DateTimeField(auto_now_add=True)
    date_updated = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("task")
        verbose_name_plural = _("tasks")
        indexes = [
            models.Index(
                fields=["queue", "-priority", "date_created"],
                condition=Q(assignment_status__in=["pending", "reserved"]),
                name="task_waiting_by_queue",
            ),
            models.Index(
                fields=["workspace", "assignment_status", "queue"],
                condition=Q(assignment_status__in=["pending", "reserved", "assigned", "wrapping"]),
                name="task_active_by_status",
            ),
            models.Index(
                fields=["step_deadline"],
                condition=Q(assignment_status__in=["pending", "reserved"]),
                name="task_waiting_deadline",
            ),
            models.Index(
                fields=["expires_at"],
                condition=Q(assignment_status__in=["pending", "reserved"]),
                name="task_waiting_expiry",
            ),
            models.Index(fields=["workspace", "date_created"]),
        ]

    def __str__(self) -> str:
        return self.sid


class Reservation(models.Model):
    sid = models.CharField(max_length=34, unique=True, default=sid_default("WR"), editable=False)
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="reservations")
    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="reservations")
    worker = models.ForeignKey(Worker, on_delete=models.CASCADE, related_name="reservations")
    worker_channel = models.ForeignKey(WorkerChannel, on_delete=models.CASCADE, related_name="+")
    queue = models.ForeignKey(
        TaskQueue, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    status = models.CharField(
        max_length=10, choices=ReservationStatus.choices, default=ReservationStatus.PENDING
    )
    routing_step = models.PositiveIntegerField(default=0)
    timeout_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    date_created = models.DateTimeField(auto_now_add=True)
    date_updated = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("reservation")
        verbose_name_plural = _("reservations")
        constraints = [
            # The database itself refuses a second accepted reservation of one task.
            models.UniqueConstraint(
                fields=["task"],
                condition=Q(status__in=["accepted", "wrapping", "completed"]),
                name="reservation_one_taken_per_task",
            ),
            models.UniqueConstraint(
                fields=["task", "worker"],
                condition=Q(status="pending"),
                name="reservation_one_pending_per_worker",
            ),
        ]
        indexes = [
            models.Index(
                fields=["timeout_at"], condition=Q(status="pending"), name="reservation_pending"
            ),
            models.Index(fields=["worker", "status"]),
            models.Index(fields=["workspace", "date_created"]),
        ]

    def __str__(self) -> str:
        return self.sid


class CallbackState(models.TextChoices):
    NONE = "none", _("not sent")
    PENDING = "pending", _("pending")
    DELIVERED = "delivered", _("delivered")
    FAILED = "failed", _("failed")


class Event(models.Model):
    """Append-only: the services write one row per transition; nothing updates them except
    the delivery state of the callback."""

    sid = models.CharField(max_length=34, unique=True, default=sid_default("EV"), editable=False)
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="events")
    event_type = models.CharField(max_length=40, db_index=True)
    resource_type = models.CharField(max_length=20)
    resource_sid = models.CharField(max_length=34, db_index=True)
    description = models.CharField(max_length=255)
    data = models.JSONField(default=dict)
    actor = models.CharField(
        max_length=64, blank=True, help_text=_("Who caused it: a user, 'api' or 'system'.")
    )
    callback_state = models.CharField(
        max_length=10, choices=CallbackState.choices, default=CallbackState.NONE
    )
    callback_attempts = models.PositiveSmallIntegerField(default=0)
    date_created = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("event")
        verbose_name_plural = _("events")
        indexes = [
            models.Index(fields=["workspace", "event_type", "date_created"]),
            models.Index(fields=["workspace", "date_created"]),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} {self.resource_sid}"
