"""The three real providers through `/webhooks/p/<provider sid>`, as each would call it:
Twilio's signed form posts (inbound and status callbacks), Meta's handshake and signed JSON
for WhatsApp and Messenger; then what the Celery side makes of them."""

import hashlib
import hmac
import json
from urllib.parse import urlencode

import pytest
from django.test import Client
from django.utils import timezone
from twilio.request_validator import RequestValidator

from messaging.models import (
    Contact,
    Direction,
    InboundEvent,
    Media,
    Message,
    ProviderAccount,
    Sender,
    StatusCallback,
    WebhookLog,
)
from messaging.services import media, webhooks
from messaging.services.accounts import account_get_or_create_default
from messaging.services.messages import MessageRequest, message_create, message_status_apply
from messaging.services.providers import provider_credentials_set
from tests.messaging.conftest import open_window
from tests.support.http import FakeApi, json_answer

PUBLIC = "https://cc.example.com"
AUTH_TOKEN = "twilio-auth-token"
APP_SECRET = "meta-app-secret"
VERIFY_TOKEN = "meta-verify-token"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x01" * 32


@pytest.fixture
def public(settings):
    settings.PUBLIC_BASE_URL = PUBLIC


@pytest.fixture
def account(db):
    return account_get_or_create_default()


def provider_of(account, kind: str, credentials: dict, **settings) -> ProviderAccount:
    provider = ProviderAccount.objects.create(
        account=account, name=kind, kind=kind, settings=settings
    )
    provider_credentials_set(provider, credentials)
    return provider


def sender_of(account, provider, kind: str, address: str, **fields) -> Sender:
    sender = Sender(account=account, provider=provider, kind=kind, address=address, **fields)
    sender.full_clean()
    sender.save()
    return sender


def process() -> None:
    """What the Celery task does after the request."""
    webhooks.inbound_pending_process()


# ---------------------------------------------------------------- Twilio


@pytest.fixture
def twilio(account):
    provider = provider_of(
        account, "twilio", {"account_sid": "AC" + "a" * 32, "auth_token": AUTH_TOKEN}
    )
    return provider, sender_of(account, provider, "long_code", "+14155550100")


def twilio_post(provider, params: dict, *, token: str = AUTH_TOKEN):
    url = f"{PUBLIC}/webhooks/p/{provider.sid}"
    signature = RequestValidator(token).compute_signature(url, params)
    return Client().post(
        f"/webhooks/p/{provider.sid}",
        data=urlencode(params),
        content_type="application/x-www-form-urlencoded",
        headers={"X-Twilio-Signature": signature},
    )


def twilio_inbound(n: int = 1, **extra) -> dict:
    return {
        "MessageSid": f"SM{n:032x}",
        "AccountSid": "AC" + "a" * 32,
        "From": "+14155550142",
        "To": "+14155550100",
        "Body": "Hola, necesito ayuda",
        "NumMedia": "0",
        "SmsStatus": "received",
        "FromCountry": "US",
        **extra,
    }


def test_twilio_inbound_is_verified_stored_once_and_answered_with_empty_twiml(public, twilio):
    provider, _ = twilio
    for _ in range(10):  # Twilio retrying the same webhook
        response = twilio_post(provider, twilio_inbound())
        assert response.status_code == 200
        assert response["Content-Type"].startswith("text/xml")
        assert b"<Response" in response.content
    assert InboundEvent.objects.count() == 1
    process()
    message = Message.objects.get(direction=Direction.INBOUND)
    assert (message.from_address, message.to_address, message.body) == (
        "+14155550142",
        "+14155550100",
        "Hola, necesito ayuda",
    )
    assert message.provider_message_id == f"SM{1:032x}"
    assert message.tags["params"]["FromCountry"] == "US"
    assert Contact.objects.get(address="+14155550142").country == "US"


def test_twilio_webhooks_signed_with_another_token_or_url_are_refused(public, twilio):
    provider, _ = twilio
    assert twilio_post(provider, twilio_inbound(), token="wrong").status_code == 403
    assert not WebhookLog.objects.exists() and not InboundEvent.objects.exists()


