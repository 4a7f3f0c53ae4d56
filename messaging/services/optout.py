"""The opt-out block list: scoped to a whole service (every sender in its pool) or one sender."""

from django.db import IntegrityError, transaction
from django.db.models import Q

from messaging.models import Message, MessagingService, OptOut, Sender
from messaging.statuses import UNDISPATCHED


def _scope(*, service: MessagingService | None, sender: Sender | None) -> dict:
    # A sender in a service shares the service's list: the block covers the whole pool.
    if service is None and sender is not None and sender.service_id is not None:
        service = sender.service
    if service is not None:
        return {"service": service, "sender": None}
    if sender is None:
        raise ValueError("an opt-out needs a service or a sender")
    return {"service": None, "sender": sender}


def optout_is_blocked(
    *, address: str, service: MessagingService | None, sender: Sender | None
) -> bool:
    scope = _scope(service=service, sender=sender)
    return OptOut.objects.filter(address=address, **scope).exists()


def optout_blocked_among(
    addresses: set[str], *, service: MessagingService | None, sender: Sender | None
) -> set[str]:
    """Which of these addresses are blocked, in one query (the delivery engine's batches)."""
    if not addresses:
        return set()
    scope = _scope(service=service, sender=sender)
    return set(
        OptOut.objects.filter(address__in=addresses, **scope).values_list("address", flat=True)
    )


def optout_block(
    *,
    address: str,
    service: MessagingService | None = None,
    sender: Sender | None = None,
    keyword: str = "",
    source: str = "admin",
) -> OptOut:
    """Block `address`; idempotent. Messages to it that are still waiting fail with 21610."""
    scope = _scope(service=service, sender=sender)
    account_id = (scope["service"] or scope["sender"]).account_id
    try:
        with transaction.atomic():
            optout = OptOut.objects.create(
                account_id=account_id, address=address, keyword=keyword, source=source, **scope
            )
    except IntegrityError:
        optout = OptOut.objects.get(address=address, **scope)
    _fail_waiting_messages(address=address, **scope)
    return optout


def optout_unblock(
    *, address: str, service: MessagingService | None = None, sender: Sender | None = None
) -> bool:
    scope = _scope(service=service, sender=sender)
    deleted, _ = OptOut.objects.filter(address=address, **scope).delete()
    return deleted > 0


def _fail_waiting_messages(
    *, address: str, service: MessagingService | None, sender: Sender | None
) -> None:
    from messaging.services.messages import message_fail_undispatched

    scope = Q(service=service) | Q(sender__service=service) if service else Q(sender=sender)
    waiting = Message.objects.filter(scope, to_address=address, status__in=UNDISPATCHED)
    for message_id in waiting.values_list("id", flat=True).distinct():
        message_fail_undispatched(message_id=message_id, error_code=21610, source="system")
