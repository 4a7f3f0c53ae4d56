"""Celery tasks: interfaces that take ids, are idempotent and call one service each."""

import uuid

from celery import shared_task

from messaging.delivery import engine, store
from messaging.services import callbacks, dispatch, messages

CALLBACK_BACKOFF = (5, 30, 120, 600, 1800)  # seconds before attempts 2..6


@shared_task(ignore_result=True)
def message_route(message_id: int) -> None:
    messages.message_route(message_id=message_id)


@shared_task(ignore_result=True)
def delivery_pump() -> None:
    """Send what is due, paced, for up to DELIVERY_PUMP_SECONDS; then hand over to a fresh
    task if work remains, so other tasks get the worker in between."""
    stats = engine.pump_run(uuid.uuid4().hex)
    if stats is not None and store.due_count(within_ms=engine.DUE_SOON_MS):
        delivery_pump.delay()


@shared_task(ignore_result=True)
def delivery_tick() -> dict:
    # Depth counters are rebuilt from the database every 10 s; between, they are counted.
    reconcile = bool(store.client().set(store.key("reconcile"), "1", nx=True, ex=10))
    return engine.delivery_tick(reconcile=reconcile)


@shared_task(ignore_result=True)
def scheduled_release() -> int:
    return messages.scheduled_release_due()


@shared_task(bind=True, ignore_result=True, max_retries=len(CALLBACK_BACKOFF))
def status_callback_deliver(self, callback_id: int) -> None:
    state = callbacks.status_callback_deliver(callback_id=callback_id)
    if state == "pending":
        raise self.retry(countdown=CALLBACK_BACKOFF[min(self.request.retries, 4)])


@shared_task(bind=True, ignore_result=True, max_retries=5)
def simulator_receipt(self, provider_id: int, provider_message_id: str, to_address: str) -> None:
    from messaging.models import Message, ProviderAccount
    from messaging.providers.simulator import receipt_for, simulator_settings

    provider = ProviderAccount.objects.filter(id=provider_id).first()
    if provider is None:
        return
    message = Message.objects.filter(
        sender__provider_id=provider_id, provider_message_id=provider_message_id
    ).first()
    if message is None:
        # The send's own commit may not be visible yet: try again shortly.
        raise self.retry(countdown=1)
    status, error_code = receipt_for(provider, to_address)
    dispatch.message_status_from_provider(
        provider_id=provider_id,
        provider_message_id=provider_message_id,
        status=status,
        error_code=error_code,
    )
    if (
        status == "delivered"
        and message.channel != "sms"
        and simulator_settings(provider)["read_receipts"]
    ):
        dispatch.message_status_from_provider(
            provider_id=provider_id, provider_message_id=provider_message_id, status="read"
        )


@shared_task(ignore_result=True)
def sticky_purge() -> int:
    return messages.sticky_purge_stale()


@shared_task(ignore_result=True)
def inbound_process(message_id: int) -> None:
    """The slow half of an inbound message: its media, then the integrator's webhook (which
    then sees our stored copies). Both steps are idempotent."""
    from messaging.services import forwarding, media

    media.inbound_media_fetch(message_id=message_id)
    forwarding.inbound_forward(message_id=message_id)


@shared_task(ignore_result=True)
def webhook_log_purge() -> int:
    from messaging.services import webhooks

    return webhooks.webhook_log_purge()


@shared_task(ignore_result=True)
def inbound_pending_process() -> int:
    """Provider webhooks' events become messages (each new one then queues its own
    `inbound_process` when it has media or an app to forward to); receipts are applied."""
    from messaging.services import webhooks

    return webhooks.inbound_pending_process()


@shared_task(ignore_result=True)
def inbound_sweep() -> int:
    from messaging.services import webhooks

    return webhooks.inbound_sweep()


MEDIA_CHECK_BACKOFF = (5, 30, 120)  # seconds before attempts 2..4 of an unreachable URL


@shared_task(bind=True, ignore_result=True, max_retries=len(MEDIA_CHECK_BACKOFF))
def outbound_media_check(self, message_id: int) -> None:
    """Fetch and check a held message's media; release it to the engine or fail it."""
    from messaging.services import outbound_media

    final = self.request.retries >= len(MEDIA_CHECK_BACKOFF)
    outcome = outbound_media.outbound_media_check(message_id=message_id, final_attempt=final)
    if outcome == "retry":
        raise self.retry(countdown=MEDIA_CHECK_BACKOFF[self.request.retries])
