"""Reads of the desk: who may see what, and the snapshots the pages resync from.

Every snapshot reads its stream's position (`events.stream_position`) *before* its data, so
a browser that applies the frames after that position on top of the snapshot misses nothing
(docs/desk.md).
"""

from typing import Any

from django.db.models import Count, Max, Q
from django.urls import reverse
from django.utils import timezone

from contactcenter.accounts.roles import Role
from contactcenter.accounts.selectors import user_has_role
from contactcenter.desk import events
from contactcenter.desk.models import CannedResponse, Disposition, Handoff, Note
from messaging import content_templates
from messaging.models import Channel, ContentTemplate, Direction, Message, TemplateStatus
from messaging.windows import has_window
from routing.errors import RoutingError
from routing.models import (
    Activity,
    Reservation,
    ReservationStatus,
    TaskQueue,
    Worker,
    WorkerChannel,
)

HELD = (ReservationStatus.ACCEPTED, ReservationStatus.WRAPPING)
MESSAGES_LIMIT = 500


# ---------------------------------------------------------------- who may see what


def is_supervisor(user) -> bool:
    return bool(user and user.is_authenticated and user_has_role(user, Role.SUPERVISOR))


def is_desk_user(user) -> bool:
    return bool(
        user
        and user.is_authenticated
        and (user_has_role(user, Role.AGENT) or user_has_role(user, Role.SUPERVISOR))
    )


def workers_of_user(user) -> list[Worker]:
    if not (user and user.is_authenticated):
        return []
    return list(
        Worker.objects.filter(user=user).select_related("activity", "workspace").order_by("id")
    )


def worker_of_user(user) -> Worker | None:
    workers = workers_of_user(user)
    return workers[0] if workers else None


def held_reservation(user, conversation_sid: str) -> Reservation | None:
    """The accepted or wrapping reservation through which `user` holds the conversation."""
    return (
        Reservation.objects.filter(
            worker__user=user,
            status__in=HELD,
            task__handoff__conversation__sid=conversation_sid,
        )
        .select_related("task", "task__handoff", "worker", "queue")
        .order_by("-id")
        .first()
    )


def may_watch(user, stream: str) -> bool:
    """May `user` subscribe to `stream`? Agents: their own worker's stream and the
    conversations they hold; supervisors: the supervisor stream and any conversation."""
    kind, _, key = stream.partition(":")
    if stream == events.SUPERVISOR_STREAM:
        return is_supervisor(user)
    if kind == "agent" and key:
        return Worker.objects.filter(sid=key, user=user).exists()
    if kind == "conversation" and key:
        if is_supervisor(user):
            return Handoff.objects.filter(conversation__sid=key).exists()
        return held_reservation(user, key) is not None
    return False


def agent_streams(user) -> list[str]:
    return [events.agent_stream(w.sid) for w in workers_of_user(user)]


def _worker_for(user) -> Worker:
    worker = worker_of_user(user)
    if worker is None:
        raise RoutingError(20404, "You are not set up as a worker; ask an admin to link one.")
    return worker


def conversation_for_viewer(user, conversation_sid: str) -> tuple[Handoff, Reservation | None]:
    """The conversation's latest hand-off and the viewer's reservation (None: a supervisor
    monitoring). RoutingError 20404/20403 otherwise."""
    handoff = (
        Handoff.objects.filter(conversation__sid=conversation_sid)
        .select_related("conversation", "conversation__contact", "task", "task__queue")
        .order_by("-date_created")
        .first()
    )
    if handoff is None:
        raise RoutingError(20404, f"No conversation {conversation_sid} on the desk.")
    reservation = held_reservation(user, conversation_sid)
    if reservation is None and not is_supervisor(user):
        raise RoutingError(20403, "This conversation is not yours.")
    return handoff, reservation


# ---------------------------------------------------------------- JSON shapes


def media_url(media) -> str:
    if media.file:
        return reverse("media-file", args=[media.sid])
    return media.url


def author_of(message: Message) -> tuple[str, str]:
    tags = message.tags or {}
    if message.direction == Direction.INBOUND:
        return "customer", ""
    if tags.get("desk_agent"):
        return "agent", str(tags.get("desk_agent_name") or tags["desk_agent"])
    if tags.get("flow"):
        return "bot", ""
    return "system", ""


