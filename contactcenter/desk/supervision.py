"""Read-only figures for the supervisor console: queues, agents, live tasks, charts and
messaging analytics. The supervisor views return these dicts as JSON, unchanged.

Every function runs a fixed handful of grouped queries (whatever the number of queues,
workers or messages) and does the arithmetic on the grouped rows in Python. Durations are
compared in the database as `accepted_at < created + threshold`, which both SQLite and
PostgreSQL evaluate (no backend-specific date functions).
"""

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any

from django.db.models import Count, Exists, F, Min, OuterRef, Q, QuerySet, Subquery
from django.db.models.fields.json import KT
from django.db.models.functions import Coalesce, TruncHour
from django.utils import timezone

from messaging.models import Account, Direction, Message, MessagingService
from messaging.statuses import FAILURES, Status
from routing.models import (
    ACTIVE_TASK,
    WAITING,
    QueueMembership,
    Reservation,
    ReservationStatus,
    Task,
    TaskQueue,
    TaskStatus,
    Worker,
    WorkerChannel,
    Workspace,
)

# Reservations whose worker holds the conversation (accepted, then wrapping up).
HELD = (ReservationStatus.ACCEPTED, ReservationStatus.WRAPPING)
DEFAULT_WAIT_BOUNDS = (10, 30, 60, 120, 300)
# Where a message's campaign is written in `Message.tags`: the caller's own "campaign" tag,
# else the run id that `send_bulk` tags every message of a run with ({"bulk": run}).
CAMPAIGN_TAG_KEYS = ("campaign", "bulk")
NO_SERVICE = "No service"
# Outbound messages that never went out (still scheduled, or canceled before sending).
NOT_SENT = (Status.SCHEDULED, Status.CANCELED)
DELIVERED = (Status.DELIVERED, Status.READ)
EN_DASH = "\u2013"  # wait-time labels: an en dash reads as a range, a hyphen as a minus


def _now(now: datetime | None) -> datetime:
    return now or timezone.now()


def _seconds(now: datetime, since: datetime | None) -> int:
    # Clock skew between processes must not show a negative age.
    return max(0, int((now - since).total_seconds())) if since else 0


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 3) if whole else None


# ---------------------------------------------------------------- queues


def queue_rows(
    workspace: Workspace,
    *,
    now: datetime | None = None,
    threshold: int = 30,
    window: timedelta = timedelta(hours=24),
) -> list[dict[str, Any]]:
    """One row per queue of the workspace (by name): what waits now, who could take it, and
    the service level over `window` (answered within `threshold` s / (answered + abandoned))."""
    now = _now(now)
    since = now - window
    queues = list(
        TaskQueue.objects.filter(workspace=workspace)
        .order_by("friendly_name", "id")
        .values("id", "sid", "friendly_name")
    )
    tasks = _queue_task_figures(workspace, now)
    workers = _queue_worker_figures(workspace)
    answered = _queue_answered(workspace, since, now, threshold)
    abandoned = _queue_abandoned(workspace, since, now)
    rows = []
    for queue in queues:
        pk = queue["id"]
        task = tasks.get(pk, {})
        within, total = answered.get(pk, (0, 0))
        lost = abandoned.get(pk, 0)
        rows.append(
            {
                "sid": queue["sid"],
                "name": queue["friendly_name"],
                "waiting": task.get("waiting", 0),
                "waiting_by_priority": task.get("by_priority", {}),
                "longest_wait": _seconds(now, task.get("oldest")),
                "assigned": task.get(TaskStatus.ASSIGNED, 0),
                "wrapping": task.get(TaskStatus.WRAPPING, 0),
                "available_workers": workers.get(pk, (0, 0))[0],
                "eligible_workers": workers.get(pk, (0, 0))[1],
                "answered": total,
                "answered_within_threshold": within,
                "abandoned": lost,
                "service_level": _rate(within, total + lost),
                "threshold": threshold,
            }
        )
    return rows


