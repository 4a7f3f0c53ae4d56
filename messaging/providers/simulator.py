"""The built-in simulator: a provider that needs no external account.

Outbound messages "arrive" on the customer phone page (/simulator/), which reads them from the
database; delivery receipts follow after a configurable delay; numbers matching a failure rule
fail with that rule's code. Customer replies enter through the same inbound webhook as real
providers, signed with the provider account's secret.
"""

import hashlib
import hmac
import json
import time

import httpx
from django.conf import settings

from messaging.delivery import store as delivery_store
from messaging.providers import register
from messaging.providers.base import (
    HandshakeAnswer,
    InboundMedia,
    InboundMessage,
    MediaFile,
    OutboundContent,
    ProviderAdapter,
    ProviderError,
    SendResult,
    WebhookEvents,
    WebhookPayloadError,
    WebhookRequest,
)
from messaging.sids import new_sid

SIGNATURE_HEADER = "X-Simulator-Signature"

DEFAULT_SETTINGS = {
    # null: no delivery receipts at all (benchmarks measure dispatch alone).
    "receipt_delay_seconds": 1.0,
    # How long the simulated provider takes to answer a send.
    "send_delay_seconds": 0.0,
    # Append every accepted send to a Redis list (for benchmarks and tests: who got what when).
    "record_sends": False,
    # A recipient whose number ends with `suffix` gets a transient provider error (e.g. 429,
    # 5xx) on its first `times` attempts, then goes through.
    "transient_failures": [],
    # A recipient whose number ends with `suffix` is refused outright at send time.
    "send_rejections": [],
    "read_receipts": True,
    # A recipient whose number ends with `suffix` gets `status` with `error_code`.
    "failures": [
        {"suffix": "0003", "status": "undelivered", "error_code": 30003},
        {"suffix": "0005", "status": "undelivered", "error_code": 30005},
        {"suffix": "0006", "status": "undelivered", "error_code": 30006},
        {"suffix": "0007", "status": "undelivered", "error_code": 30007},
        {"suffix": "0008", "status": "failed", "error_code": 30008},
    ],
}


def simulator_settings(provider) -> dict:
    return {**DEFAULT_SETTINGS, **(provider.settings or {})}


def receipt_for(provider, to_address: str) -> tuple[str, int | None]:
    """The final status the simulated carrier reports for a recipient."""
    for rule in simulator_settings(provider)["failures"]:
        if to_address.endswith(str(rule["suffix"])):
            return rule.get("status", "undelivered"), int(rule["error_code"])
    return "delivered", None


def signature(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, given: str) -> bool:
    return hmac.compare_digest(signature(secret, body), given or "")


def inbound_payload(*, from_address: str, to_address: str, body: str, name: str = "") -> bytes:
    return json.dumps(
        {
            "id": new_sid("SS"),
            "from": from_address,
            "to": to_address,
            "body": body,
            "profile_name": name,
        }
    ).encode()


def _key(provider_id: int, *parts: object) -> str:
    return delivery_store.key("simulator", provider_id, *parts)


def received_count(provider_id: int, idempotency_key: str) -> int:
    """How many times the simulated provider accepted this send as new (at most once)."""
    return int(delivery_store.client().hget(_key(provider_id, "received"), idempotency_key) or 0)


def duplicates_refused(provider_id: int) -> int:
    """Sends the simulated provider recognised by their idempotency key and did not repeat."""
    return int(delivery_store.client().get(_key(provider_id, "duplicates")) or 0)


def recorded_sends(provider_id: int) -> list[dict]:
    """With `record_sends`: every accepted send, in order (from, to, segments, at in ms)."""
    raw = delivery_store.client().lrange(_key(provider_id, "log"), 0, -1)
    return [json.loads(item) for item in raw]


_ACCEPT = """
local previous = redis.call('GET', KEYS[1])
if previous then
  redis.call('INCR', KEYS[3])
  return previous
end
redis.call('SET', KEYS[1], ARGV[1], 'EX', 86400)
redis.call('HINCRBY', KEYS[2], ARGV[2], 1)
if ARGV[3] ~= '' then redis.call('RPUSH', KEYS[4], ARGV[3]) end
return false
"""


def _accept():
    return delivery_store.registered_script(_ACCEPT)


