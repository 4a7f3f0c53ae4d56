"""What providers report about messages already sent (delivery receipts).

Sending itself is the delivery engine's (`messaging.delivery.engine`).
"""

from messaging.models import Direction, Message
from messaging.providers import StatusUpdate
from messaging.services.messages import message_status_apply
from messaging.statuses import Status

# A watermark (Messenger) covers every earlier message; a bound keeps one receipt cheap.
WATERMARK_LIMIT = 200
RECEIPT_STATUSES = {Status.SENT, Status.DELIVERED, Status.READ, Status.FAILED, Status.UNDELIVERED}


def message_status_from_provider(
    *,
    provider_id: int,
    provider_message_id: str,
    status: str,
    error_code: int | None = None,
    error_text: str = "",
) -> bool:
    """A delivery receipt: find the message by the provider's id and move it forward."""
    message_id = (
        Message.objects.filter(
            sender__provider_id=provider_id,
            provider_message_id=provider_message_id,
        )
        .exclude(direction=Direction.INBOUND)
        .values_list("id", flat=True)
        .first()
    )
    if message_id is None:
        return False
    return message_status_apply(
        message_id=message_id,
        status=status,
        error_code=error_code,
        error_text=error_text,
        source="provider",
    )


def _watermark_targets(provider_id: int, update: StatusUpdate) -> list[int]:
    earlier = (
        [Status.SENT] if update.status == Status.DELIVERED else [Status.SENT, Status.DELIVERED]
    )
    rows = (
        Message.objects.filter(
            sender__provider_id=provider_id,
            to_address=update.recipient,
            status__in=earlier,
            date_sent__lte=update.watermark,
        )
        .exclude(direction=Direction.INBOUND)
        .order_by("-date_sent")
    )
    if update.sender_ref:
        rows = rows.filter(from_address=update.sender_ref)
    return list(rows.values_list("id", flat=True)[:WATERMARK_LIMIT])


def status_update_apply(*, provider_id: int, update: StatusUpdate) -> int:
    """Apply one parsed receipt; returns how many messages moved (0 for a stale one)."""
    if update.status not in RECEIPT_STATUSES:
        return 0
    if update.provider_message_id:
        return int(
            message_status_from_provider(
                provider_id=provider_id,
                provider_message_id=update.provider_message_id,
                status=update.status,
                error_code=update.error_code,
                error_text=update.error_message,
            )
        )
    if update.watermark is None or not update.recipient:
        return 0
    return sum(
        message_status_apply(message_id=message_id, status=update.status, source="provider")
        for message_id in _watermark_targets(provider_id, update)
    )
