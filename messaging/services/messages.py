"""Outbound messages: create (validate everything, write nothing half), status changes (a
monotonic state machine, every change recorded), cancel, redact, sender choice.

The APIs parse their wire format into typed values and call these functions; every refusal is
a `MessagingError` carrying Twilio's code.
"""

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import F
from django.db.models.functions import Coalesce
from django.utils import timezone

from messaging import encoding, hooks, windows
from messaging.addresses import Address, AddressError, canonical_address, parse_address
from messaging.addresses import Channel as AddressChannel
from messaging.delivery import store as delivery_store
from messaging.delivery.engine import queued_on_commit
from messaging.errors import MessagingError, error_message
from messaging.models import (
    DEFAULT_VALIDITY_PERIOD,
    Account,
    Channel,
    Contact,
    Conversation,
    Direction,
    Media,
    Message,
    MessageStatusChange,
    MessagingService,
    Sender,
    SenderKind,
    StickySender,
)
from messaging.selectors import last_inbound_times
from messaging.sender_choice import Candidate, NoSenderError, choose_sender
from messaging.sender_choice import SenderKind as ChoiceKind
from messaging.services import outbound_media
from messaging.services.content_templates import content_resolve
from messaging.sids import is_sid, new_sid
from messaging.statuses import TRANSITIONS, UNDISPATCHED, Status
from messaging.validators import refuse_nul, validate_webhook_url

MAX_MEDIA = 10
SCHEDULE_MIN_AHEAD = timedelta(seconds=300)
SCHEDULE_MAX_AHEAD = timedelta(days=35)
# Statuses after which a status callback says the message reached the provider and beyond.
_DATE_SENT_STATUSES = frozenset({Status.SENT, Status.DELIVERED, Status.UNDELIVERED, Status.READ})


@dataclass
class MessageRequest:
    """A create request, already parsed from its wire format into Python values."""

    to: str
    from_: str | None = None
    messaging_service_sid: str | None = None
    body: str | None = None
    media_urls: Sequence[str] = ()
    content_sid: str | None = None
    content_variables: dict[str, str] | None = None
    status_callback: str | None = None
    validity_period: int | None = None
    smart_encoded: bool | None = None
    schedule_type: str | None = None
    send_at: datetime | None = None
    tags: dict = field(default_factory=dict)
    direction: str = Direction.OUTBOUND_API
    # Only services/keywords.py sets this: the answer to STOP/START/HELP, which must reach
    # the customer although STOP has just blocked them. No API parameter maps to it.
    keyword_reply: bool = False
    # Messenger's message tag: "HUMAN_AGENT" lets a person answer up to 7 days after the
    # customer's last message (the desk sets it; REFERENCE.md 5).
    messenger_tag: str = ""
    # The template translation to send with content_sid (e.g. "es_MX"); None: the contact's
    # language, else the template's default (services/content_templates.py).
    content_language: str | None = None


# ---------------------------------------------------------------- validation


def _parse_to(raw: str | None) -> Address:
    if not raw or not raw.strip():
        raise MessagingError(21604, field="To")
    try:
        return parse_address(raw)
    except AddressError as exc:
        raise MessagingError(21211, f"The 'To' number {raw} is not valid: {exc}", "To") from exc


def _resolve_sender(account: Account, raw_from: str, to: Address) -> Sender:
    key = canonical_address(raw_from)
    sender = (
        Sender.objects.select_related("service", "provider")
        .filter(account=account, address=key, active=True)
        .first()
    )
    if sender is None:
        raise MessagingError(
            21606, f"The 'From' address {raw_from} is not an active sender of this account.", "From"
        )
    if sender.channel != to.channel:
        raise MessagingError(
            21606,
            f"The 'From' address {raw_from} is a {sender.channel} sender; "
            f"the 'To' address {to.value} is on {to.channel}.",
            "From",
        )
    return sender


def _resolve_service(account: Account, sid: str) -> MessagingService:
    service = MessagingService.objects.filter(account=account, sid=sid).first()
    if service is None or not is_sid(sid, "MG"):
        raise MessagingError(
            21701, f"The Messaging Service {sid} does not exist.", "MessagingServiceSid"
        )
    return service