def test_a_twilio_status_callback_moves_the_message_forward_only_and_calls_back(
    public, twilio, account
):
    provider, sender = twilio
    message = message_create(
        account=account,
        request=MessageRequest(
            to="+14155550142",
            from_=sender.address,
            body="Your order shipped",
            status_callback="https://app.example.com/status",
        ),
    )
    for status in ("sending", "sent"):
        message_status_apply(
            message_id=message.id, status=status, source="test", provider_message_id="SMtw1"
        )
    base = {"MessageSid": "SMtw1", "AccountSid": "AC" + "a" * 32, "To": "+14155550142"}
    assert twilio_post(provider, {**base, "MessageStatus": "delivered"}).status_code == 200
    assert twilio_post(provider, {**base, "MessageStatus": "sent"}).status_code == 200  # late
    process()
    message.refresh_from_db()
    assert message.status == "delivered"
    calls = list(StatusCallback.objects.filter(message=message).values_list("status", flat=True))
    assert calls.count("delivered") == 1 and "sent" in calls


def test_twilio_undelivered_carries_its_error_code(public, twilio, account):
    provider, sender = twilio
    message = message_create(
        account=account, request=MessageRequest(to="+14155550142", from_=sender.address, body="x")
    )
    for status in ("sending", "sent"):
        message_status_apply(
            message_id=message.id, status=status, source="test", provider_message_id="SMtw2"
        )
    params = {"MessageSid": "SMtw2", "MessageStatus": "undelivered", "ErrorCode": "30003"}
    twilio_post(provider, params)
    process()
    message.refresh_from_db()
    assert (message.status, message.error_code) == ("undelivered", 30003)


# ---------------------------------------------------------------- WhatsApp Cloud API


@pytest.fixture
def graph():
    api = FakeApi()
    yield api
    api.close()


@pytest.fixture
def whatsapp(account, graph):
    provider = provider_of(
        account,
        "whatsapp_cloud",
        {"access_token": "wa-token", "app_secret": APP_SECRET, "verify_token": VERIFY_TOKEN},
        graph_base_url=graph.url,
        api_version="v21.0",
    )
    sender = sender_of(
        account, provider, "whatsapp", "whatsapp:+14155550199", provider_ref="1122334455"
    )
    return provider, sender


def meta_post(provider, payload: dict, *, secret: str = APP_SECRET):
    body = json.dumps(payload).encode()
    signature = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return Client().post(
        f"/webhooks/p/{provider.sid}",
        data=body,
        content_type="application/json",
        headers={"X-Hub-Signature-256": signature},
    )


def whatsapp_webhook(messages: list[dict], statuses: list[dict] | None = None) -> dict:
    value = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "14155550199", "phone_number_id": "1122334455"},
        "contacts": [{"profile": {"name": "Ana Pérez"}, "wa_id": "5215512345678"}],
        "messages": messages,
    }
    if statuses:
        value["statuses"] = statuses
    change = {"field": "messages", "value": value}
    return {"object": "whatsapp_business_account", "entry": [{"id": "WABA", "changes": [change]}]}


