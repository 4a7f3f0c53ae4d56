"""Inbound messages: a provider's webhook, already verified and parsed, becomes a stored
message on its contact's open conversation, exactly once, and the product is told after
commit.

Exactly once: a partial unique index on (sender, provider message id) of inbound rows. A
provider retrying a webhook, even into several web processes at the same instant, stores one
message; the losers get the stored row back with `created=False` and tell nobody again.
What takes time (downloading media, forwarding to the integrator's webhook) runs after
commit in the Celery task `inbound_process`.
"""

from collections.abc import Sequence

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from messaging import encoding, hooks
from messaging.addresses import AddressError, canonical_address, parse_address
from messaging.caching import TtlCache
from messaging.errors import MessagingError
from messaging.models import (
    Channel,
    Conversation,
    Direction,
    Media,
    Message,
    MessageStatusChange,
    ProviderAccount,
    Sender,
)
from messaging.providers.base import InboundMedia
from messaging.services.keywords import optout_inbound_apply
from messaging.services.messages import (
    MAX_MEDIA,
    contact_get_or_create,
    conversation_get_or_open,
)
from messaging.sids import new_sid
from messaging.statuses import Status
from messaging.validators import refuse_nul, validate_webhook_url

MAX_PROVIDER_ID = Message._meta.get_field("provider_message_id").max_length
MAX_MEDIA_URL = Media._meta.get_field("url").max_length


# Inbound bursts go to the same few senders: each lookup is kept a few seconds per process
# (a sender deactivated in the admin stops receiving within that time).
_senders = TtlCache(seconds=5.0, max_size=10_000)


def sender_for_inbound(provider: ProviderAccount, to_address: str, to_ref: str = "") -> Sender:
    """The active sender of `provider` a message was sent to (MessagingError 21606 if none)."""
    sender = _senders.get(
        (provider.id, to_address, to_ref),
        lambda: _sender_lookup(provider, to_address, to_ref),
    )
    if sender is None:
        shown = to_address or to_ref
        raise MessagingError(
            21606,
            f"The 'To' address {shown!r} is not an active sender of provider {provider.name}.",
            "To",
        )
    return sender


def inbound_caches_clear() -> None:
    """Forget cached senders (tests; after bulk changes)."""
    _senders.clear()


def _sender_lookup(provider: ProviderAccount, to_address: str, to_ref: str) -> Sender | None:
    senders = Sender.objects.select_related("service", "account").filter(
        provider=provider, active=True
    )
    sender = None
    if to_ref:  # the provider's own id (WhatsApp phone number id) is the surest key
        sender = senders.filter(provider_ref=to_ref).first()
    key = canonical_address(to_address)
    if sender is None and key:
        sender = senders.filter(address=key).first()
    return sender


def _customer_address(raw: str, sender: Sender):
    try:
        address = parse_address(raw or "")
    except AddressError as exc:
        raise MessagingError(21211, f"The 'From' address is not valid: {exc}", "From") from exc
    if address.channel != sender.channel:
        raise MessagingError(
            21211,
            f"The 'From' address {address.value} is on {address.channel}; "
            f"{sender.address} is a {sender.channel} sender.",
            "From",
        )
    return address


def _as_inbound_media(item) -> InboundMedia:
    if isinstance(item, InboundMedia):
        return item
    url, content_type = item  # the simulator's (url, content type) pairs
    return InboundMedia(url=url, content_type=content_type)


def _checked_media(media: Sequence) -> list[InboundMedia]:
    items = [_as_inbound_media(item) for item in media]
    if len(items) > MAX_MEDIA:
        raise MessagingError(21623, f"{len(items)} media items; at most {MAX_MEDIA}.", "media")
    for item in items:
        if item.provider_media_id and not item.url:
            continue  # fetched through the provider's API by id
        try:
            validate_webhook_url(item.url)
        except ValidationError as exc:
            raise MessagingError(21620, f"Invalid media URL {item.url!r}.", "media") from exc
        if not item.url or len(item.url) > MAX_MEDIA_URL:
            raise MessagingError(21620, "A media URL is empty or too long.", "media")
    return items


def _params(extra) -> dict[str, str]:
    """The provider's extra webhook parameters, kept for the integrator (as strings)."""
    return {str(k): str(v) for k, v in (extra or {}).items() if v is not None}