def _check_content(request: MessageRequest) -> None:
    if request.body is not None and len(request.body) > encoding.MAX_BODY_CHARS:
        raise MessagingError(
            21617,
            f"The message body has {len(request.body)} characters; the limit is 1600.",
            "Body",
        )
    if len(request.media_urls) > MAX_MEDIA:
        raise MessagingError(
            21623, f"{len(request.media_urls)} media URLs; at most {MAX_MEDIA}.", "MediaUrl"
        )
    for url in request.media_urls:
        try:
            validate_webhook_url(url)
        except Exception as exc:
            raise MessagingError(
                21620, f"Invalid media URL {url!r}: use http(s).", "MediaUrl"
            ) from exc
    if request.content_sid is not None and not is_sid(request.content_sid, "HX"):
        raise MessagingError(
            21655, f"{request.content_sid!r} is not a ContentSid (HX…).", "ContentSid"
        )
    if request.content_variables is not None and request.content_sid is None:
        raise MessagingError(21656, "ContentVariables needs a ContentSid.", "ContentVariables")
    if request.content_sid is not None and (request.body or request.media_urls):
        # Ours, not Twilio's documented behaviour: a template's text becomes the body, so a
        # Body or MediaUrl beside it would be dropped without a word. Refused instead.
        raise MessagingError(
            20422,
            "Send either ContentSid (the template's text becomes the body) or Body/MediaUrl, "
            "not both.",
            "Body" if request.body else "MediaUrl",
        )
    if not (request.body or request.media_urls or request.content_sid):
        raise MessagingError(21602, "A Body, a MediaUrl or a ContentSid is required.", "Body")


def _check_callback_and_validity(request: MessageRequest) -> None:
    if request.status_callback:
        try:
            validate_webhook_url(request.status_callback)
        except Exception as exc:
            raise MessagingError(
                21609,
                f"StatusCallback {request.status_callback!r} is not an http(s) URL.",
                "StatusCallback",
            ) from exc
    period = request.validity_period
    if period is not None and not 1 <= period <= DEFAULT_VALIDITY_PERIOD:
        raise MessagingError(21624, "ValidityPeriod must be 1 to 36000 seconds.", "ValidityPeriod")


def _check_schedule(request: MessageRequest, now: datetime) -> datetime | None:
    if request.schedule_type is None:
        return None
    if request.schedule_type != "fixed":
        raise MessagingError(35116, field="ScheduleType")
    if request.send_at is None:
        raise MessagingError(35111, field="SendAt")
    if not request.messaging_service_sid:
        raise MessagingError(35118, field="MessagingServiceSid")
    if request.send_at - now <= SCHEDULE_MIN_AHEAD:
        raise MessagingError(35114, field="SendAt")
    if request.send_at - now > SCHEDULE_MAX_AHEAD:
        raise MessagingError(35115, field="SendAt")
    return request.send_at


def _check_pool_reaches(service: MessagingService, to: Address, needs_mms: bool) -> None:
    try:
        choose_sender(to=to, candidates=_candidates(service), needs_mms=needs_mms)
    except NoSenderError as exc:
        raise MessagingError(
            21408 if exc.code == 21408 else 21704,
            f"The Messaging Service {service.sid} has no sender for this recipient: {exc.message}",
            "MessagingServiceSid",
        ) from exc


# ---------------------------------------------------------------- create


