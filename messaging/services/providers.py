"""Provider account credentials: encrypted JSON in the database, or environment variables.

`credentials_encrypted` holds `crypto.encrypt(json.dumps({...}))`. When the account names a
`credentials_env_prefix`, every variable `<PREFIX>_<NAME>` supplies the key `<name>` (lower
case) that the database does not hold, so a deployment can keep its secrets out of the
database entirely (`SIM_WEBHOOK_SECRET` → `{"webhook_secret": ...}`).
"""

import json
import os

from messaging import crypto
from messaging.models import ProviderAccount

WEBHOOK_SECRET = "webhook_secret"


def _stored(provider: ProviderAccount) -> dict:
    if not provider.credentials_encrypted:
        return {}
    data = json.loads(crypto.decrypt(provider.credentials_encrypted))
    return data if isinstance(data, dict) else {}


def _from_environment(prefix: str) -> dict:
    start = f"{prefix}_"
    return {
        name[len(start) :].lower(): value
        for name, value in os.environ.items()
        if name.startswith(start) and len(name) > len(start)
    }


def provider_credentials(provider: ProviderAccount) -> dict:
    """The provider's secrets. Raises `crypto.SecretUnreadable` when the stored ones were
    encrypted under another key."""
    credentials = _stored(provider)
    if provider.credentials_env_prefix:
        for key, value in _from_environment(provider.credentials_env_prefix).items():
            credentials.setdefault(key, value)
    return credentials


def provider_credentials_set(provider: ProviderAccount, credentials: dict) -> None:
    """Replace the stored secrets (an empty dict clears them)."""
    provider.credentials_encrypted = (
        crypto.encrypt(json.dumps(credentials, sort_keys=True)) if credentials else ""
    )
    provider.save(update_fields=["credentials_encrypted"])


def provider_webhook_secret(provider: ProviderAccount) -> str:
    """The secret that signs the provider's webhooks; "" when none is configured or readable."""
    try:
        return str(provider_credentials(provider).get(WEBHOOK_SECRET) or "")
    except (crypto.SecretUnreadable, ValueError):
        return ""
