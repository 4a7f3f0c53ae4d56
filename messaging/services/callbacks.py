"""Status callbacks: every status change after the first is POSTed, signed like Twilio, to the
message's StatusCallback, else its service's, else its sender's."""

import httpx
from django.db import transaction
from django.utils import timezone
from twilio.request_validator import RequestValidator

from messaging.models import API_VERSION, Message, StatusCallback
from messaging.statuses import FAILURES

TIMEOUT = httpx.Timeout(10.0, connect=5.0)
MAX_ATTEMPTS = 6


def callback_url_for(message: Message) -> str:
    if message.status_callback:
        return message.status_callback
    if message.service_id and message.service.status_callback:
        return message.service.status_callback
    if message.sender_id and message.sender.status_callback_url:
        return message.sender.status_callback_url
    return ""


def status_callback_params(message: Message) -> dict[str, str]:
    """Twilio's status-callback parameters for the message as it is now."""
    params = {
        "MessageSid": message.sid,
        "SmsSid": message.sid,
        "MessageStatus": message.status,
        "SmsStatus": message.status,
        "AccountSid": message.account.sid,
        "From": message.from_address,
        "To": message.to_address,
        "ApiVersion": API_VERSION,
    }
    if message.service_id:
        params["MessagingServiceSid"] = message.service.sid
    if message.status in FAILURES and message.error_code:
        params["ErrorCode"] = str(message.error_code)
    return params


def status_callback_enqueue(*, message_id: int) -> StatusCallback | None:
    """Record the callback for the message's current status; POST it after commit."""
    message = Message.objects.select_related("account", "service", "sender").get(id=message_id)
    url = callback_url_for(message)
    if not url:
        return None
    callback = StatusCallback.objects.create(
        message=message, url=url, status=message.status, params=status_callback_params(message)
    )
    from messaging import tasks

    transaction.on_commit(lambda: tasks.status_callback_deliver.delay(callback.id))
    return callback


def status_callbacks_enqueue(messages: list[Message]) -> int:
    """The same for a batch of messages already loaded with account, service and sender."""
    from messaging import tasks

    callbacks = [
        StatusCallback(message=m, url=url, status=m.status, params=status_callback_params(m))
        for m in messages
        if (url := callback_url_for(m))
    ]
    if not callbacks:
        return 0
    # PostgreSQL and SQLite ≥ 3.35 return the new ids from a bulk insert.
    ids = [c.id for c in StatusCallback.objects.bulk_create(callbacks)]
    transaction.on_commit(lambda: [tasks.status_callback_deliver.delay(i) for i in ids])
    return len(ids)


def sign(url: str, params: dict[str, str], auth_token: str) -> str:
    return RequestValidator(auth_token).compute_signature(url, params)


def status_callback_deliver(*, callback_id: int) -> str:
    """POST one callback. Returns the new state; raises nothing (the task decides on retry)."""
    callback = (
        StatusCallback.objects.select_related("message__account").filter(id=callback_id).first()
    )
    if callback is None or callback.state != StatusCallback.State.PENDING:
        return "skipped"
    token = callback.message.account.auth_token
    headers = {
        "X-Twilio-Signature": sign(callback.url, callback.params, token),
        "User-Agent": "contactcenter-status-callback/1",
    }
    status_code, error = None, ""
    try:
        response = httpx.post(callback.url, data=callback.params, headers=headers, timeout=TIMEOUT)
        status_code = response.status_code
        error = "" if response.is_success else f"HTTP {response.status_code}"
    except httpx.HTTPError as exc:
        error = f"{type(exc).__name__}: {exc}"[:255]
    attempts = callback.attempts + 1
    if not error:
        state = StatusCallback.State.DELIVERED
    elif attempts >= MAX_ATTEMPTS:
        state = StatusCallback.State.FAILED
    else:
        state = StatusCallback.State.PENDING
    StatusCallback.objects.filter(id=callback.id).update(
        attempts=attempts,
        last_status_code=status_code,
        last_error=error,
        state=state,
        date_done=timezone.now() if state != StatusCallback.State.PENDING else None,
    )
    return state
