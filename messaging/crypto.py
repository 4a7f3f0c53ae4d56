"""Secrets at rest: provider credentials and auth tokens are encrypted with a key derived from
SECRET_KEY (or SECRETS_ENCRYPTION_KEY when set), so a database dump alone reveals nothing.

Auth tokens must stay recoverable (they key the HMAC of outgoing signed requests), which is why
they are encrypted rather than hashed. API key secrets are only ever compared, so they are
hashed instead (see `hash_secret`).
"""

import base64
import hashlib
import hmac
import secrets

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings


class SecretUnreadable(Exception):
    """The stored secret was encrypted with a key this deployment no longer has."""


def _fernet_for(key_material: str) -> Fernet:
    digest = hashlib.sha256(f"contactcenter.messaging.secrets:{key_material}".encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def _cipher() -> MultiFernet:
    primary = getattr(settings, "SECRETS_ENCRYPTION_KEY", "") or settings.SECRET_KEY
    fallbacks = list(getattr(settings, "SECRET_KEY_FALLBACKS", []))
    return MultiFernet([_fernet_for(primary), *(_fernet_for(k) for k in fallbacks)])


def encrypt(plaintext: str) -> str:
    return _cipher().encrypt(plaintext.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return _cipher().decrypt(token.encode()).decode()
    except InvalidToken as exc:
        raise SecretUnreadable(
            "secret was encrypted with another key (SECRET_KEY changed?)"
        ) from exc


def new_token(nbytes: int = 16) -> str:
    """Twilio's auth tokens are 32 hex digits; API key secrets are longer random strings."""
    return secrets.token_hex(nbytes)


def hash_secret(secret: str) -> str:
    # The secrets are 256-bit random values, so a fast hash is safe; a slow KDF would cost
    # hundreds of milliseconds on every API request.
    return hashlib.sha256(secret.encode()).hexdigest()


def secret_matches(secret: str, stored_hash: str) -> bool:
    return hmac.compare_digest(hash_secret(secret), stored_hash)