def inbound_message_check(
    *,
    provider: ProviderAccount,
    provider_message_id: str,
    from_address: str,
    to_address: str = "",
    to_ref: str = "",
    body: str = "",
    media: Sequence = (),
    profile_name: str = "",
    params: dict | None = None,
) -> tuple[Sender, object, list[InboundMedia], dict[str, str]]:
    """Everything that can be wrong with an inbound message, checked without writing:
    its sender, its customer address, its media and parameters (MessagingError if not)."""
    params = _params(params)
    refuse_nul(
        id=provider_message_id,
        From=from_address,
        To=to_address,
        body=body,
        profile_name=profile_name,
        params=params,
    )
    if not provider_message_id or len(provider_message_id) > MAX_PROVIDER_ID:
        raise MessagingError(
            20422, f"The provider message id must be 1 to {MAX_PROVIDER_ID} characters.", "id"
        )
    sender = sender_for_inbound(provider, to_address, to_ref)
    customer = _customer_address(from_address, sender)
    return sender, customer, _checked_media(media), params


def inbound_message_receive(*, provider: ProviderAccount, **fields) -> tuple[Message, bool]:
    """Store one inbound message; returns it and whether it is new. `fields` are
    `inbound_message_check`'s.

    A provider retry (same sender and provider message id) returns the stored message with
    `created=False` and tells no handler again. `params` are the provider's extra webhook
    parameters (ButtonPayload, Latitude, WaId, ...), stored for the integrator.
    """
    sender, customer, media, params = inbound_message_check(provider=provider, **fields)
    provider_message_id = fields["provider_message_id"]
    body = fields.get("body") or ""
    profile_name = fields.get("profile_name") or ""

    # No read first: webhook retries already stop at their InboundEvent, so a message here
    # is nearly always new; the unique index catches the rare repeat.
    try:
        with transaction.atomic():
            message = _store(
                sender, customer, provider_message_id, body or "", media, profile_name, params
            )
    except IntegrityError:
        # A concurrent retry stored it first (the unique index said so): return that one.
        existing = _stored(sender, provider_message_id)
        if existing is None:
            raise
        return existing, False
    return message, True


def _stored(sender: Sender, provider_message_id: str) -> Message | None:
    return (
        Message.objects.filter(
            sender=sender, direction=Direction.INBOUND, provider_message_id=provider_message_id
        )
        .order_by("id")
        .first()
    )


def _store(
    sender: Sender,
    customer,
    provider_message_id: str,
    body: str,
    media: list[InboundMedia],
    profile_name: str,
    params: dict[str, str],
) -> Message:
    now = timezone.now()
    contact = contact_get_or_create(
        account=sender.account, address=customer, name=profile_name[:128]
    )
    if profile_name and not contact.name:
        contact.name = profile_name[:128]
        contact.save(update_fields=["name"])
    conversation = conversation_get_or_open(
        contact=contact, business_address=sender.address, service=sender.service
    )
    Conversation.objects.filter(id=conversation.id).update(last_message_at=now, last_inbound_at=now)
    analysis = encoding.analyze(body)
    message = Message.objects.create(
        sid=new_sid("MM" if media else "SM"),
        account=sender.account,
        service=sender.service,
        sender=sender,
        contact=contact,
        conversation=conversation,
        channel=sender.channel,
        direction=Direction.INBOUND,
        from_address=customer.value,
        to_address=sender.address,
        body=body,
        status=Status.RECEIVED,
        encoding=analysis.encoding if body else "",
        num_segments=max(analysis.segments, 1) if sender.channel == Channel.SMS else 1,
        num_media=len(media),
        provider_message_id=provider_message_id,
        tags={"params": params, "profile_name": profile_name} if params or profile_name else {},
        date_sent=now,
    )
    Media.objects.bulk_create(
        Media(
            message=message,
            url=item.url,
            provider_media_id=item.provider_media_id,
            content_type=item.content_type or "",
        )
        for item in media
    )
    MessageStatusChange.objects.create(message=message, status=Status.RECEIVED, source="provider")
    # STOP/START/HELP act before the product sees the message (it gets OptOutType).
    optout_inbound_apply(message)
    _after_commit(message)
    return message


def _after_commit(message: Message) -> None:
    from messaging import tasks

    if message.num_media or _forward_target(message.sender):
        transaction.on_commit(lambda: tasks.inbound_process.delay(message.id))
    for handler in hooks.inbound_handlers():
        # robust: one failing product handler neither hides the message from the others
        # nor turns the provider's delivery into an error (it would only retry).
        transaction.on_commit(lambda h=handler: h(message.id), robust=True)


def _forward_target(sender: Sender) -> str:
    from messaging.services.forwarding import forward_urls

    return forward_urls(sender).primary
