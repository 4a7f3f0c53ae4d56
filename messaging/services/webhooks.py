"""Provider webhooks, the whole path minus HTTP: find the provider, answer a handshake,
check the signature before anything else, keep the raw request, queue the events.

The request does the least that makes the webhook safe to acknowledge: verify, parse (a
signed body that makes no sense is answered 400 with the reason and kept, state
`rejected`), find each message's sender (an unknown one is a 400 naming it), then one
transaction writes the raw request with its parsed receipts and one `InboundEvent` per
message. The events' unique (provider, provider message id) drops provider retries right
there. After commit the Celery task `inbound_pending_process` (one enqueue per burst, not
per request) turns the events into messages (contact,
conversation, opt-out keywords, the product's handlers), applies the receipts, and queues
media downloads and the integrator's webhook. `inbound_sweep` (beat) retries events a lost
task left pending. A bad signature is answered 403 and only logged.
"""

import json
import logging
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from messaging.caching import TtlCache
from messaging.delivery import store as delivery_store
from messaging.errors import MORE_INFO, MessagingError
from messaging.models import InboundEvent, Message, ProviderAccount, WebhookLog
from messaging.providers import (
    InboundMedia,
    InboundMessage,
    ProviderError,
    StatusUpdate,
    WebhookEvents,
    WebhookPayloadError,
    WebhookRequest,
    adapter_for,
)
from messaging.services.dispatch import status_update_apply
from messaging.services.inbound import (
    inbound_caches_clear,
    inbound_message_check,
    inbound_message_receive,
)

log = logging.getLogger(__name__)

FORBIDDEN = 20403
PAYLOAD_INVALID = 20422
# Headers worth keeping with the raw body (signatures and content type), not cookies.
KEPT_HEADERS = (
    "Content-Type",
    "User-Agent",
    "X-Twilio-Signature",
    "X-Hub-Signature-256",
    "X-Simulator-Signature",
)
MAX_LOGGED_BODY = 256 * 1024


@dataclass(frozen=True)
class WebhookAnswer:
    status: int
    body: str | dict
    content_type: str = "application/json"
    sids: list[str] = field(default_factory=list)  # messages in this request
    new: int = 0  # of those, stored now (the others were retries)


def error_body(code: int, message: str, status: int) -> dict:
    """Twilio's error body, as every webhook answers a refusal."""
    return {
        "code": code,
        "message": message,
        "more_info": MORE_INFO.format(code=code),
        "status": status,
    }


def _error(code: int, message: str, status: int) -> WebhookAnswer:
    return WebhookAnswer(status=status, body=error_body(code, message, status))


def _kept_headers(request: WebhookRequest) -> dict[str, str]:
    return {name: request.headers[name] for name in KEPT_HEADERS if name in request.headers}


def _logged_body(request: WebhookRequest) -> str:
    return request.body[:MAX_LOGGED_BODY].decode("utf-8", errors="replace")


def _log_fields(provider: ProviderAccount, request: WebhookRequest, state: str, **fields) -> dict:
    return {
        "provider_id": provider.id,
        "method": request.method,
        "url": request.url[:1000],
        "headers": _kept_headers(request),
        "body": _logged_body(request),
        "state": state,
        **fields,
    }


def _log(provider: ProviderAccount, request: WebhookRequest, state: str, **fields) -> WebhookLog:
    return WebhookLog.objects.create(**_log_fields(provider, request, state, **fields))


# Webhooks come in bursts for the same few providers: their rows are read once every few
# seconds per process, not on every request.
_providers = TtlCache(seconds=5.0, max_size=1000)


def active_provider(provider_sid: str) -> ProviderAccount | None:
    return _providers.get(
        provider_sid, lambda: ProviderAccount.objects.filter(sid=provider_sid, active=True).first()
    )


def webhook_caches_clear() -> None:
    """Forget cached providers and senders (tests; after bulk changes)."""
    _providers.clear()
    inbound_caches_clear()


