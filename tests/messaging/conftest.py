"""A messaging world to test against: the account, a simulator provider, one sender of each
kind and a service pooling them."""

from types import SimpleNamespace

import pytest

from messaging.models import MessagingService, ProviderAccount, ProviderKind, Sender
from messaging.services.accounts import account_get_or_create_default, api_key_create
from messaging.services.providers import provider_credentials_set

WEBHOOK_SECRET = "test-webhook-secret"

SENDERS = {
    "long_code": ("long_code", "+14155550100", {"mms_capable": True}),
    "toll_free": ("toll_free", "+18885550100", {"mms_capable": True}),
    "short_code": ("short_code", "55501", {"country": "US"}),
    "alpha": ("alphanumeric", "ACME", {"country": "ES"}),
    "whatsapp": ("whatsapp", "whatsapp:+14155550199", {}),
    "messenger": ("messenger_page", "messenger:100200300", {}),
}


def build_world(*, pooled: bool = True) -> SimpleNamespace:
    account = account_get_or_create_default()
    provider = ProviderAccount.objects.create(
        account=account, name="Simulator", kind="simulator", settings={"receipt_delay_seconds": 0.2}
    )
    service = MessagingService.objects.create(account=account, friendly_name="Test service")
    senders = {}
    for name, (kind, address, extra) in SENDERS.items():
        sender = Sender(
            account=account,
            provider=provider,
            service=service if pooled else None,
            kind=kind,
            address=address,
            **extra,
        )
        sender.full_clean()
        sender.save()
        senders[name] = sender
    key = api_key_create(account=account, friendly_name="tests")
    return SimpleNamespace(
        account=account,
        token=account.auth_token,
        provider=provider,
        service=service,
        senders=senders,
        key_sid=key.key.sid,
        key_secret=key.secret,
    )


@pytest.fixture
def world(db):
    return build_world()


@pytest.fixture
def live_world(transactional_db):
    return build_world()


@pytest.fixture
def account(db):
    return account_get_or_create_default()


@pytest.fixture
def provider(account):
    """A simulator provider whose webhook secret is WEBHOOK_SECRET."""
    provider = ProviderAccount.objects.create(
        account=account, name="Simulator", kind=ProviderKind.SIMULATOR
    )
    provider_credentials_set(provider, {"webhook_secret": WEBHOOK_SECRET})
    return provider


def open_window(account, customer: str, business: str, *, at=None):
    """The customer wrote to `business` at `at` (now by default): what an inbound message
    leaves behind, so WhatsApp and Messenger sends are inside the customer-service window."""
    from django.utils import timezone

    from messaging.addresses import parse_address
    from messaging.services.messages import contact_get_or_create, conversation_get_or_open

    contact = contact_get_or_create(account=account, address=parse_address(customer))
    conversation = conversation_get_or_open(
        contact=contact, business_address=business, service=None
    )
    conversation.last_inbound_at = at or timezone.now()
    conversation.save(update_fields=["last_inbound_at"])
    return conversation