def _queue_task_figures(workspace: Workspace, now: datetime) -> dict[int, dict[str, Any]]:
    """Active tasks per queue: counts by status, waiting ones by priority, oldest waiting."""
    rows = (
        Task.objects.filter(
            workspace=workspace, assignment_status__in=ACTIVE_TASK, queue__isnull=False
        )
        .order_by()
        .values("queue_id", "assignment_status", "priority")
        .annotate(n=Count("id"), oldest=Min("date_created"))
        .order_by("queue_id", "-priority")
    )
    figures: dict[int, dict[str, Any]] = defaultdict(lambda: {"waiting": 0, "by_priority": {}})
    for row in rows:
        queue = figures[row["queue_id"]]
        status = row["assignment_status"]
        if status in WAITING:
            queue["waiting"] += row["n"]
            key = str(row["priority"])
            queue["by_priority"][key] = queue["by_priority"].get(key, 0) + row["n"]
            if queue.get("oldest") is None or row["oldest"] < queue["oldest"]:
                queue["oldest"] = row["oldest"]
        else:
            queue[status] = queue.get(status, 0) + row["n"]
    return figures


def _room_on_some_channel() -> Exists:
    # The same test as the assignment engine's: a channel that is on and not full.
    return Exists(
        WorkerChannel.objects.filter(
            worker_id=OuterRef("worker_id"),
            available=True,
            capacity__gt=0,
            assigned_tasks__lt=F("capacity"),
        )
    )


def _queue_worker_figures(workspace: Workspace) -> dict[int, tuple[int, int]]:
    """queue id → (available members, available members with room on some channel)."""
    rows = (
        QueueMembership.objects.filter(queue__workspace=workspace, worker__available=True)
        .annotate(room=_room_on_some_channel())
        .order_by()
        .values("queue_id")
        .annotate(available=Count("id"), eligible=Count("id", filter=Q(room=True)))
    )
    return {row["queue_id"]: (row["available"], row["eligible"]) for row in rows}


def _within(threshold: int) -> Q:
    return Q(accepted_at__lt=F("task__date_created") + timedelta(seconds=threshold))


def _queue_answered(
    workspace: Workspace, since: datetime, now: datetime, threshold: int
) -> dict[int, tuple[int, int]]:
    """queue id → (answered within threshold, answered): reservations accepted in the window,
    counted for the queue that offered them (a transfer does not move them)."""
    rows = (
        Reservation.objects.filter(
            workspace=workspace,
            queue__isnull=False,
            accepted_at__gte=since,
            accepted_at__lte=now,
        )
        .order_by()
        .values("queue_id")
        .annotate(total=Count("id"), within=Count("id", filter=_within(threshold)))
    )
    return {row["queue_id"]: (row["within"], row["total"]) for row in rows}


def _queue_abandoned(workspace: Workspace, since: datetime, now: datetime) -> dict[int, int]:
    """queue id → tasks canceled in the window that no agent ever took (the customer gave up,
    or the task expired while waiting). A waiting task moved by a transfer is not abandoned:
    its conversation went on in a new task."""
    rows = (
        Task.objects.filter(
            workspace=workspace,
            queue__isnull=False,
            assignment_status=TaskStatus.CANCELED,
            assigned_at__isnull=True,
            ended_at__gte=since,
            ended_at__lte=now,
        )
        .exclude(handoff__transfers__isnull=False)
        .order_by()
        .values("queue_id")
        .annotate(n=Count("id"))
    )
    return {row["queue_id"]: row["n"] for row in rows}


# ---------------------------------------------------------------- agents


def agent_rows(workspace: Workspace, *, now: datetime | None = None) -> list[dict[str, Any]]:
    """One row per worker (by name): activity and for how long, offers and conversations held,
    capacity per channel, and the conversations the worker holds."""
    now = _now(now)
    workers = list(
        Worker.objects.filter(workspace=workspace)
        .select_related("activity", "user")
        .order_by("friendly_name", "id")
    )
    channels = _worker_channels(workspace)
    reservations = _worker_reservation_counts(workspace)
    conversations = _worker_conversations(workspace)
    rows = []
    for worker in workers:
        own = channels.get(worker.pk, {})
        counts = reservations.get(worker.pk, {})
        rows.append(
            {
                "sid": worker.sid,
                "name": worker.friendly_name,
                "user": worker.user.get_username() if worker.user else None,
                "activity_sid": worker.activity.sid,
                "activity_name": worker.activity.friendly_name,
                "available": worker.available,
                "activity_since": worker.activity_changed_at.isoformat(),
                "seconds_in_activity": _seconds(now, worker.activity_changed_at),
                "offered": counts.get(ReservationStatus.PENDING, 0),
                "held": sum(counts.get(status, 0) for status in HELD),
                "capacity": sum(c["capacity"] for c in own.values()),
                "assigned": sum(c["assigned"] for c in own.values()),
                "channels": own,
                "conversations": conversations.get(worker.pk, []),
            }
        )
    return rows