def provider_webhook_handle(
    *, provider_sid: str, request: WebhookRequest, inline: bool = False
) -> WebhookAnswer:
    """Answer one webhook. `inline` processes its events in this call (the simulator's page,
    whose user waits for the reply to show) instead of in Celery."""
    provider = active_provider(provider_sid)
    if provider is None:
        return _error(20404, f"No active provider account {provider_sid}.", 404)
    try:
        adapter = adapter_for(provider)
    except ProviderError as error:
        return _error(20404, error.message, 404)
    if request.method == "GET":
        answer = adapter.handshake(request)
        if answer is None:
            return _error(20004, "This webhook accepts POST only.", 405)
        return WebhookAnswer(answer.status, answer.body, answer.content_type)
    if not adapter.verify_request(request):
        log.warning("webhook for %s: bad or missing signature (%s)", provider.sid, request.url)
        return _error(FORBIDDEN, "The webhook signature is missing or does not match.", 403)
    try:
        events = adapter.parse_webhook(request)
        usable, errors = _with_senders(provider, events.messages)
    except WebhookPayloadError as error:
        _log(provider, request, WebhookLog.State.REJECTED, error=error.reason[:500])
        return _error(PAYLOAD_INVALID, error.reason, 400)
    reasons = "; ".join(text for _, text in errors)
    if errors and not usable and not events.statuses:
        # Nothing in it could be used: tell the provider why (it is kept in the log).
        _log(provider, request, WebhookLog.State.REJECTED, error=reasons[:500])
        code = errors[0][0] if len(errors) == 1 else PAYLOAD_INVALID
        return _error(code, reasons, 400)
    webhook_id = _queue(provider, request, events, usable, reasons)
    if inline:
        _, new = webhook_process(webhook_id=webhook_id)
        sids = _message_sids(provider, usable)
    else:
        sids, new = [], 0
        if usable or events.statuses:
            transaction.on_commit(_kick_processing)
    ack = adapter.webhook_ack(events)
    return WebhookAnswer(ack.status, ack.body, ack.content_type, sids, new)


def _kick_key() -> str:
    return delivery_store.key("inbound", "kick")


def _kick_processing() -> None:
    """Make sure a task will process what was just committed, with one enqueue for a whole
    burst instead of one per request: the first request of a burst sets the flag and
    enqueues; the task clears the flag before it reads, so whatever commits after that sets
    it again and enqueues the next run."""
    from messaging import tasks

    if delivery_store.client().set(_kick_key(), "1", nx=True, ex=60):
        tasks.inbound_pending_process.delay()


def _inbound_fields(item: InboundMessage) -> dict:
    return {
        "provider_message_id": item.provider_message_id,
        "from_address": item.from_address,
        "to_address": item.to_address,
        "to_ref": item.to_ref,
        "body": item.body,
        "media": item.media,
        "profile_name": item.profile_name,
        "params": dict(item.extra),
    }


def _with_senders(provider, messages) -> tuple[list[tuple[InboundMessage, int]], list]:
    """Each message that passes every check, with its sender's id; (code, text) errors for
    the others (unknown sender, bad address, bad media...)."""
    usable, errors = [], []
    for index, item in enumerate(messages):
        try:
            sender, *_ = inbound_message_check(provider=provider, **_inbound_fields(item))
        except MessagingError as error:
            errors.append((error.code, f"message {index}: {error.message}"))
            continue
        usable.append((item, sender.id))
    return usable, errors


def _message_sids(provider, usable) -> list[str]:
    """The stored messages of these events, the first delivery's for a retry."""
    ids = [item.provider_message_id for item, _ in usable]
    by_id = dict(
        InboundEvent.objects.filter(provider=provider, provider_message_id__in=ids)
        .exclude(message=None)
        .values_list("provider_message_id", "message__sid")
    )
    return [by_id[i] for i in ids if i in by_id]