def message_json(message: Message) -> dict[str, Any]:
    author, author_name = author_of(message)
    return {
        "sid": message.sid,
        "direction": "inbound" if message.direction == Direction.INBOUND else "outbound",
        "author": author,
        "author_name": author_name,
        "body": message.body,
        "status": message.status,
        "error_code": message.error_code,
        "error_message": message.error_message,
        "date_created": events.iso(message.date_created),
        "encoding": message.encoding,
        "num_segments": message.num_segments,
        "media": [
            {"sid": m.sid, "url": media_url(m), "content_type": m.content_type}
            for m in message.media.all()
        ],
    }


def note_json(note: Note) -> dict[str, Any]:
    author = note.author
    return {
        "id": note.pk,
        "author_name": (author.get_full_name() or author.username) if author else "",
        "body": note.body,
        "system": note.system,
        "date_created": events.iso(note.date_created),
    }


def person_name(user) -> str:
    return user.get_full_name() or user.username


# ---------------------------------------------------------------- the agent's snapshot


def _offer_json(reservation: Reservation) -> dict[str, Any]:
    task = reservation.task
    attributes = task.attributes or {}
    return events.ReservationOffered(
        reservation_sid=reservation.sid,
        task_sid=task.sid,
        conversation_sid=attributes.get("conversationSid"),
        channel=str(attributes.get("channelType") or task.task_channel.unique_name),
        customer_name=str(attributes.get("name") or attributes.get("customerAddress") or ""),
        customer_address=str(attributes.get("customerAddress") or ""),
        queue_name=reservation.queue.friendly_name if reservation.queue_id else None,
        priority=task.priority,
        waiting_since=events.iso(task.date_created),
        timeout_at=events.iso(reservation.timeout_at),
    ).payload()


def offer_event_by_sid(reservation_sid: str) -> events.ReservationOffered | None:
    reservation = (
        Reservation.objects.filter(sid=reservation_sid)
        .select_related("task", "task__task_channel", "queue")
        .first()
    )
    if reservation is None:
        return None
    return events.ReservationOffered(**_offer_json(reservation))


def _conversation_summaries(worker: Worker) -> list[dict[str, Any]]:
    reservations = list(
        Reservation.objects.filter(worker=worker, status__in=HELD, task__handoff__isnull=False)
        .select_related("task__handoff__conversation__contact")
        .order_by("accepted_at", "id")
    )
    handoffs = [r.task.handoff for r in reservations]
    unread = dict(
        Message.objects.filter(
            direction=Direction.INBOUND,
            conversation_id__in=[h.conversation_id for h in handoffs],
        )
        .filter(_unread_filter(handoffs))
        .values_list("conversation_id")
        .annotate(n=Count("id"))
    )
    last = {
        m.conversation_id: m
        for m in Message.objects.filter(
            id__in=Message.objects.filter(conversation_id__in=[h.conversation_id for h in handoffs])
            .values("conversation_id")
            .annotate(last=Max("id"))
            .values("last")
        )
    }
    summaries = []
    for reservation, handoff in zip(reservations, handoffs, strict=True):
        conversation = handoff.conversation
        latest = last.get(conversation.pk)
        summaries.append(
            {
                "sid": conversation.sid,
                "channel": conversation.channel,
                "customer_name": conversation.contact.name or conversation.contact.address,
                "customer_address": conversation.contact.address,
                "task_sid": reservation.task.sid,
                "reservation_sid": reservation.sid,
                "status": reservation.status,
                "unread": unread.get(conversation.pk, 0),
                "last_message_at": events.iso(conversation.last_message_at),
                "last_body": (latest.body[:140] if latest else ""),
            }
        )
    return summaries


def _unread_filter(handoffs: list[Handoff]) -> Q:
    condition = Q(pk__in=[])
    for handoff in handoffs:
        condition |= Q(conversation_id=handoff.conversation_id, id__gt=handoff.last_read_message_id)
    return condition