def message_create(*, account: Account, request: MessageRequest, source: str = "api") -> Message:
    """Validate and store an outbound message; sending happens after commit, in Celery."""
    now = timezone.now()
    refuse_nul(
        To=request.to,
        From=request.from_,
        MessagingServiceSid=request.messaging_service_sid,
        Body=request.body,
        MediaUrl=list(request.media_urls),
        ContentSid=request.content_sid,
        ContentVariables=request.content_variables or {},
        StatusCallback=request.status_callback,
        Tags=request.tags or {},
    )
    to = _parse_to(request.to)
    _check_content(request)
    _check_callback_and_validity(request)
    send_at = _check_schedule(request, now)

    service = None
    if request.messaging_service_sid:
        service = _resolve_service(account, request.messaging_service_sid)
    sender = None
    if request.from_:
        sender = _resolve_sender(account, request.from_, to)
        if service is not None and sender.service_id != service.id:
            raise MessagingError(
                21606, f"{sender.address} is not in the pool of {service.sid}.", "From"
            )
        service = service or sender.service
    elif service is None:
        raise MessagingError(21603, field="From")

    needs_mms = bool(request.media_urls) and to.channel == Channel.SMS
    if sender is not None and needs_mms and not sender.mms_capable:
        raise MessagingError(21606, f"{sender.address} cannot send MMS.", "From")
    if sender is None:
        _check_pool_reaches(service, to, needs_mms)
    content = None
    if request.content_sid:
        content = content_resolve(
            account=account,
            content_sid=request.content_sid,
            variables=request.content_variables,
            channel=to.channel,
            to_address=to.value,
            language=request.content_language,
            sender=sender,
        )
    if not request.keyword_reply:
        _refuse_if_opted_out(to.value, service=service, sender=sender)
    if sender is not None:
        _refuse_outside_window(account, to, sender, request, now)

    smart = request.smart_encoded
    if smart is None:
        smart = service.smart_encoding if service is not None else False
    if send_at is not None:
        status = Status.SCHEDULED
    elif sender is None:
        status = Status.ACCEPTED
    else:
        status = Status.QUEUED

    with transaction.atomic():
        message = Message(
            sid=new_sid("MM" if request.media_urls else "SM"),
            account=account,
            service=service,
            channel=to.channel,
            direction=request.direction,
            to_address=to.value,
            body=content.text if content else request.body or "",
            status=status,
            num_media=len(request.media_urls),
            status_callback=request.status_callback or "",
            validity_period=request.validity_period
            or (service.validity_period if service else DEFAULT_VALIDITY_PERIOD),
            smart_encoded=smart,
            schedule_type=request.schedule_type or "",
            send_at=send_at,
            content_sid=request.content_sid or "",
            content_variables=content.variables if content else None,
            content_language=content.translation.language if content else "",
            tags=_tags(request),
            keyword_reply=request.keyword_reply,
        )
        message.expires_at = (send_at or now) + timedelta(seconds=message.validity_period)
        message.contact = contact_get_or_create(account=account, address=to)
        if sender is not None:
            _assign_sender(message, sender, rule="from")
            if status == Status.QUEUED and sender_queue_is_full(sender, message):
                raise MessagingError(
                    21611,
                    f"{sender.address} already holds more than {message.validity_period} s "
                    "of queued segments; try again later or use a messaging service.",
                    "From",
                )
        if request.media_urls:
            # Held until its media are fetched and checked (services/outbound_media.py).
            message.not_before = outbound_media.hold_until(now)
        message.save()
        Media.objects.bulk_create(Media(message=message, url=url) for url in request.media_urls)
        MessageStatusChange.objects.create(message=message, status=status, source=source)
        _dispatch_on_commit(message)
        if request.media_urls:
            transaction.on_commit(lambda: _check_media_later(message.id))
    return message


def _refuse_if_opted_out(
    address: str, *, service: MessagingService | None, sender: Sender | None
) -> None:
    from messaging.services.optout import optout_is_blocked

    if optout_is_blocked(address=address, service=service, sender=sender):
        raise MessagingError(21610, f"{address} has opted out of messages from this sender.", "To")


def _tags(request: MessageRequest) -> dict:
    tags = dict(request.tags or {})
    if request.messenger_tag:
        tags[windows.TAG_KEY] = request.messenger_tag
    return tags


def _refuse_outside_window(
    account: Account, to: Address, sender: Sender, request: MessageRequest, now: datetime
) -> None:
    """WhatsApp and Messenger only allow free-form messages within the customer-service
    window; refused at once (63016) rather than accepted and failed later."""
    if not windows.has_window(to.channel):
        return
    last = last_inbound_times(account.id, [(to.value, sender.address)]).get(
        (to.value, sender.address)
    )
    allowed = windows.may_send(
        to.channel,
        last,
        now,
        template=bool(request.content_sid),
        tag=request.messenger_tag,
    )
    if not allowed:
        raise windows.outside_window_error(to.channel, last)


def _assign_sender(message: Message, sender: Sender, *, rule: str) -> None:
    """Fix From: the sender, the encoding and segment count, the conversation."""
    message.sender = sender
    message.from_address = sender.address
    message.sender_rule = rule
    result = encoding.analyze(message.body, smart_encoding=message.smart_encoded)
    message.encoding = result.encoding if message.body else ""
    # An MMS or a template is one billable unit even without text.
    message.num_segments = max(result.segments, 1)
    if message.contact is not None:
        message.conversation = conversation_get_or_open(
            contact=message.contact, business_address=sender.address, service=message.service
        )