def _worker_channels(workspace: Workspace) -> dict[int, dict[str, dict[str, int]]]:
    rows = (
        WorkerChannel.objects.filter(worker__workspace=workspace)
        .order_by("worker_id", "task_channel__unique_name")
        .values("worker_id", "task_channel__unique_name", "capacity", "assigned_tasks")
    )
    channels: dict[int, dict[str, dict[str, int]]] = defaultdict(dict)
    for row in rows:
        channels[row["worker_id"]][row["task_channel__unique_name"]] = {
            "capacity": row["capacity"],
            "assigned": row["assigned_tasks"],
        }
    return channels


def _worker_reservation_counts(workspace: Workspace) -> dict[int, dict[str, int]]:
    rows = (
        Reservation.objects.filter(
            workspace=workspace, status__in=[ReservationStatus.PENDING, *HELD]
        )
        .order_by()
        .values("worker_id", "status")
        .annotate(n=Count("id"))
    )
    counts: dict[int, dict[str, int]] = defaultdict(dict)
    for row in rows:
        counts[row["worker_id"]][row["status"]] = row["n"]
    return counts


def _worker_conversations(workspace: Workspace) -> dict[int, list[dict[str, Any]]]:
    contact = "task__handoff__conversation__contact__"
    rows = (
        Reservation.objects.filter(
            workspace=workspace, status__in=HELD, task__handoff__isnull=False
        )
        .order_by("worker_id", "accepted_at", "id")
        .values(
            "worker_id",
            "status",
            "task__handoff__conversation__sid",
            f"{contact}name",
            f"{contact}address",
        )
    )
    conversations: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        conversations[row["worker_id"]].append(
            {
                "conversation_sid": row["task__handoff__conversation__sid"],
                # As the task attributes name a customer: the name, else the address.
                "customer_name": row[f"{contact}name"] or row[f"{contact}address"],
                "status": row["status"],
            }
        )
    return conversations


# ---------------------------------------------------------------- live tasks


def _holder(field: str) -> Subquery:
    """A field of the worker holding the outer task (at most one reservation is taken)."""
    return Subquery(
        Reservation.objects.filter(task_id=OuterRef("pk"), status__in=HELD).values(
            f"worker__{field}"
        )[:1]
    )


def live_tasks(workspace: Workspace, *, now: datetime | None = None) -> list[dict[str, Any]]:
    """Every task not finished yet, highest priority then oldest first, with the conversation
    it carries and the agent holding it, if any."""
    now = _now(now)
    contact = "handoff__conversation__contact__"
    rows = (
        Task.objects.filter(workspace=workspace, assignment_status__in=ACTIVE_TASK)
        .annotate(agent_name=_holder("friendly_name"), worker_sid=_holder("sid"))
        .order_by("-priority", "date_created", "id")
        .values(
            "sid",
            "assignment_status",
            "priority",
            "date_created",
            "attributes",
            "queue__sid",
            "queue__friendly_name",
            "task_channel__unique_name",
            "handoff__conversation__sid",
            f"{contact}name",
            f"{contact}address",
            "agent_name",
            "worker_sid",
        )
    )
    return [_live_task(row, now, contact) for row in rows]


def _live_task(row: dict[str, Any], now: datetime, contact: str) -> dict[str, Any]:
    attributes = row["attributes"] if isinstance(row["attributes"], dict) else {}
    if row["handoff__conversation__sid"]:
        conversation_sid = row["handoff__conversation__sid"]
        address = row[f"{contact}address"]
        name = row[f"{contact}name"] or address
    else:
        # A task created through the routing API: what its attributes say, if anything.
        conversation_sid = attributes.get("conversationSid")
        address = attributes.get("customerAddress")
        name = attributes.get("name") or address
    return {
        "task_sid": row["sid"],
        "status": row["assignment_status"],
        "priority": row["priority"],
        "queue_sid": row["queue__sid"],
        "queue_name": row["queue__friendly_name"],
        "age": _seconds(now, row["date_created"]),
        "channel": row["task_channel__unique_name"],
        "conversation_sid": conversation_sid,
        "customer_name": name,
        "customer_address": address,
        "agent_name": row["agent_name"],
        "worker_sid": row["worker_sid"],
    }


# ---------------------------------------------------------------- charts


def _duration_label(seconds: int) -> str:
    return f"{seconds // 60} min" if seconds >= 60 and seconds % 60 == 0 else f"{seconds} s"