def worker_json(worker: Worker) -> dict[str, Any]:
    return {
        "sid": worker.sid,
        "name": worker.friendly_name,
        "activity_sid": worker.activity.sid,
        "activity_name": worker.activity.friendly_name,
        "available": worker.available,
        "activity_changed_at": events.iso(worker.activity_changed_at),
    }


def activities_json(workspace_id: int) -> list[dict[str, Any]]:
    return [
        {"sid": a.sid, "name": a.friendly_name, "available": a.available}
        for a in Activity.objects.filter(workspace_id=workspace_id).order_by("friendly_name")
    ]


def dispositions_json() -> list[dict[str, Any]]:
    return [
        {"code": d.code, "label": d.label, "requires_notes": d.requires_notes}
        for d in Disposition.objects.filter(active=True)
    ]


def canned_json() -> list[dict[str, Any]]:
    return [
        {
            "id": c.pk,
            "title": c.title,
            "shortcut": c.shortcut,
            "body": c.body,
            "language": c.language,
        }
        for c in CannedResponse.objects.filter(active=True)
    ]


def desk_state(user) -> dict[str, Any]:
    """The agent's snapshot: worker, activities, pending offers, held conversations."""
    worker = _worker_for(user)
    position = events.stream_position(events.agent_stream(worker.sid))
    worker.refresh_from_db()
    offers = (
        Reservation.objects.filter(worker=worker, status=ReservationStatus.PENDING)
        .select_related("task", "task__task_channel", "queue")
        .order_by("date_created")
    )
    capacity = {
        wc.task_channel.unique_name: {"capacity": wc.capacity, "assigned": wc.assigned_tasks}
        for wc in WorkerChannel.objects.filter(worker=worker).select_related("task_channel")
    }
    return {
        "streams": {events.agent_stream(worker.sid): position},
        "worker": worker_json(worker),
        "activities": activities_json(worker.workspace_id),
        "offers": [_offer_json(r) for r in offers],
        "conversations": _conversation_summaries(worker),
        "capacity": capacity,
        "dispositions": dispositions_json(),
        "canned_responses": canned_json(),
    }


# ---------------------------------------------------------------- one conversation


def _templates_json(conversation) -> list[dict[str, Any]]:
    if conversation.channel not in (Channel.WHATSAPP, Channel.MESSENGER):
        return []
    wanted = str(conversation.contact.attributes.get("language") or "")
    found = []
    templates = ContentTemplate.objects.filter(account_id=conversation.account_id).prefetch_related(
        "translations"
    )
    for template in templates.order_by("friendly_name"):
        translations = [
            t
            for t in template.translations.all()
            if conversation.channel != Channel.WHATSAPP or t.status == TemplateStatus.APPROVED
        ]
        if not translations:
            continue
        codes = [t.language for t in translations]
        code = content_templates.language_pick(codes, wanted) if wanted else None
        chosen = next((t for t in translations if t.language == code), None)
        chosen = chosen or next(
            (t for t in translations if t.language == template.default_language), translations[0]
        )
        found.append(
            {
                "sid": template.sid,
                "name": template.friendly_name,
                "language": chosen.language,
                "body": chosen.body,
                "placeholders": content_templates.placeholders(chosen),
            }
        )
    return found


def window_json(conversation) -> dict[str, Any]:
    """The desk answers Messenger with the HUMAN_AGENT tag, so its window is 7 days."""
    applies = has_window(conversation.channel)
    if conversation.channel == Channel.MESSENGER:
        ends = conversation.human_agent_window_ends_at
    else:
        ends = conversation.window_ends_at
    return {
        "applies": applies,
        "open": (not applies) or (ends is not None and timezone.now() < ends),
        "ends_at": events.iso(ends),
    }


def conversation_variables(handoff: Handoff, viewer) -> dict[str, str]:
    """What canned responses may say: {{customer.name}}, {{agent.name}}, and the task's
    attributes collected by the flow ({{language}}...)."""
    contact = handoff.conversation.contact
    values = {
        str(k): str(v)
        for k, v in (handoff.task.attributes or {}).items()
        if isinstance(v, str | int | float)
    }
    values.update(
        {
            "customer.name": contact.name or contact.address,
            "customer.address": contact.address,
            "agent.name": person_name(viewer),
            "agent.first_name": viewer.first_name or viewer.username,
        }
    )
    return values


