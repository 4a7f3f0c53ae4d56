"""Reads of the messaging engine, each scoped to an account."""

from dataclasses import dataclass

from messaging.addresses import AddressError, parse_address
from messaging.errors import MessagingError
from messaging.models import Account, Message
from messaging.sids import is_sid

PAGE_TOKEN_PREFIX = "PI"


@dataclass(frozen=True)
class MessagePage:
    items: list[Message]
    next_token: str | None


def message_get(*, account: Account, sid: str) -> Message:
    if not (is_sid(sid, "SM") or is_sid(sid, "MM")):
        raise MessagingError(20404, f"The requested resource Message {sid} was not found.")
    message = (
        Message.objects.select_related("service", "sender").filter(account=account, sid=sid).first()
    )
    if message is None:
        raise MessagingError(20404, f"The requested resource Message {sid} was not found.")
    return message


def _canonical(address: str) -> str:
    try:
        return parse_address(address).value
    except AddressError:
        return address.strip()


def _token_position(token: str) -> int:
    if not token.startswith(PAGE_TOKEN_PREFIX) or not token[len(PAGE_TOKEN_PREFIX) :].isdigit():
        raise MessagingError(20422, f"PageToken {token!r} is not valid.", "PageToken")
    return int(token[len(PAGE_TOKEN_PREFIX) :])


def messages_list(
    *,
    account: Account,
    to: str | None = None,
    from_: str | None = None,
    page_size: int = 50,
    page_token: str | None = None,
    **date_filters,
) -> MessagePage:
    """Newest first, keyset-paged: the token is the position after the last row returned, so
    pages stay stable while new messages arrive."""
    query = Message.objects.select_related("service").filter(account=account, **date_filters)
    if to:
        query = query.filter(to_address=_canonical(to))
    if from_:
        query = query.filter(from_address=_canonical(from_))
    if page_token:
        query = query.filter(id__lt=_token_position(page_token))
    rows = list(query.order_by("-id")[: page_size + 1])
    items = rows[:page_size]
    next_token = f"{PAGE_TOKEN_PREFIX}{items[-1].id}" if len(rows) > page_size else None
    return MessagePage(items=items, next_token=next_token)