def _check_media_later(message_id: int) -> None:
    from messaging import tasks

    tasks.outbound_media_check.delay(message_id)


def _dispatch_on_commit(message: Message) -> None:
    from messaging import tasks

    if message.status == Status.ACCEPTED:
        transaction.on_commit(lambda: tasks.message_route.delay(message.id))
    elif message.status == Status.QUEUED:
        queued_on_commit(message.sender_id, message.num_segments)


def sender_queue_is_full(sender: Sender, message: Message) -> bool:
    """More than the validity period's worth of segments already waiting (REFERENCE.md 1)."""
    capacity = sender.segments_per_second * message.validity_period
    return delivery_store.depth(sender.id) + message.num_segments > capacity


# ---------------------------------------------------------------- contacts & conversations


def contact_get_or_create(*, account: Account, address: Address, name: str = "") -> Contact:
    defaults = {
        "channel": address.channel,
        "country": address.country or "",
        "area_code": address.area_code or "",
        "name": name,
    }
    # get_or_create already recovers from the IntegrityError of a concurrent create.
    contact, _ = Contact.objects.get_or_create(
        account=account, address=address.value, defaults=defaults
    )
    return contact


def conversation_get_or_open(
    *, contact: Contact, business_address: str, service: MessagingService | None
) -> Conversation:
    # The partial unique index makes a concurrent second open fail; get_or_create then reads
    # the winner's row.
    conversation, _ = Conversation.objects.get_or_create(
        contact=contact,
        business_address=business_address,
        state=Conversation.State.OPEN,
        defaults={"account_id": contact.account_id, "channel": contact.channel, "service": service},
    )
    return conversation


# ---------------------------------------------------------------- sender choice (services)


def _candidates(service: MessagingService) -> list[Candidate]:
    return [
        Candidate(
            id=s.id,
            channel=AddressChannel(s.channel),
            kind=ChoiceKind(s.kind),
            address=s.address,
            country=s.country or None,
            mms=s.mms_capable,
            active=s.active,
        )
        for s in service.senders.filter(active=True)
    ]


def message_route(*, message_id: int) -> bool:
    """Choose From for a message accepted by a service, then queue it. Idempotent."""
    with transaction.atomic():
        message = (
            Message.objects.select_for_update(of=("self",))
            .select_related("service", "contact")
            .filter(id=message_id, status=Status.ACCEPTED)
            .first()
        )
        if message is None:
            return False
        service = message.service
        to = parse_address(message.to_address)
        sticky = StickySender.objects.filter(service=service, contact_address=to.value).first()
        try:
            choice = choose_sender(
                to=to,
                candidates=_candidates(service),
                needs_mms=message.num_media > 0 and to.channel == Channel.SMS,
                sticky_sender_id=sticky.sender_id if sticky else None,
                sticky_enabled=service.sticky_sender,
                area_code_geomatch=service.area_code_geomatch,
                country_geomatch=service.country_geomatch,
            )
        except NoSenderError as exc:
            message_status_apply(
                message_id=message.id,
                status=Status.FAILED,
                error_code=21704,
                source="system",
                error_text=exc.message,
            )
            return False
        sender = Sender.objects.select_related("service").get(id=choice.sender_id)
        _assign_sender(message, sender, rule=str(choice.rule))
        if sender_queue_is_full(sender, message):
            message.save(update_fields=["sender", "from_address", "sender_rule", "date_updated"])
            message_status_apply(
                message_id=message.id,
                status=Status.FAILED,
                error_code=30001,
                source="system",
                error_text=f"The queue of {sender.address} is full (queue overflow).",
            )
            return False
        message.save(
            update_fields=[
                "sender",
                "from_address",
                "sender_rule",
                "encoding",
                "num_segments",
                "conversation",
                "date_updated",
            ]
        )
        if service.sticky_sender and sender.kind != SenderKind.ALPHANUMERIC:
            StickySender.objects.update_or_create(
                service=service,
                contact_address=to.value,
                defaults={"sender": sender, "last_used_at": timezone.now()},
            )
        moved = message_status_apply(message_id=message.id, status=Status.QUEUED, source="system")
        if moved:
            queued_on_commit(sender.id, message.num_segments)
    return moved