def test_meta_subscription_handshake(whatsapp):
    provider, _ = whatsapp
    path = f"/webhooks/p/{provider.sid}"
    good = {"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "8812"}
    answer = Client().get(path, good)
    assert (answer.status_code, answer.content) == (200, b"8812")
    assert Client().get(path, {**good, "hub.verify_token": "nope"}).status_code == 403


def test_whatsapp_text_and_image_become_messages_with_the_image_downloaded(whatsapp, graph):
    provider, _ = whatsapp
    graph.route(
        "GET",
        r"/v21\.0/MEDIA77",
        json_answer({"url": f"{graph.url}/cdn/img77", "mime_type": "image/png", "file_size": 40}),
    )
    graph.route("GET", r"/cdn/img77", lambda r: (200, {"Content-Type": "image/png"}, PNG))
    now = str(int(timezone.now().timestamp()))
    payload = whatsapp_webhook(
        [
            {
                "from": "5215512345678",
                "id": "wamid.A1",
                "timestamp": now,
                "type": "text",
                "text": {"body": "Hola"},
            },
            {
                "from": "5215512345678",
                "id": "wamid.A2",
                "timestamp": now,
                "type": "image",
                "image": {"id": "MEDIA77", "mime_type": "image/png", "caption": "mi recibo"},
            },
        ]
    )
    assert meta_post(provider, payload).status_code == 200
    assert meta_post(provider, payload).status_code == 200  # Meta retries
    process()
    messages = list(Message.objects.filter(direction=Direction.INBOUND).order_by("id"))
    # WhatsApp's Mexican wa_id 521 55... is the number +52 55...
    assert [(m.from_address, m.body) for m in messages] == [
        ("whatsapp:+525512345678", "Hola"),
        ("whatsapp:+525512345678", "mi recibo"),
    ]
    contact = Contact.objects.get(address="whatsapp:+525512345678")
    assert (contact.name, contact.country) == ("Ana Pérez", "MX")
    image = messages[1]
    assert media.inbound_media_fetch(message_id=image.id) == 1
    item = Media.objects.get(message=image)
    assert (item.state, item.content_type, item.file.read()) == ("stored", "image/png", PNG)
    fetches = [r for r in graph.received if r.method == "GET"]
    assert all(r.headers["Authorization"] == "Bearer wa-token" for r in fetches)
    # The customer just wrote: the 24-hour window is open for free-form replies.
    assert image.conversation.window_ends_at > timezone.now()


def test_a_whatsapp_failed_status_outside_the_window_maps_to_63016(whatsapp, account):
    provider, sender = whatsapp
    open_window(account, "whatsapp:+525512345678", sender.address)
    message = message_create(
        account=account,
        request=MessageRequest(to="whatsapp:+525512345678", from_=sender.address, body="hi"),
    )
    for status in ("sending", "sent"):
        message_status_apply(
            message_id=message.id, status=status, source="test", provider_message_id="wamid.OUT1"
        )
    failed = {
        "id": "wamid.OUT1",
        "status": "failed",
        "timestamp": "1700000000",
        "recipient_id": "5215512345678",
        "errors": [{"code": 131047, "title": "Re-engagement message"}],
    }
    assert meta_post(provider, whatsapp_webhook([], [failed])).status_code == 200
    process()
    message.refresh_from_db()
    assert (message.status, message.error_code) == ("failed", 63016)


def test_a_meta_webhook_with_a_bad_signature_is_refused(whatsapp):
    provider, _ = whatsapp
    assert meta_post(provider, whatsapp_webhook([]), secret="other").status_code == 403


def test_a_malformed_whatsapp_webhook_is_400_naming_the_field(whatsapp):
    provider, _ = whatsapp
    payload = whatsapp_webhook([{"id": "wamid.X", "timestamp": "1", "type": "text"}])
    response = meta_post(provider, payload)
    assert response.status_code == 400
    assert "from" in response.json()["message"]
    assert WebhookLog.objects.get().state == "rejected"


# ---------------------------------------------------------------- Messenger


@pytest.fixture
def messenger(account, graph):
    provider = provider_of(
        account,
        "messenger",
        {"page_access_token": "page-token", "app_secret": APP_SECRET, "verify_token": VERIFY_TOKEN},
        graph_base_url=graph.url,
    )
    return provider, sender_of(account, provider, "messenger_page", "messenger:100200300")


def test_messenger_message_echo_and_read_watermark(messenger, account):
    provider, page = messenger
    open_window(account, "messenger:7001", page.address)
    ours = message_create(
        account=account, request=MessageRequest(to="messenger:7001", from_=page.address, body="hi")
    )
    for status in ("sending", "sent"):
        message_status_apply(
            message_id=ours.id, status=status, source="test", provider_message_id="m_ours"
        )
    now_ms = int(timezone.now().timestamp() * 1000) + 1000
    events = [
        {
            "sender": {"id": "7001"},
            "recipient": {"id": "100200300"},
            "timestamp": now_ms,
            "message": {"mid": "m_in1", "text": "¿Abren el sábado?"},
        },
        {
            "sender": {"id": "100200300"},
            "recipient": {"id": "7001"},
            "timestamp": now_ms,
            "message": {"mid": "m_echo", "text": "hi", "is_echo": True},
        },
        {
            "sender": {"id": "7001"},
            "recipient": {"id": "100200300"},
            "timestamp": now_ms,
            "read": {"watermark": now_ms},
        },
    ]
    payload = {
        "object": "page",
        "entry": [{"id": "100200300", "time": now_ms, "messaging": events}],
    }
    assert meta_post(provider, payload).status_code == 200
    process()
    inbound = Message.objects.get(direction=Direction.INBOUND)
    assert (inbound.from_address, inbound.body) == ("messenger:7001", "¿Abren el sábado?")
    ours.refresh_from_db()
    assert ours.status == "read"
