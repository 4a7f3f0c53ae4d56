"""Provider webhooks: the way messages from customers come in.

The built-in simulator POSTs JSON (`messaging.providers.simulator.inbound_payload`) signed
with `X-Simulator-Signature: hex(HMAC-SHA256(webhook secret, raw body))`. The signature is
checked before the body is even parsed; a bad one stores nothing.

`simulator_inbound_handle` is the whole webhook minus HTTP, so the simulator page can send a
customer's reply in-process through exactly the same checks as a POST from outside.
"""

import json
import logging
from dataclasses import dataclass

from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from messaging.errors import MORE_INFO, MessagingError
from messaging.models import ProviderAccount, ProviderKind
from messaging.providers.simulator import SIGNATURE_HEADER, verify
from messaging.services.inbound import inbound_message_receive
from messaging.services.providers import provider_webhook_secret

logger = logging.getLogger(__name__)

FORBIDDEN = 20403  # Twilio's "403 Forbidden"


@dataclass(frozen=True)
class WebhookOutcome:
    status: int  # the HTTP status to answer with
    body: dict
    created: bool = False


def _error(code: int, message: str, status: int) -> WebhookOutcome:
    body = {"code": code, "message": message, "more_info": MORE_INFO.format(code=code)}
    return WebhookOutcome(status=status, body={**body, "status": status})


def _text(payload: dict, key: str, *, required: bool) -> str:
    value = payload.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value.strip()):
        raise MessagingError(20422, f"The field {key!r} must be a non-empty string.", key)
    return value


def _media(payload: dict) -> list[tuple[str, str]]:
    items = payload.get("media") or []
    if not isinstance(items, list) or not all(
        isinstance(item, dict) and isinstance(item.get("url"), str) for item in items
    ):
        raise MessagingError(20422, "'media' must be a list of {url, content_type}.", "media")
    return [(item["url"], str(item.get("content_type") or "")) for item in items]


def simulator_inbound_handle(*, provider_sid: str, body: bytes, signature: str) -> WebhookOutcome:
    """Verify, parse and store one simulator webhook; the outcome says what to answer."""
    provider = ProviderAccount.objects.filter(
        sid=provider_sid, kind=ProviderKind.SIMULATOR, active=True
    ).first()
    if provider is None:
        return _error(20404, f"No active simulator provider {provider_sid}.", 404)
    secret = provider_webhook_secret(provider)
    if not secret or not verify(secret, body, signature):
        logger.warning("simulator webhook: bad or missing signature for %s", provider.sid)
        return _error(FORBIDDEN, "The webhook signature is missing or does not match.", 403)

    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, ValueError) as exc:
        return _error(20422, f"The body is not valid JSON: {exc}", 400)
    if not isinstance(payload, dict):
        return _error(20422, "The body must be a JSON object.", 400)
    try:
        message, created = inbound_message_receive(
            provider=provider,
            provider_message_id=_text(payload, "id", required=True),
            from_address=_text(payload, "from", required=True),
            to_address=_text(payload, "to", required=True),
            body=_text(payload, "body", required=False),
            media=_media(payload),
            profile_name=_text(payload, "profile_name", required=False),
            raw=payload,
        )
    except MessagingError as error:
        return _error(error.code, error.message, 400)
    return WebhookOutcome(status=200, body={"sid": message.sid}, created=created)


@csrf_exempt
def simulator_inbound(request: HttpRequest, provider_sid: str) -> JsonResponse:
    if request.method != "POST":
        outcome = _error(20004, f"Method {request.method} not allowed.", 405)
        response = JsonResponse(outcome.body, status=outcome.status)
        response["Allow"] = "POST"
        return response
    outcome = simulator_inbound_handle(
        provider_sid=provider_sid,
        body=request.body,
        signature=request.headers.get(SIGNATURE_HEADER, ""),
    )
    return JsonResponse(outcome.body, status=outcome.status)