# ---------------------------------------------------------------- statuses


def message_status_apply(
    *,
    message_id: int,
    status: str,
    source: str,
    error_code: int | None = None,
    error_text: str = "",
    provider_message_id: str | None = None,
    only_from: Collection[Status] | None = None,
) -> bool:
    """Move a message forward; a stale or backward move is ignored (returns False).

    The conditional UPDATE is the claim: with several workers applying receipts at once,
    exactly one of them wins each transition. `only_from` narrows the statuses the move may
    start from (e.g. fail only what has not reached a provider).
    """
    new = Status(status)
    predecessors = [old for old, nexts in TRANSITIONS.items() if new in nexts]
    if only_from is not None:
        predecessors = [old for old in predecessors if old in only_from]
    now = timezone.now()
    updates: dict = {"status": new, "date_updated": now}
    if error_code is not None:
        updates["error_code"] = error_code
        updates["error_message"] = (error_text or error_message(error_code))[:255]
    if new in _DATE_SENT_STATUSES:
        updates["date_sent"] = Coalesce(F("date_sent"), now)
    if provider_message_id:
        updates["provider_message_id"] = provider_message_id
    with transaction.atomic():
        changed = Message.objects.filter(id=message_id, status__in=predecessors).update(**updates)
        if not changed:
            return False
        MessageStatusChange.objects.create(
            message_id=message_id, status=new, error_code=error_code, source=source
        )
        from messaging.services.callbacks import status_callback_enqueue

        status_callback_enqueue(message_id=message_id)
        for handler in hooks.status_handlers():
            transaction.on_commit(lambda h=handler: h(message_id, new))
    return True


def message_fail_undispatched(*, message_id: int, error_code: int, source: str) -> bool:
    """Fail a message that has not reached a provider yet (opt-out, expiry)."""
    return message_status_apply(
        message_id=message_id,
        status=Status.FAILED,
        error_code=error_code,
        source=source,
        only_from=UNDISPATCHED,
    )


def message_cancel(*, message: Message) -> Message:
    """Cancel a scheduled message (Status=canceled); anything else is refused."""
    if message.status == Status.CANCELED:
        return message
    if message.status != Status.SCHEDULED or not message_status_apply(
        message_id=message.id, status=Status.CANCELED, source="api"
    ):
        raise MessagingError(
            20422,
            f"Message {message.sid} is {message.status}; only scheduled messages can be canceled.",
            "Status",
        )
    message.refresh_from_db()
    return message


def message_redact(*, message: Message) -> Message:
    """Blank the body (Body=""), for privacy; allowed once the message is no longer pending."""
    if message.status in UNDISPATCHED or message.status == Status.SENDING:
        raise MessagingError(
            20422, f"Message {message.sid} is {message.status}; redact it once it is sent.", "Body"
        )
    Message.objects.filter(id=message.id).update(
        body="", redacted=True, date_updated=timezone.now()
    )
    message.refresh_from_db()
    return message


def scheduled_release_due(*, now: datetime | None = None, limit: int = 500) -> int:
    """Release scheduled messages whose SendAt has come (the beat tick calls this)."""
    from messaging import tasks

    now = now or timezone.now()
    due = list(
        Message.objects.filter(status=Status.SCHEDULED, send_at__lte=now)
        .order_by("send_at")
        .values_list("id", flat=True)[:limit]
    )
    released = 0
    for message_id in due:
        # Only the move is needed here: route and send re-check opt-out and validity.
        if message_status_apply(message_id=message_id, status=Status.ACCEPTED, source="system"):
            released += 1
            transaction.on_commit(lambda m=message_id: tasks.message_route.delay(m))
    return released


STICKY_MAX_IDLE = timedelta(days=365)


def sticky_purge_stale(*, now: datetime | None = None) -> int:
    """Forget `To → From` mappings unused for a year (REFERENCE.md 2)."""
    cutoff = (now or timezone.now()) - STICKY_MAX_IDLE
    deleted, _ = StickySender.objects.filter(last_used_at__lt=cutoff).delete()
    return deleted