def _queue(provider, request, events: WebhookEvents, usable, reasons: str) -> int:
    """Write the raw request and its events; returns the WebhookLog id. A retry's events
    collide with the first delivery's unique (provider, provider message id): dropped."""
    now = timezone.now()
    log_fields = _log_fields(
        provider,
        request,
        WebhookLog.State.ACCEPTED,
        error=reasons[:500],
        messages=len(events.messages),
        new_messages=0,
        statuses=len(events.statuses),
        receipts=[_jsonable(update) for update in events.statuses],
        received_at=now,
        # `processed_at` is about receipts (events have their own state): none, done.
        processed_at=None if events.statuses else now,
    )
    rows = [
        (item.provider_message_id[:128], {**_jsonable(item), "sender_id": sender_id})
        for item, sender_id in usable
    ]
    if connection.vendor == "postgresql":
        return _queue_in_one_statement(log_fields, rows)
    with transaction.atomic():
        entry = WebhookLog.objects.create(**log_fields)
        InboundEvent.objects.bulk_create(
            [
                InboundEvent(
                    provider_id=provider.id,
                    provider_message_id=pmid,
                    webhook=entry,
                    payload=payload,
                )
                for pmid, payload in rows
            ],
            ignore_conflicts=True,
        )
    return entry.id


