"""Provider webhooks: the way messages from customers come in.

`provider_webhook` serves every real provider at `/webhooks/p/<provider sid>` (inbound
messages, delivery receipts and Meta's subscription handshake on one URL, as Meta wants;
Twilio's inbound and status callbacks can point at it too). The adapter of the provider's
kind verifies and parses; `services/webhooks.py` stores.

The built-in simulator POSTs JSON (`messaging.providers.simulator.inbound_payload`) signed
with `X-Simulator-Signature: hex(HMAC-SHA256(webhook secret, raw body))`. The signature is
checked before the body is even parsed; a bad one stores nothing.

`simulator_inbound_handle` is the whole webhook minus HTTP, so the simulator page can send a
customer's reply in-process through exactly the same checks as a POST from outside.
"""

import logging
from dataclasses import dataclass

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt

from messaging.models import ProviderAccount, ProviderKind
from messaging.providers import WebhookRequest
from messaging.providers.simulator import SIGNATURE_HEADER
from messaging.services.webhooks import error_body, provider_webhook_handle

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class WebhookOutcome:
    status: int  # the HTTP status to answer with
    body: dict
    created: bool = False


def _error(code: int, message: str, status: int) -> WebhookOutcome:
    return WebhookOutcome(status=status, body=error_body(code, message, status))


def simulator_inbound_handle(*, provider_sid: str, body: bytes, signature: str) -> WebhookOutcome:
    """Verify, parse and store one simulator webhook; the outcome says what to answer."""
    provider = ProviderAccount.objects.filter(
        sid=provider_sid, kind=ProviderKind.SIMULATOR, active=True
    ).first()
    if provider is None:
        return _error(20404, f"No active simulator provider {provider_sid}.", 404)
    path = reverse("webhooks:simulator-inbound", args=[provider_sid])
    request = WebhookRequest(
        method="POST",
        url=f"{settings.PUBLIC_BASE_URL}{path}",
        headers={SIGNATURE_HEADER: signature, "Content-Type": "application/json"},
        body=body,
    )
    # Inline: the simulator's user waits to see the reply in the thread.
    answer = provider_webhook_handle(provider_sid=provider_sid, request=request, inline=True)
    if answer.status != 200:
        return WebhookOutcome(status=answer.status, body=answer.body)
    return WebhookOutcome(status=200, body={"sid": answer.sids[0]}, created=bool(answer.new))


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


def public_url(request: HttpRequest) -> str:
    """The URL the provider called (and signed). Behind a proxy the Host and scheme Django
    sees are not the public ones: PUBLIC_BASE_URL says what they are."""
    if settings.PUBLIC_BASE_URL:
        return settings.PUBLIC_BASE_URL + request.get_full_path()
    return request.build_absolute_uri()


def webhook_request(request: HttpRequest) -> WebhookRequest:
    form = {}
    if request.content_type == "application/x-www-form-urlencoded":
        form = dict(request.POST.lists())
    return WebhookRequest(
        method=request.method,
        url=public_url(request),
        headers=request.headers,
        body=request.body,
        query=request.GET.dict(),
        form=form,
    )


@csrf_exempt
def provider_webhook(request: HttpRequest, provider_sid: str) -> HttpResponse:
    if request.method not in ("GET", "POST"):
        outcome = _error(20004, f"Method {request.method} not allowed.", 405)
        response = JsonResponse(outcome.body, status=outcome.status)
        response["Allow"] = "GET, POST"
        return response
    answer = provider_webhook_handle(provider_sid=provider_sid, request=webhook_request(request))
    if isinstance(answer.body, dict):
        return JsonResponse(answer.body, status=answer.status)
    return HttpResponse(answer.body, status=answer.status, content_type=answer.content_type)
