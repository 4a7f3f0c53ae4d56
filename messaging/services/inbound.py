"""Inbound messages: a provider's webhook, already verified and parsed, becomes a stored
message on its contact's open conversation, exactly once, and the product is told after
commit.

Opt-out keywords, typed webhooks per provider and the raw-payload log come with the channels
work; this is the path they extend.
"""

from collections.abc import Sequence

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from messaging import encoding, hooks
from messaging.addresses import AddressError, canonical_address, parse_address
from messaging.errors import MessagingError
from messaging.models import (
    Conversation,
    Direction,
    Media,
    Message,
    MessageStatusChange,
    ProviderAccount,
    Sender,
)
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


def _sender_for(provider: ProviderAccount, to_address: str) -> Sender:
    key = canonical_address(to_address)
    sender = (
        Sender.objects.select_related("service", "account")
        .filter(provider=provider, address=key, active=True)
        .first()
        if key
        else None
    )
    if sender is None:
        raise MessagingError(
            21606,
            f"The 'To' address {to_address!r} is not an active sender of provider {provider.name}.",
            "To",
        )
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


def _checked_media(media: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    items = list(media)
    if len(items) > MAX_MEDIA:
        raise MessagingError(21623, f"{len(items)} media items; at most {MAX_MEDIA}.", "media")
    for url, _content_type in items:
        try:
            validate_webhook_url(url)
        except ValidationError as exc:
            raise MessagingError(21620, f"Invalid media URL {url!r}.", "media") from exc
        if not url or len(url) > MAX_MEDIA_URL:
            raise MessagingError(21620, "A media URL is empty or too long.", "media")
    return items


def inbound_message_receive(
    *,
    provider: ProviderAccount,
    provider_message_id: str,
    from_address: str,
    to_address: str,
    body: str,
    media: Sequence[tuple[str, str]] = (),
    profile_name: str = "",
    raw: dict | None = None,
) -> tuple[Message, bool]:
    """Store one inbound message; returns it and whether it is new.

    A provider retry (same provider and provider message id) returns the stored message with
    `created=False` and tells no handler again. `raw` is accepted for the payload log that the
    channels work adds; it is not stored yet.
    """
    refuse_nul(
        id=provider_message_id,
        From=from_address,
        To=to_address,
        body=body,
        profile_name=profile_name,
        media=list(media),
    )
    if not provider_message_id or len(provider_message_id) > MAX_PROVIDER_ID:
        raise MessagingError(
            20422, f"The provider message id must be 1 to {MAX_PROVIDER_ID} characters.", "id"
        )
    sender = _sender_for(provider, to_address)
    customer = _customer_address(from_address, sender)
    body = body or ""
    media = _checked_media(media)

    with transaction.atomic():
        # Retries of one webhook race each other: the sender row is the lock that serialises
        # them (Message has no unique provider id to lean on). SQLite's IMMEDIATE
        # transactions serialise writers already; there this is a plain read.
        Sender.objects.select_for_update().filter(id=sender.id).values_list("id").first()
        existing = (
            Message.objects.filter(
                sender__provider=provider,
                direction=Direction.INBOUND,
                provider_message_id=provider_message_id,
            )
            .order_by("id")
            .first()
        )
        if existing is not None:
            return existing, False

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
        Conversation.objects.filter(id=conversation.id).update(
            last_message_at=now, last_inbound_at=now
        )
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
            num_segments=max(analysis.segments, 1),
            num_media=len(media),
            provider_message_id=provider_message_id,
            date_sent=now,
        )
        Media.objects.bulk_create(
            Media(message=message, url=url, content_type=content_type or "")
            for url, content_type in media
        )
        MessageStatusChange.objects.create(
            message=message, status=Status.RECEIVED, source="provider"
        )
        for handler in hooks.inbound_handlers():
            # robust: one failing product handler neither hides the message from the others
            # nor turns the provider's delivery into an error (it would only retry).
            transaction.on_commit(lambda h=handler: h(message.id), robust=True)
    return message, True
