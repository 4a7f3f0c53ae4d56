"""Reads of the messaging engine, each scoped to an account. A sid that cannot exist is a 404
before any query, so malformed input (NUL characters included) never reaches SQL."""

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from django.db.models import Count, Max, Min, OuterRef, Prefetch, Q, QuerySet, Subquery, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from messaging.addresses import canonical_address
from messaging.errors import MessagingError
from messaging.models import Account, Conversation, Message, MessagingService, Sender
from messaging.sids import is_sid
from messaging.statuses import FAILURES, Status

PAGE_TOKEN_PREFIX = "PI"
# At most 18 digits: any larger number would overflow the bigint id column.
_PAGE_TOKEN = re.compile(rf"^{PAGE_TOKEN_PREFIX}([0-9]{{1,18}})$")


@dataclass(frozen=True)
class MessagePage:
    items: list[Message]
    next_token: str | None


def _not_found(resource: str, sid: str) -> MessagingError:
    return MessagingError(20404, f"The requested resource {resource} {sid} was not found.")


def message_get(*, account: Account, sid: str) -> Message:
    if not (is_sid(sid, "SM") or is_sid(sid, "MM")):
        raise _not_found("Message", sid)
    message = (
        Message.objects.select_related("service", "sender").filter(account=account, sid=sid).first()
    )
    if message is None:
        raise _not_found("Message", sid)
    return message


def _token_position(token: str) -> int:
    match = _PAGE_TOKEN.match(token)
    if match is None:
        raise MessagingError(20422, f"PageToken {token!r} is not valid.", "PageToken")
    return int(match.group(1))


def messages_list(
    *,
    account: Account,
    to: str | None = None,
    from_: str | None = None,
    status: str | None = None,
    date_sent_after: datetime | None = None,
    date_sent_before: datetime | None = None,
    page_size: int = 50,
    page_token: str | None = None,
) -> MessagePage:
    """Newest first, keyset-paged: the token is the position after the last row returned, so
    pages stay stable while new messages arrive. `date_sent_after` is inclusive,
    `date_sent_before` exclusive."""
    query = Message.objects.select_related("service").filter(account=account)
    if to:
        query = query.filter(to_address=canonical_address(to))
    if from_:
        query = query.filter(from_address=canonical_address(from_))
    if status:
        query = query.filter(status=status)
    if date_sent_after is not None:
        query = query.filter(date_sent__gte=date_sent_after)
    if date_sent_before is not None:
        query = query.filter(date_sent__lt=date_sent_before)
    if page_token:
        query = query.filter(id__lt=_token_position(page_token))
    rows = list(query.order_by("-id")[: page_size + 1])
    items = rows[:page_size]
    next_token = f"{PAGE_TOKEN_PREFIX}{items[-1].id}" if len(rows) > page_size else None
    return MessagePage(items=items, next_token=next_token)


def senders_of(*, account: Account) -> QuerySet[Sender]:
    return Sender.objects.filter(account=account).select_related("provider", "service")


def sender_get(*, account: Account, sid: str) -> Sender:
    sender = senders_of(account=account).filter(sid=sid).first() if is_sid(sid, "PN") else None
    if sender is None:
        raise _not_found("Sender", sid)
    return sender


def services_of(*, account: Account) -> QuerySet[MessagingService]:
    return (
        MessagingService.objects.filter(account=account)
        .select_related("account")
        .prefetch_related(Prefetch("senders", queryset=Sender.objects.only("id", "sid", "service")))
    )


def service_get(*, account: Account, sid: str) -> MessagingService:
    service = services_of(account=account).filter(sid=sid).first() if is_sid(sid, "MG") else None
    if service is None:
        raise _not_found("Messaging Service", sid)
    return service


# ---------------------------------------------------------------- delivery queues

_QUEUED = Q(status=Status.QUEUED)
_SENDING = Q(status=Status.SENDING)
_ACCEPTED = Q(status=Status.ACCEPTED)
_SCHEDULED = Q(status=Status.SCHEDULED)


def _waiting_since() -> Coalesce:
    """When a message started waiting: a released scheduled message from its send_at, not from
    the day it was scheduled, so it does not look ancient."""
    return Coalesce("send_at", "date_created")


def _age_seconds(now: datetime, since: datetime | None) -> float | None:
    if since is None:
        return None
    return round(max(0.0, (now - since).total_seconds()), 3)


def _drain_seconds(segments: int, rate: float | None) -> float | None:
    if not segments:
        return 0.0
    if not rate:
        return None
    return round(segments / rate, 3)