def conversation_detail(user, conversation_sid: str) -> dict[str, Any]:
    position = events.stream_position(events.conversation_stream(conversation_sid))
    handoff, reservation = conversation_for_viewer(user, conversation_sid)
    conversation = handoff.conversation
    contact = conversation.contact
    messages = list(
        Message.objects.filter(conversation=conversation)
        .prefetch_related("media")
        .order_by("-date_created", "-id")[:MESSAGES_LIMIT]
    )
    messages.reverse()
    task = (reservation.task if reservation else None) or handoff.task
    queue = task.queue if task.queue_id else None
    return {
        "stream": position,
        "readonly": reservation is None,
        "conversation": {
            "sid": conversation.sid,
            "channel": conversation.channel,
            "business_address": conversation.business_address,
            "customer": {
                "name": contact.name or contact.address,
                "address": contact.address,
                "channel": contact.channel,
                "country": contact.country,
            },
            "attributes": {**(contact.attributes or {}), **(task.attributes or {})},
            "window": window_json(conversation),
            "task_sid": task.sid,
            "task_status": task.assignment_status,
            "reservation_sid": reservation.sid if reservation else None,
            "reservation_status": reservation.status if reservation else None,
            "queue_name": queue.friendly_name if queue else None,
        },
        "messages": [message_json(m) for m in messages],
        "notes": [note_json(n) for n in conversation.notes.select_related("author")],
        "templates": _templates_json(conversation),
        "variables": conversation_variables(handoff, user),
    }


def transfer_targets(user) -> dict[str, Any]:
    worker = _worker_for(user) if not is_supervisor(user) else worker_of_user(user)
    workspace_id = worker.workspace_id if worker else None
    queues = (
        TaskQueue.objects.all()
        if workspace_id is None
        else TaskQueue.objects.filter(workspace_id=workspace_id)
    )
    workers = Worker.objects.select_related("activity")
    if workspace_id is not None:
        workers = workers.filter(workspace_id=workspace_id)
    if worker is not None:
        workers = workers.exclude(pk=worker.pk)
    return {
        "queues": [
            {
                "sid": q.sid,
                "name": q.friendly_name,
                "waiting": q.waiting,
            }
            for q in queues.annotate(
                waiting=Count(
                    "tasks", filter=Q(tasks__assignment_status__in=["pending", "reserved"])
                )
            ).order_by("friendly_name")
        ],
        "agents": [
            {
                "sid": w.sid,
                "name": w.friendly_name,
                "activity_name": w.activity.friendly_name,
                "available": w.available,
            }
            for w in workers.order_by("friendly_name")
        ],
    }


# ---------------------------------------------------------------- the supervisor's snapshot


def console_state(*, now, workspace_sid: str = "") -> dict[str, Any]:
    """Everything the supervisor console shows live, for one workspace (the first one
    unless named)."""
    from datetime import timedelta

    from contactcenter.desk import supervision
    from routing.models import Workspace

    position = events.stream_position(events.SUPERVISOR_STREAM)
    workspaces = Workspace.objects.order_by("id")
    workspace = (workspaces.filter(sid=workspace_sid) if workspace_sid else workspaces).first()
    if workspace is None:
        raise RoutingError(20404, "No routing workspace yet: an admin creates one first.")
    return {
        "streams": {events.SUPERVISOR_STREAM: position},
        "generated_at": now.isoformat(),
        "workspace": {"sid": workspace.sid, "name": workspace.friendly_name},
        "queues": supervision.queue_rows(workspace, now=now),
        "agents": supervision.agent_rows(workspace, now=now),
        "tasks": supervision.live_tasks(workspace, now=now),
        "activities": activities_json(workspace.pk),
        "charts": {
            "wait_times": supervision.wait_time_histogram(
                workspace, start=now - timedelta(hours=24), end=now
            ),
            "volume_per_hour": supervision.volume_per_hour(now=now),
        },
    }