def _range_label(lower: int, upper: int) -> str:
    # One unit per label: "1-2 min", but "30-60 s" (30 s is no whole minute).
    if lower >= 60 and lower % 60 == 0 and upper % 60 == 0:
        return f"{lower // 60}{EN_DASH}{upper // 60} min"
    return f"{lower}{EN_DASH}{upper} s"


def wait_time_labels(bounds: Sequence[int]) -> list[str]:
    """Labels to show as they are: <10 s, 10-30 s, ..., ≥5 min (en dashes) for the bounds
    (10, 30, ..., 300)."""
    return [
        f"<{_duration_label(bounds[0])}",
        *(_range_label(low, high) for low, high in pairwise(bounds)),
        f"≥{_duration_label(bounds[-1])}",
    ]


def wait_time_histogram(
    workspace: Workspace,
    *,
    start: datetime,
    end: datetime,
    bounds: Iterable[int] = DEFAULT_WAIT_BOUNDS,
) -> list[dict[str, Any]]:
    """How long customers waited for an agent: reservations accepted in [start, end), by
    accepted_at - task creation, in buckets split at `bounds` (seconds). One query."""
    bounds = sorted({int(b) for b in bounds if int(b) > 0})
    if not bounds:
        raise ValueError("bounds: at least one positive number of seconds")
    edges = [None, *bounds, None]
    buckets = {}
    for index, (lower, upper) in enumerate(pairwise(edges)):
        condition = Q()
        if lower is not None:
            condition &= ~_within(lower)
        if upper is not None:
            condition &= _within(upper)
        buckets[f"b{index}"] = Count("id", filter=condition) if condition else Count("id")
    counts = Reservation.objects.filter(
        workspace=workspace, accepted_at__gte=start, accepted_at__lt=end
    ).aggregate(**buckets)
    return [
        {"label": label, "count": counts[f"b{index}"]}
        for index, label in enumerate(wait_time_labels(bounds))
    ]


def volume_per_hour(*, now: datetime | None = None, hours: int = 24) -> list[dict[str, Any]]:
    """Messages in and out per UTC hour, the current (partial) hour last, hours without any
    message included as zeros."""
    now = _now(now).astimezone(UTC)
    current = now.replace(minute=0, second=0, microsecond=0)
    first = current - timedelta(hours=hours - 1)
    rows = (
        Message.objects.filter(date_created__gte=first, date_created__lte=now)
        .annotate(hour=TruncHour("date_created", tzinfo=UTC))
        .order_by()
        .values("hour")
        .annotate(
            inbound=Count("id", filter=Q(direction=Direction.INBOUND)),
            outbound=Count("id", filter=Q(direction__startswith="outbound")),
        )
    )
    by_hour = {row["hour"].astimezone(UTC): row for row in rows}
    volume = []
    for step in range(hours):
        hour = first + timedelta(hours=step)
        row = by_hour.get(hour, {})
        volume.append(
            {
                "hour": hour.isoformat(),
                "inbound": row.get("inbound", 0),
                "outbound": row.get("outbound", 0),
            }
        )
    return volume


# ---------------------------------------------------------------- messaging analytics


def _campaign() -> Coalesce:
    return Coalesce(*(KT(f"tags__{key}") for key in CAMPAIGN_TAG_KEYS))


def _replied_after(end: datetime, *, opt_out: bool = False) -> Exists:
    """The recipient of the outer outbound message wrote back (to the same account) after
    it, before `end`: written per message, `Count(distinct)` turns it into recipients who
    answered after their first message of the group."""
    replies = Message.objects.filter(
        account_id=OuterRef("account_id"),
        direction=Direction.INBOUND,
        from_address=OuterRef("to_address"),
        date_created__gt=OuterRef("date_created"),
        date_created__lt=end,
    )
    if opt_out:
        replies = replies.filter(opt_out_type="STOP")
    return Exists(replies)


def _outbound(start: datetime, end: datetime, account: Account | None) -> QuerySet[Message]:
    """What the business sent in the window: not the automatic STOP/HELP answers, nor
    messages that never left (still scheduled, or canceled)."""
    messages = Message.objects.filter(
        direction__startswith="outbound",
        date_created__gte=start,
        date_created__lt=end,
        keyword_reply=False,
    ).exclude(status__in=NOT_SENT)
    return messages.filter(account=account) if account is not None else messages


