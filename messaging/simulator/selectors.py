"""Reads for the customer phone page: simulator senders, threads and one thread's messages."""

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Count, Max, Q

from messaging.addresses import Address, AddressError, parse_address
from messaging.models import Channel, Direction, Message, ProviderAccount, ProviderKind, Sender
from messaging.providers.simulator import simulator_settings

THREAD_LIMIT = 40
MESSAGE_LIMIT = 200


class CustomerAddressError(ValueError):
    """The typed customer address is not usable with the chosen sender."""


@dataclass(frozen=True)
class Thread:
    customer: str
    sender_sid: str
    sender_address: str
    channel: str
    last_body: str
    last_direction: str
    last_at: datetime
    count: int


def simulator_senders() -> list[Sender]:
    """Active senders of active simulator providers: the numbers a customer can write to."""
    return list(
        Sender.objects.select_related("provider")
        .filter(
            active=True,
            provider__kind=ProviderKind.SIMULATOR,
            provider__active=True,
        )
        .order_by("channel", "kind", "address")
    )


def simulator_sender_get(sid: str) -> Sender | None:
    if not sid:
        return None
    return (
        Sender.objects.select_related("provider")
        .filter(sid=sid, active=True, provider__kind=ProviderKind.SIMULATOR, provider__active=True)
        .first()
    )


def simulator_provider_default() -> ProviderAccount | None:
    return (
        ProviderAccount.objects.filter(kind=ProviderKind.SIMULATOR, active=True)
        .order_by("id")
        .first()
    )


def simulator_rules(provider: ProviderAccount) -> dict:
    """The simulated carrier's behaviour: receipt delay, read receipts, failure rules."""
    return simulator_settings(provider)


_PREFIX = {Channel.SMS: "", Channel.WHATSAPP: "whatsapp:", Channel.MESSENGER: "messenger:"}


def customer_address_parse(raw: str, *, channel: str | None = None) -> Address:
    """The customer address for what a person typed: the channel select adds the
    `whatsapp:`/`messenger:` prefix unless it is already there."""
    text = (raw or "").strip()
    if channel in _PREFIX and ":" not in text:
        text = _PREFIX[Channel(channel)] + text
    try:
        return parse_address(text)
    except AddressError as exc:
        raise CustomerAddressError(str(exc)) from exc


def simulator_threads(*, limit: int = THREAD_LIMIT) -> list[Thread]:
    """Customer ↔ sender pairs with simulator traffic, most recent first."""
    pairs = list(
        Message.objects.filter(sender__provider__kind=ProviderKind.SIMULATOR, contact__isnull=False)
        .values("contact_id", "sender_id")
        .annotate(last_id=Max("id"), count=Count("id"))
        .order_by("-last_id")[:limit]
    )
    last = Message.objects.select_related("contact", "sender").in_bulk(
        [pair["last_id"] for pair in pairs]
    )
    threads = []
    for pair in pairs:
        message = last[pair["last_id"]]
        threads.append(
            Thread(
                customer=message.contact.address,
                sender_sid=message.sender.sid,
                sender_address=message.sender.address,
                channel=message.sender.channel,
                last_body=message.body,
                last_direction=message.direction,
                last_at=message.date_created,
                count=pair["count"],
            )
        )
    return threads


def simulator_thread_messages(
    *, sender: Sender, customer: str, limit: int = MESSAGE_LIMIT
) -> list[Message]:
    """The latest messages between `customer` and `sender`, oldest first."""
    rows = (
        Message.objects.filter(sender=sender)
        .filter(
            Q(direction=Direction.INBOUND, from_address=customer)
            | (~Q(direction=Direction.INBOUND) & Q(to_address=customer))
        )
        .prefetch_related("media")
        .order_by("-id")[:limit]
    )
    return list(reversed(rows))
