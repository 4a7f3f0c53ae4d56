"""Celery interfaces of the routing engine: they take ids, are idempotent, call services."""

import hashlib
import hmac
import json
import logging

import httpx
from celery import shared_task
from django.db import transaction

from routing.events import as_record
from routing.models import CallbackState, Event

log = logging.getLogger(__name__)

CALLBACK_TIMEOUT = 5.0
CALLBACK_MAX_ATTEMPTS = 6
SIGNATURE_HEADER = "X-Routing-Signature"


@shared_task(name="routing.tick", ignore_result=True)
def routing_tick() -> dict:
    from routing.services.tick import routing_tick as tick

    return vars(tick())


def callback_signature(secret: str, body: bytes) -> str:
    """`sha256=<hex HMAC-SHA256 of the raw body>` with the workspace's callback secret."""
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


@shared_task(name="routing.event_callback_deliver", bind=True, ignore_result=True)
def event_callback_deliver(self, event_id: int) -> str:
    """POST one event to its workspace's callback URL; retried with back-off on failure."""
    event = Event.objects.select_related("workspace").filter(pk=event_id).first()
    if event is None or event.callback_state != CallbackState.PENDING:
        return "skipped"
    workspace = event.workspace
    if not workspace.event_callback_url:
        Event.objects.filter(pk=event_id).update(callback_state=CallbackState.NONE)
        return "no url"
    body = json.dumps(as_record(event, workspace.sid), separators=(",", ":")).encode()
    headers = {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: callback_signature(workspace.event_callback_secret, body),
        "X-Routing-Event-Type": event.event_type,
        "X-Routing-Event-Sid": event.sid,
    }
    try:
        response = httpx.post(
            workspace.event_callback_url, content=body, headers=headers, timeout=CALLBACK_TIMEOUT
        )
        delivered = 200 <= response.status_code < 300
        failure = "" if delivered else f"HTTP {response.status_code}"
    except httpx.HTTPError as error:
        delivered, failure = False, str(error) or type(error).__name__
    with transaction.atomic():
        attempts = event.callback_attempts + 1
        if delivered:
            state = CallbackState.DELIVERED
        elif attempts >= CALLBACK_MAX_ATTEMPTS:
            state = CallbackState.FAILED
        else:
            state = CallbackState.PENDING
        Event.objects.filter(pk=event_id, callback_state=CallbackState.PENDING).update(
            callback_state=state, callback_attempts=attempts
        )
    if state == CallbackState.PENDING:
        log.info("event callback %s failed (%s); retrying", event.sid, failure)
        raise self.retry(countdown=min(2**attempts, 300), max_retries=CALLBACK_MAX_ATTEMPTS)
    return state