def delivery_queue_depths(*, account: Account | None = None, now: datetime | None = None) -> dict:
    """What is waiting to leave, per sender and per messaging service, from the database only.

    `account=None` covers every account (the admin page); the API passes the caller's.
    Four queries whatever the volume: queued/sending grouped by (sender, service), accepted/
    scheduled grouped by service, then the senders and services named.

    Returns `{"senders": [...], "services": [...], "generated_at": now}`:

    - `senders`: only senders with something queued or sending (an idle sender is omitted),
      most queued segments first. `oldest_queued_age_seconds` counts from
      COALESCE(send_at, date_created) and is null when nothing is queued.
      `throughput` is the sender's segments per second in effect (its own or its kind's
      default); `drain_seconds_estimate` = queued_segments / throughput, null for an inactive
      sender (the engine does not drain it).
    - `services`: every service of the account, idle ones with zeros, by name. `accepted` are
      waiting for a sender to be chosen, `scheduled` for their send_at; queued and sending
      count the service's messages already on a sender. `throughput` is the sum of the active
      senders in the pool. `drain_seconds_estimate` is when the last of the service's queued
      messages should leave: senders drain in parallel, so it is the longest drain estimate
      among the senders holding them (a sender's whole queue counts, whoever filled it);
      null when one of those senders is inactive.
    """
    now = now or timezone.now()
    messages = Message.objects.all() if account is None else Message.objects.filter(account=account)

    on_senders = (
        messages.filter(status__in=[Status.QUEUED, Status.SENDING], sender__isnull=False)
        .order_by()
        .values("sender_id", "service_id")
        .annotate(
            queued=Count("id", filter=_QUEUED),
            segments=Sum("num_segments", filter=_QUEUED),
            sending=Count("id", filter=_SENDING),
            oldest=Min(_waiting_since(), filter=_QUEUED),
        )
    )
    before_senders = (
        messages.filter(status__in=[Status.ACCEPTED, Status.SCHEDULED], service__isnull=False)
        .order_by()
        .values("service_id")
        .annotate(
            accepted=Count("id", filter=_ACCEPTED),
            scheduled=Count("id", filter=_SCHEDULED),
            oldest_accepted=Min(_waiting_since(), filter=_ACCEPTED),
        )
    )

    def blank() -> dict:
        return {"queued": 0, "segments": 0, "sending": 0, "oldest": None, "holders": set()}

    by_sender: dict[int, dict] = {}
    by_service: dict[int, dict] = {}
    for row in on_senders:
        # A sender's queue can hold messages of several origins (its service, direct sends):
        # roll the (sender, service) groups up both ways.
        targets = [by_sender.setdefault(row["sender_id"], blank())]
        if row["service_id"] is not None:
            targets.append(by_service.setdefault(row["service_id"], blank()))
            if row["queued"]:
                targets[1]["holders"].add(row["sender_id"])
        for figures in targets:
            figures["queued"] += row["queued"]
            figures["segments"] += row["segments"] or 0
            figures["sending"] += row["sending"]
            if row["oldest"] is not None and (
                figures["oldest"] is None or row["oldest"] < figures["oldest"]
            ):
                figures["oldest"] = row["oldest"]
    waiting_for_sender = {row["service_id"]: row for row in before_senders}

    services = MessagingService.objects.select_related("account").order_by("friendly_name", "id")
    if account is not None:
        services = services.filter(account=account)
    services = list(services)
    senders = {
        sender.id: sender
        for sender in Sender.objects.select_related("account", "service").filter(
            Q(id__in=list(by_sender)) | Q(service__in=services)
        )
    }

    sender_entries = []
    drain_of: dict[int, float | None] = {}
    for sender_id, figures in by_sender.items():
        sender = senders[sender_id]
        rate = sender.segments_per_second
        drain = _drain_seconds(figures["segments"], rate if sender.active else None)
        drain_of[sender_id] = drain
        sender_entries.append(
            {
                "id": sender.id,
                "sid": sender.sid,
                "address": sender.address,
                "kind": sender.kind,
                "channel": sender.channel,
                "friendly_name": sender.friendly_name,
                "active": sender.active,
                "account_sid": sender.account.sid,
                "service_sid": sender.service.sid if sender.service else None,
                "queued_messages": figures["queued"],
                "queued_segments": figures["segments"],
                "sending": figures["sending"],
                "oldest_queued_age_seconds": _age_seconds(now, figures["oldest"]),
                "throughput": rate,
                "drain_seconds_estimate": drain,
            }
        )
    sender_entries.sort(key=lambda e: (-e["queued_segments"], -e["sending"], e["address"]))

    pool: dict[int, list[Sender]] = {}
    for sender in senders.values():
        if sender.service_id is not None:
            pool.setdefault(sender.service_id, []).append(sender)

    service_entries = []
    for service in services:
        figures = by_service.get(service.id) or blank()
        before = waiting_for_sender.get(service.id) or {}
        drains = [drain_of[sender_id] for sender_id in figures["holders"]]
        drain = None if None in drains else max(drains, default=0.0)
        members = pool.get(service.id, [])
        service_entries.append(
            {
                "id": service.id,
                "sid": service.sid,
                "friendly_name": service.friendly_name,
                "account_sid": service.account.sid,
                "senders": sum(1 for s in members if s.active),
                "accepted": before.get("accepted", 0),
                "scheduled": before.get("scheduled", 0),
                "oldest_accepted_age_seconds": _age_seconds(now, before.get("oldest_accepted")),
                "queued_messages": figures["queued"],
                "queued_segments": figures["segments"],
                "sending": figures["sending"],
                "oldest_queued_age_seconds": _age_seconds(now, figures["oldest"]),
                "throughput": round(sum(s.segments_per_second for s in members if s.active), 2),
                "drain_seconds_estimate": drain,
            }
        )
    return {"senders": sender_entries, "services": service_entries, "generated_at": now}


