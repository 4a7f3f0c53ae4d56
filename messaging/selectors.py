"""Reads of the messaging engine, each scoped to an account. A sid that cannot exist is a 404
before any query, so malformed input (NUL characters included) never reaches SQL."""

import re
from dataclasses import dataclass
from datetime import datetime

from django.db.models import Prefetch, QuerySet

from messaging.addresses import canonical_address
from messaging.errors import MessagingError
from messaging.models import Account, Message, MessagingService, Sender
from messaging.sids import is_sid

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