def _inbound_stops(start: datetime, end: datetime, account: Account | None) -> QuerySet:
    messages = Message.objects.filter(
        direction=Direction.INBOUND,
        opt_out_type="STOP",
        date_created__gte=start,
        date_created__lt=end,
    )
    return messages.filter(account=account) if account is not None else messages


def _figures(outbound: QuerySet, group: str, end: datetime, stops: bool) -> QuerySet:
    """Per `group` value: sent, delivered, failed, recipients and responders (and, for
    groups that inbound messages do not carry, opted-out recipients)."""
    outbound = outbound.annotate(replied=_replied_after(end))
    figures = {
        "sent": Count("id"),
        "delivered": Count("id", filter=Q(status__in=DELIVERED)),
        "failed": Count("id", filter=Q(status__in=FAILURES)),
        "recipients": Count("to_address", distinct=True),
        "responded": Count("to_address", distinct=True, filter=Q(replied=True)),
    }
    if stops:
        outbound = outbound.annotate(stopped=_replied_after(end, opt_out=True))
        figures["opt_outs"] = Count("to_address", distinct=True, filter=Q(stopped=True))
    return outbound.order_by().values(group).annotate(**figures)


def _errors(outbound: QuerySet, group: str) -> dict[Any, list[dict[str, Any]]]:
    rows = (
        outbound.filter(status__in=FAILURES)
        .order_by()
        .values(group, "error_code")
        .annotate(n=Count("id"))
    )
    errors: dict[Any, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        errors[row[group]].append({"code": row["error_code"], "count": row["n"]})
    for codes in errors.values():
        codes.sort(key=lambda e: (-e["count"], e["code"] is None, e["code"] or 0))
    return errors


def _row(key: Any, name: str, figures: dict, errors: list, opt_outs: int) -> dict[str, Any]:
    sent, recipients = figures.get("sent", 0), figures.get("recipients", 0)
    return {
        "key": key,
        "name": name,
        "sent": sent,
        "delivered": figures.get("delivered", 0),
        "delivered_rate": _rate(figures.get("delivered", 0), sent),
        "failed": figures.get("failed", 0),
        "failed_by_error": errors,
        "recipients": recipients,
        "responded": figures.get("responded", 0),
        "response_rate": _rate(figures.get("responded", 0), recipients),
        "opt_outs": opt_outs,
    }


def _service_rows(start: datetime, end: datetime, account: Account | None) -> list[dict]:
    outbound = _outbound(start, end, account)
    figures = {row["service_id"]: row for row in _figures(outbound, "service_id", end, False)}
    errors = _errors(outbound, "service_id")
    # An inbound message carries its service: opt-outs are the people who wrote STOP to it.
    stops = dict(
        _inbound_stops(start, end, account)
        .order_by()
        .values("service_id")
        .annotate(n=Count("from_address", distinct=True))
        .values_list("service_id", "n")
    )
    ids = set(figures) | set(stops)
    services = MessagingService.objects.filter(id__in=ids - {None}).order_by("friendly_name", "id")
    rows = [
        _row(sid, name, figures.get(pk, {}), errors.get(pk, []), stops.get(pk, 0))
        for pk, sid, name in services.values_list("id", "sid", "friendly_name")
    ]
    if None in ids:
        rows.append(
            _row(None, NO_SERVICE, figures.get(None, {}), errors.get(None, []), stops.get(None, 0))
        )
    return rows


def _tag_rows(start: datetime, end: datetime, account: Account | None) -> list[dict]:
    outbound = _outbound(start, end, account).annotate(campaign=_campaign())
    outbound = outbound.filter(campaign__isnull=False).exclude(campaign="")
    # Inbound messages carry no tag: an opt-out counts for the campaigns whose message the
    # customer had received before writing STOP.
    figures = list(_figures(outbound, "campaign", end, True))
    errors = _errors(outbound, "campaign")
    return [
        _row(
            row["campaign"],
            row["campaign"],
            row,
            errors.get(row["campaign"], []),
            row["opt_outs"],
        )
        for row in sorted(figures, key=lambda row: row["campaign"])
    ]


def messaging_analytics(
    *, start: datetime, end: datetime, account: Account | None = None
) -> dict[str, Any]:
    """Delivery and response rates of what was sent in [start, end), per messaging service
    (plus "No service") and per campaign tag (`CAMPAIGN_TAG_KEYS`)."""
    return {
        "start": start.isoformat(),
        "end": end.isoformat(),
        "services": _service_rows(start, end, account),
        "tags": _tag_rows(start, end, account),
    }