def _queued_figure(owner: str, aggregate) -> Subquery:
    """One figure of the queued messages of the outer row (a sender or a service)."""
    return Subquery(
        Message.objects.filter(**{owner: OuterRef("pk")}, status=Status.QUEUED)
        .order_by()
        .values(owner)
        .annotate(figure=aggregate)
        .values("figure")[:1]
    )


def with_queue_figures(queryset: QuerySet, *, owner: str) -> QuerySet:
    """Annotate senders (`owner="sender"`) or services (`owner="service"`) with
    `queued_messages`, `queued_segments` and `oldest_queued_since` (a datetime or None), as
    correlated subqueries: one query for a whole admin changelist page."""
    return queryset.annotate(
        queued_messages=Coalesce(_queued_figure(owner, Count("id")), 0),
        queued_segments=Coalesce(_queued_figure(owner, Sum("num_segments")), 0),
        oldest_queued_since=_queued_figure(owner, Min(_waiting_since())),
    )


@dataclass(frozen=True)
class BulkProgress:
    statuses: dict[str, int]  # status → messages
    failure_codes: dict[int, int]  # error code → failed or undelivered messages


def bulk_progress(*, account: Account, run: str, first_id: int, last_id: int) -> BulkProgress:
    """Where the messages of one `send_bulk` run (tagged `{"bulk": run}`) are: one grouped
    query. The id range keeps the scan to the run's rows; the tag tells them apart from
    messages sent meanwhile."""
    rows = (
        Message.objects.filter(account=account, id__gte=first_id, id__lte=last_id, tags__bulk=run)
        .order_by()
        .values("status", "error_code")
        .annotate(n=Count("id"))
    )
    statuses: dict[str, int] = {}
    failure_codes: dict[int, int] = {}
    for row in rows:
        statuses[row["status"]] = statuses.get(row["status"], 0) + row["n"]
        if row["status"] in FAILURES:
            code = row["error_code"] or 0
            failure_codes[code] = failure_codes.get(code, 0) + row["n"]
    return BulkProgress(statuses=statuses, failure_codes=failure_codes)


def last_inbound_times(
    account_id: int, pairs: Iterable[tuple[str, str]]
) -> dict[tuple[str, str], datetime]:
    """When each customer last wrote to each business address, for (customer, business)
    pairs, in one query (conversations closed since count: the window is the customer's)."""
    pairs = set(pairs)
    if not pairs:
        return {}
    rows = (
        Conversation.objects.filter(
            account_id=account_id,
            contact__address__in={customer for customer, _ in pairs},
            business_address__in={business for _, business in pairs},
            last_inbound_at__isnull=False,
        )
        .values_list("contact__address", "business_address")
        .annotate(last=Max("last_inbound_at"))
    )
    return {(c, b): last for c, b, last in rows if (c, b) in pairs}


def conversation_open_for(
    *, account_id: int, contact_address: str, business_address: str
) -> Conversation | None:
    """The open conversation between a customer address and a business address (at most one:
    a partial unique index), with its contact."""
    return (
        Conversation.objects.select_related("contact")
        .filter(
            account_id=account_id,
            contact__address=contact_address,
            business_address=business_address,
            state=Conversation.State.OPEN,
        )
        .first()
    )
