"""The opt-out block list: scoped to a whole service (every sender in its pool) or one sender."""

from collections.abc import Iterable

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


def optout_blocked_by_sender(pairs: Iterable[tuple[Sender, str]]) -> set[tuple[int, str]]:
    """Which (sender, address) pairs are blocked, for many senders in one query. Each sender
    answers with its service's list when it is in one, else with its own (as `_scope`)."""
    senders_of_scope: dict[tuple[str, int], set[int]] = {}
    addresses: set[str] = set()
    for sender, address in pairs:
        scope = _scope(service=None, sender=sender)
        owner = ("service", scope["service"].id) if scope["service"] else ("sender", sender.id)
        senders_of_scope.setdefault(owner, set()).add(sender.id)
        addresses.add(address)
    if not addresses:
        return set()
    service_ids = [owner_id for kind, owner_id in senders_of_scope if kind == "service"]
    sender_ids = [owner_id for kind, owner_id in senders_of_scope if kind == "sender"]
    rows = OptOut.objects.filter(address__in=addresses).filter(
        Q(service_id__in=service_ids, sender__isnull=True)
        | Q(sender_id__in=sender_ids, service__isnull=True)
    )
    blocked: set[tuple[int, str]] = set()
    for service_id, sender_id, address in rows.values_list("service_id", "sender_id", "address"):
        owner = ("service", service_id) if service_id else ("sender", sender_id)
        blocked.update((member, address) for member in senders_of_scope.get(owner, ()))
    return blocked


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
