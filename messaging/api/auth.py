"""HTTP Basic auth as Twilio does it: account sid + auth token, or API key sid + secret."""

import base64
import binascii
import hmac
from dataclasses import dataclass

from messaging import crypto
from messaging.errors import MessagingError
from messaging.models import Account, ApiKey


@dataclass(frozen=True)
class Principal:
    account: Account
    api_key: ApiKey | None = None


def _credentials(header: str) -> tuple[str, str]:
    scheme, _, encoded = (header or "").partition(" ")
    if scheme.lower() != "basic" or not encoded:
        raise MessagingError(20003, "HTTP Basic authentication is required.")
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise MessagingError(20003, "The Authorization header is not valid Basic.") from exc
    username, sep, password = decoded.partition(":")
    if not sep:
        raise MessagingError(20003, "The Authorization header is not valid Basic.")
    return username, password


def authenticate(header: str) -> Principal:
    """The principal behind an Authorization header, or MessagingError 20003 (401)."""
    username, password = _credentials(header)
    if username.startswith("AC"):
        account = Account.objects.filter(sid=username, active=True).first()
        if account is not None and hmac.compare_digest(account.auth_token, password):
            return Principal(account=account)
    elif username.startswith("SK"):
        key = (
            ApiKey.objects.select_related("account")
            .filter(sid=username, revoked_at__isnull=True, account__active=True)
            .first()
        )
        if key is not None and crypto.secret_matches(password, key.secret_hash):
            return Principal(account=key.account, api_key=key)
    raise MessagingError(20003)
