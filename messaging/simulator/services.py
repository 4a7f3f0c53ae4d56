"""The customer's side of the simulator: a reply typed on the phone page becomes a signed
webhook body, handed to the webhook's own handler (signature check included)."""

from messaging.models import Sender
from messaging.providers.simulator import inbound_payload, signature
from messaging.services.providers import provider_webhook_secret
from messaging.services.webhooks import FORBIDDEN
from messaging.webhooks import WebhookOutcome, simulator_inbound_handle


def simulator_customer_reply(
    *, sender: Sender, customer: str, body: str, profile_name: str = ""
) -> WebhookOutcome:
    """Send `body` from `customer` to `sender` as the simulated provider would."""
    provider = sender.provider
    secret = provider_webhook_secret(provider)
    if not secret:
        message = (
            f"The provider {provider.name} has no webhook secret: set one in its credentials"
            + (
                f" or in {provider.credentials_env_prefix}_WEBHOOK_SECRET."
                if provider.credentials_env_prefix
                else "."
            )
        )
        return WebhookOutcome(status=403, body={"code": FORBIDDEN, "message": message})
    payload = inbound_payload(
        from_address=customer, to_address=sender.address, body=body, name=profile_name
    )
    return simulator_inbound_handle(
        provider_sid=provider.sid, body=payload, signature=signature(secret, payload)
    )
