"""The built-in simulator: a provider that needs no external account.

Outbound messages "arrive" on the customer phone page (/simulator/), which reads them from the
database; delivery receipts follow after a configurable delay; numbers matching a failure rule
fail with that rule's code. Customer replies enter through the same inbound webhook as real
providers, signed with the provider account's secret.
"""

import hashlib
import hmac
import json

from messaging.providers import register
from messaging.providers.base import ProviderAdapter, SendResult
from messaging.sids import new_sid

SIGNATURE_HEADER = "X-Simulator-Signature"

DEFAULT_SETTINGS = {
    "receipt_delay_seconds": 1.0,
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


@register("simulator")
class SimulatorAdapter(ProviderAdapter):
    def send(self, message, *, text: str) -> SendResult:
        from messaging import tasks

        provider_message_id = new_sid("SS")
        delay = float(simulator_settings(self.provider)["receipt_delay_seconds"])
        # The receipt is a short countdown (seconds), never a long-lived schedule.
        tasks.simulator_receipt.apply_async(
            (self.provider.id, provider_message_id, message.to_address), countdown=delay
        )
        return SendResult(provider_message_id=provider_message_id)