def _queue_in_one_statement(log_fields: dict, rows: list[tuple[str, dict]]) -> int:
    """PostgreSQL: the log row and its events in one statement: one round trip and one
    commit, where BEGIN, two INSERTs and COMMIT were four on the webhook's hot path."""
    log_table = connection.ops.quote_name(WebhookLog._meta.db_table)
    event_table = connection.ops.quote_name(InboundEvent._meta.db_table)
    columns = list(log_fields)
    json_columns = {"headers", "receipts"}
    values = ", ".join("%s::jsonb" if c in json_columns else "%s" for c in columns)
    params = [json.dumps(log_fields[c]) if c in json_columns else log_fields[c] for c in columns]
    params += [log_fields["provider_id"], InboundEvent.State.PENDING, log_fields["received_at"]]
    params.append(json.dumps([{"pmid": pmid, "payload": payload} for pmid, payload in rows]))
    sql = (
        f"WITH log AS (INSERT INTO {log_table} ({', '.join(columns)}) VALUES ({values}) "
        "RETURNING id), "
        f"events AS (INSERT INTO {event_table} (provider_id, provider_message_id, webhook_id, "
        "payload, state, error, received_at) "
        "SELECT %s, e.pmid, log.id, e.payload, %s, '', %s FROM log, "
        "jsonb_to_recordset(%s::jsonb) AS e(pmid text, payload jsonb) "
        "ON CONFLICT (provider_id, provider_message_id) DO NOTHING) "
        "SELECT id FROM log"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()[0]


# ---------------------------------------------------------------- events ↔ JSON


def _jsonable(event) -> dict:
    def plain(value):
        if isinstance(value, datetime):
            return value.isoformat()
        if isinstance(value, list | tuple):
            return [plain(v) for v in value]
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        return value

    return plain(asdict(event))


def _when(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _status_update(data: dict) -> StatusUpdate:
    data = {**data, "watermark": _when(data.get("watermark"))}
    return StatusUpdate(**{**data, "timestamp": _when(data.get("timestamp"))})


# ---------------------------------------------------------------- the Celery side


def _store_event(event: InboundEvent) -> tuple[Message | None, bool]:
    payload = event.payload
    try:
        message, created = inbound_message_receive(
            provider=event.provider,
            provider_message_id=payload["provider_message_id"],
            from_address=payload["from_address"],
            to_address=payload.get("to_address", ""),
            to_ref=payload.get("to_ref", ""),
            body=payload.get("body", ""),
            media=[InboundMedia(**item) for item in payload.get("media", [])],
            profile_name=payload.get("profile_name", ""),
            params=payload.get("extra") or {},
        )
    except MessagingError as error:
        InboundEvent.objects.filter(id=event.id, state=InboundEvent.State.PENDING).update(
            state=InboundEvent.State.FAILED, error=f"{error.code}: {error.message}"[:255]
        )
        log.warning("inbound event %s failed: %s %s", event.id, error.code, error.message)
        return None, False
    InboundEvent.objects.filter(id=event.id).update(
        state=InboundEvent.State.STORED, message=message, error=""
    )
    return message, created


def inbound_events_process(events) -> tuple[list[str], int]:
    """Turn pending events into messages, in order, in one transaction (one commit for the
    batch; each event in its own savepoint, so one that fails takes nothing else with it).
    Returns the messages' sids and how many are new."""
    sids, new = [], 0
    stored_per_webhook: Counter[int] = Counter()
    with transaction.atomic():
        for event in events:
            try:
                with transaction.atomic():
                    message, created = _store_event(event)
            except Exception as exc:  # a bug or a bad row must not block the queue behind it
                log.exception("inbound event %s could not be stored", event.id)
                InboundEvent.objects.filter(id=event.id).update(
                    state=InboundEvent.State.FAILED, error=f"{type(exc).__name__}: {exc}"[:255]
                )
                continue
            if message is not None:
                sids.append(message.sid)
                new += created
            if created and event.webhook_id:
                stored_per_webhook[event.webhook_id] += 1
        for webhook_id, count in stored_per_webhook.items():
            WebhookLog.objects.filter(id=webhook_id).update(new_messages=F("new_messages") + count)
    return sids, new


def webhook_process(*, webhook_id: int) -> tuple[list[str], int]:
    """The slow half of one webhook: its messages and receipts. Idempotent."""
    entry = WebhookLog.objects.select_related("provider").filter(id=webhook_id).first()
    if entry is None or entry.provider is None:
        return [], 0
    pending = InboundEvent.objects.select_related("provider").filter(
        webhook_id=webhook_id, state=InboundEvent.State.PENDING
    )
    sids, new = inbound_events_process(pending.order_by("id"))
    if entry.processed_at is None:
        for data in entry.receipts:
            status_update_apply(provider_id=entry.provider_id, update=_status_update(data))
    WebhookLog.objects.filter(id=webhook_id).update(processed_at=timezone.now())
    return sids, new


def _pending_events_claim_and_process(cutoff: datetime, batch: int) -> tuple[int, int]:
    """Claim a batch of pending events (`SKIP LOCKED`: two runs at once take different
    events instead of one waiting on the other's unique-index inserts) and store them in
    the claiming transaction. Returns (new messages, events claimed)."""
    with transaction.atomic():
        events = list(
            InboundEvent.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("provider")
            .filter(state=InboundEvent.State.PENDING, received_at__lte=cutoff)
            .order_by("id")[:batch]
        )
        if not events:
            return 0, 0
        return inbound_events_process(events)[1], len(events)


def inbound_pending_process(*, batch: int = 50, older_than_seconds: float = 0.0) -> int:
    """Process every pending event and unprocessed receipt, oldest first, until none is
    left (the task behind `_kick_processing`); with `older_than_seconds`, only those that
    waited that long (the sweep after a lost task). Returns how many new messages were
    stored."""
    if not older_than_seconds:
        delivery_store.client().delete(_kick_key())
    cutoff = timezone.now() - timedelta(seconds=older_than_seconds)
    total = 0
    while True:
        stored, claimed = _pending_events_claim_and_process(cutoff, batch)
        total += stored
        webhook_ids = list(
            WebhookLog.objects.filter(
                state=WebhookLog.State.ACCEPTED, processed_at__isnull=True, received_at__lte=cutoff
            )
            .order_by("id")
            .values_list("id", flat=True)[:batch]
        )
        if not claimed and not webhook_ids:
            return total
        for webhook_id in webhook_ids:
            webhook_process(webhook_id=webhook_id)


def inbound_sweep(*, older_than_seconds: float = 30.0) -> int:
    """Events and receipts a lost task left waiting (its worker killed): process them now."""
    return inbound_pending_process(older_than_seconds=older_than_seconds)


def webhook_log_purge(*, now=None) -> int:
    """Drop raw requests older than WEBHOOK_LOG_RETENTION_DAYS (the messages stay)."""
    cutoff = (now or timezone.now()) - timedelta(days=settings.WEBHOOK_LOG_RETENTION_DAYS)
    deleted, _ = WebhookLog.objects.filter(received_at__lt=cutoff).delete()
    return deleted
