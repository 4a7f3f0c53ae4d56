"""Handing a queued message to its provider.

Pacing per sender, retries with back-off and crash recovery belong to the delivery engine;
this is the single, idempotent step they build on: claim (queued → sending, exactly one
worker wins), re-check what may have changed since create, call the adapter, record.
"""

from datetime import timedelta

from django.utils import timezone

from messaging import encoding
from messaging.models import Message
from messaging.providers import ProviderError, adapter_for
from messaging.services.messages import message_fail_undispatched, message_status_apply
from messaging.services.optout import optout_is_blocked
from messaging.statuses import Status


def message_send(*, message_id: int) -> str:
    message = (
        Message.objects.select_related("sender__provider", "sender__service", "service")
        .filter(id=message_id)
        .first()
    )
    if message is None or message.status != Status.QUEUED or message.sender is None:
        return "skipped"
    if optout_is_blocked(
        address=message.to_address, service=message.service, sender=message.sender
    ):
        message_fail_undispatched(message_id=message.id, error_code=21610, source="system")
        return "opted-out"
    if timezone.now() > message.date_created + timedelta(seconds=message.validity_period):
        message_fail_undispatched(message_id=message.id, error_code=30036, source="system")
        return "expired"
    if not message_status_apply(message_id=message.id, status=Status.SENDING, source="system"):
        return "skipped"  # another worker claimed it
    text = encoding.analyze(message.body, smart_encoding=message.smart_encoded).text
    try:
        result = adapter_for(message.sender.provider).send(message, text=text)
    except ProviderError as exc:
        message_status_apply(
            message_id=message.id,
            status=Status.FAILED,
            error_code=exc.code,
            error_text=exc.message,
            source="provider",
        )
        return "failed"
    message_status_apply(
        message_id=message.id,
        status=Status.SENT,
        source="provider",
        provider_message_id=result.provider_message_id,
    )
    return "sent"


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
