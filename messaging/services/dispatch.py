"""What providers report about messages already sent (delivery receipts).

Sending itself is the delivery engine's (`messaging.delivery.engine`).
"""

from messaging.models import Message
from messaging.services.messages import message_status_apply


def message_status_from_provider(
    *, provider_id: int, provider_message_id: str, status: str, error_code: int | None = None
) -> bool:
    """A delivery receipt: find the message by the provider's id and move it forward."""
    message_id = (
        Message.objects.filter(
            sender__provider_id=provider_id, provider_message_id=provider_message_id
        )
        .values_list("id", flat=True)
        .first()
    )
    if message_id is None:
        return False
    return message_status_apply(
        message_id=message_id, status=status, error_code=error_code, source="provider"
    )
