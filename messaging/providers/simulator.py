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

from messaging.delivery import store as delivery_store
from messaging.providers import register
from messaging.providers.base import OutboundContent, ProviderAdapter, ProviderError, SendResult
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