@register("simulator")
class SimulatorAdapter(ProviderAdapter):
    idempotent = True

    def __init__(self, provider) -> None:
        super().__init__(provider)
        self.config = simulator_settings(provider)
        # Answering at once, it is called inline; with a delay it behaves as a network
        # provider does, so the engine calls it from its thread pool.
        self.network = bool(self.config["send_delay_seconds"])

    def send(self, message, *, content: OutboundContent, idempotency_key: str) -> SendResult:
        config = self.config
        if config["send_delay_seconds"]:
            time.sleep(float(config["send_delay_seconds"]))
        self._maybe_fail_transiently(config, message.to_address, idempotency_key)
        for rule in config["send_rejections"]:
            if message.to_address.endswith(str(rule["suffix"])):
                code = int(rule.get("error_code", 30007))
                raise ProviderError(code, f"Simulated rejection {code}.", permanent=True)
        provider_message_id = new_sid("SS")
        entry = ""
        if config["record_sends"]:
            entry = json.dumps(
                {
                    "from": message.from_address,
                    "to": message.to_address,
                    "segments": message.num_segments,
                    "at": time.time() * 1000,
                }
            )
        # The provider-side idempotency key: a repeated send returns the first answer. One
        # script, so a process killed mid-call leaves either all of it or none.
        previous = _accept()(
            keys=[
                _key(self.provider.id, "idem", idempotency_key),
                _key(self.provider.id, "received"),
                _key(self.provider.id, "duplicates"),
                _key(self.provider.id, "log"),
            ],
            args=[provider_message_id, idempotency_key, entry],
        )
        if previous is not None:
            return SendResult(provider_message_id=previous.decode())
        if config["receipt_delay_seconds"] is not None:
            from messaging import tasks

            # The receipt is a short countdown (seconds), never a long-lived schedule.
            tasks.simulator_receipt.apply_async(
                (self.provider.id, provider_message_id, message.to_address),
                countdown=float(config["receipt_delay_seconds"]),
            )
        return SendResult(provider_message_id=provider_message_id)

    def verify_request(self, request: WebhookRequest) -> bool:
        from messaging.services.providers import provider_webhook_secret

        secret = provider_webhook_secret(self.provider)
        return bool(secret) and verify(secret, request.body, request.headers.get(SIGNATURE_HEADER))

    def parse_webhook(self, request: WebhookRequest) -> WebhookEvents:
        """The simulator's JSON (`inbound_payload`): one customer message."""
        try:
            payload = json.loads(request.body)
        except (UnicodeDecodeError, ValueError) as exc:
            raise WebhookPayloadError(f"The body is not valid JSON: {exc}") from exc
        if not isinstance(payload, dict):
            raise WebhookPayloadError("The body must be a JSON object.")
        message = InboundMessage(
            provider_message_id=_text(payload, "id", required=True),
            from_address=_text(payload, "from", required=True),
            to_address=_text(payload, "to", required=True),
            body=_text(payload, "body", required=False),
            media=_media(payload),
            profile_name=_text(payload, "profile_name", required=False),
        )
        return WebhookEvents(messages=(message,))

    def webhook_ack(self, events: WebhookEvents) -> HandshakeAnswer:
        return HandshakeAnswer(status=200, body="{}", content_type="application/json")

    def fetch_media(self, media: InboundMedia) -> MediaFile:
        """The simulator's media are plain URLs the customer page gave: fetch them as they are."""
        return fetch_capped(media.url, max_bytes=settings.INBOUND_MEDIA_MAX_BYTES)

    def _maybe_fail_transiently(self, config: dict, to_address: str, idempotency_key: str):
        for rule in config["transient_failures"]:
            if not to_address.endswith(str(rule["suffix"])):
                continue
            attempt = delivery_store.client().incr(_key(self.provider.id, "tries", idempotency_key))
            if attempt <= int(rule.get("times", 1)):
                code = int(rule.get("error_code", 20429))
                raise ProviderError(
                    code,
                    f"Simulated transient error {code} (attempt {attempt}).",
                    permanent=False,
                    throttled=code == 20429,
                    retry_after=rule.get("retry_after"),
                )


def _text(payload: dict, key: str, *, required: bool) -> str:
    value = payload.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value.strip()):
        raise WebhookPayloadError(f"The field {key!r} must be a non-empty string.")
    return value


def _media(payload: dict) -> tuple[InboundMedia, ...]:
    items = payload.get("media") or []
    if not isinstance(items, list) or not all(
        isinstance(item, dict) and isinstance(item.get("url"), str) for item in items
    ):
        raise WebhookPayloadError("'media' must be a list of {url, content_type}.")
    return tuple(
        InboundMedia(url=item["url"], content_type=str(item.get("content_type") or ""))
        for item in items
    )


def fetch_capped(url: str, *, max_bytes: int, headers: dict | None = None) -> MediaFile:
    """GET a media URL, refusing more than `max_bytes` (streamed, so a huge file is never
    held in memory). Network errors and 5xx are transient; other failures permanent."""
    if not url:
        raise ProviderError(30008, "The media item has no URL.", permanent=True)
    try:
        with httpx.stream(
            "GET", url, headers=headers, follow_redirects=True, timeout=30.0
        ) as response:
            if response.status_code >= 400:
                raise ProviderError(
                    30008,
                    f"Fetching {url} answered HTTP {response.status_code}.",
                    permanent=response.status_code < 500,
                )
            chunks, size = [], 0
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > max_bytes:
                    raise ProviderError(
                        30008,
                        f"The media at {url} is larger than {max_bytes} bytes.",
                        permanent=True,
                    )
                chunks.append(chunk)
            content_type = response.headers.get("Content-Type", "")
    except httpx.HTTPError as exc:
        raise ProviderError(30008, f"Fetching {url} failed: {exc}", permanent=False) from exc
    return MediaFile(content=b"".join(chunks), content_type=content_type.split(";")[0].strip())
