"""The deployment's account and its API keys."""

from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from messaging import crypto
from messaging.models import Account, ApiKey


@dataclass(frozen=True)
class IssuedKey:
    key: ApiKey
    secret: str  # shown once, never stored


@transaction.atomic
def account_get_or_create_default(*, friendly_name: str = "Main account") -> Account:
    """The first active account, created with a fresh auth token when there is none."""
    account = Account.objects.select_for_update().filter(active=True).order_by("id").first()
    if account is None:
        account = Account.objects.create(
            friendly_name=friendly_name,
            auth_token_encrypted=crypto.encrypt(crypto.new_token()),
        )
    return account


def account_rotate_auth_token(*, account: Account) -> str:
    token = crypto.new_token()
    account.auth_token_encrypted = crypto.encrypt(token)
    account.save(update_fields=["auth_token_encrypted", "date_updated"])
    return token


def api_key_create(*, account: Account, friendly_name: str) -> IssuedKey:
    secret = crypto.new_token(24)
    key = ApiKey.objects.create(
        account=account, friendly_name=friendly_name, secret_hash=crypto.hash_secret(secret)
    )
    return IssuedKey(key=key, secret=secret)


def api_key_revoke(*, key: ApiKey) -> None:
    if key.revoked_at is None:
        key.revoked_at = timezone.now()
        key.save(update_fields=["revoked_at"])
