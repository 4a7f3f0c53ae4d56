"""The generic provider webhook (`/webhooks/p/<provider sid>`): signature first, the raw request
kept, exactly-once storage under retries, 400 with the reason for malformed bodies; then the
slow half (media download, forwarding to the integrator) and delivery receipts."""

import base64
import json
import threading
import time
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.test import Client
from django.utils import timezone
from twilio.request_validator import RequestValidator

from messaging.models import (
    Direction,
    InboundEvent,
    Media,
    Message,
    MessagingService,
    Sender,
    WebhookLog,
)
from messaging.providers import StatusUpdate
from messaging.providers.simulator import SIGNATURE_HEADER, signature
from messaging.services import forwarding, media, webhooks
from messaging.services.dispatch import status_update_apply
from messaging.services.messages import MessageRequest, message_create, message_status_apply
from tests.messaging.conftest import WEBHOOK_SECRET, open_window
from tests.support.http import FakeApi, Received

CUSTOMER = "+14155550142"
LONG_CODE = "+14155550100"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


@pytest.fixture
def service(account):
    return MessagingService.objects.create(account=account, friendly_name="Support")


@pytest.fixture
def sender(account, provider, service):
    sender = Sender(
        account=account, provider=provider, service=service, kind="long_code", address=LONG_CODE
    )
    sender.full_clean()
    sender.save()
    return sender


@pytest.fixture
def fake():
    api = FakeApi()
    yield api
    api.close()


def url(provider) -> str:
    return f"/webhooks/p/{provider.sid}"


def body_of(**fields) -> bytes:
    base = {"id": "SS100", "from": CUSTOMER, "to": LONG_CODE, "body": "Hi"}
    return json.dumps({**base, **fields}).encode()


def signed(client, provider, body: bytes, secret: str = WEBHOOK_SECRET, *, process=True):
    """POST a signed webhook; then do what the Celery task does with it (unless told not to)."""
    response = client.post(
        url(provider),
        data=body,
        content_type="application/json",
        headers={SIGNATURE_HEADER: signature(secret, body)},
    )
    if process and response.status_code == 200:
        webhooks.webhook_process(webhook_id=WebhookLog.objects.latest("id").id)
    return response


# ---------------------------------------------------------------- the request


def test_a_signed_webhook_is_logged_and_stored(provider, sender):
    response = signed(Client(), provider, body_of())
    assert response.status_code == 200
    message = Message.objects.get()
    assert (message.direction, message.from_address, message.body) == ("inbound", CUSTOMER, "Hi")
    entry = WebhookLog.objects.get()
    assert entry.state == WebhookLog.State.ACCEPTED
    assert (entry.messages, entry.new_messages, entry.statuses) == (1, 1, 0)
    assert json.loads(entry.body)["id"] == "SS100"
    assert entry.headers[SIGNATURE_HEADER] == signature(WEBHOOK_SECRET, body_of())
    assert entry.url == f"http://testserver/webhooks/p/{provider.sid}"


def test_ten_retries_of_one_webhook_store_one_message(provider, sender):
    client = Client()
    for _ in range(10):
        assert signed(client, provider, body_of()).status_code == 200
    assert Message.objects.count() == 1
    assert WebhookLog.objects.count() == 10
    assert sorted(WebhookLog.objects.values_list("new_messages", flat=True)) == [0] * 9 + [1]


def test_a_bad_signature_is_refused_and_nothing_is_kept(provider, sender):
    response = signed(Client(), provider, body_of(), secret="not-the-secret")
    assert response.status_code == 403
    assert response.json()["code"] == 20403
    assert not Message.objects.exists()
    assert not WebhookLog.objects.exists()


def test_a_missing_signature_is_refused(provider, sender):
    response = Client().post(url(provider), data=body_of(), content_type="application/json")
    assert response.status_code == 403
    assert not WebhookLog.objects.exists()


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "must be a JSON object"),
        (json.dumps({"id": "SS1", "to": LONG_CODE}).encode(), "'from'"),
    ],
)
def test_a_malformed_body_is_answered_400_with_the_reason_and_kept(provider, sender, body, reason):
    response = signed(Client(), provider, body)
    assert response.status_code == 400
    assert reason in response.json()["message"]
    entry = WebhookLog.objects.get()
    assert entry.state == WebhookLog.State.REJECTED
    assert reason in entry.error
    assert entry.body == body.decode()
    assert not Message.objects.exists()


def test_an_unknown_sender_is_400_naming_it_and_kept(provider, sender):
    response = signed(Client(), provider, body_of(to="+14155550999"))
    assert response.status_code == 400
    assert response.json()["code"] == 21606
    assert "+14155550999" in response.json()["message"]
    assert WebhookLog.objects.get().state == WebhookLog.State.REJECTED


def test_unknown_providers_and_methods(provider, sender):
    client = Client()
    assert (
        client.post(
            "/webhooks/p/PA" + "0" * 32, data=b"{}", content_type="application/json"
        ).status_code
        == 404
    )
    assert client.get(url(provider)).status_code == 405  # the simulator has no handshake
    assert client.put(url(provider)).status_code == 405
    provider.active = False
    provider.save()
    webhooks.webhook_caches_clear()  # what the 5-s cache expiry later does in every process
    assert signed(client, provider, body_of()).status_code == 404


def test_the_signed_url_is_the_public_one_behind_a_proxy(provider, sender, settings):
    settings.PUBLIC_BASE_URL = "https://cc.example.com"
    signed(Client(), provider, body_of())
    assert WebhookLog.objects.get().url == f"https://cc.example.com/webhooks/p/{provider.sid}"


@pytest.mark.django_db(transaction=True)
def test_concurrent_retries_store_one_message(provider, sender):
    if connection.vendor != "postgresql":
        pytest.skip("concurrent writers need PostgreSQL (SQLite serialises them)")
    body = body_of(id="SS-RACE")
    barrier = threading.Barrier(8)
    answers = []

    def hit():
        barrier.wait()
        answers.append(signed(Client(), provider, body, process=False).status_code)
        connection.close()

    threads = [threading.Thread(target=hit) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert answers == [200] * 8
    assert InboundEvent.objects.filter(provider_message_id="SS-RACE").count() == 1
    webhooks.inbound_pending_process()
    assert Message.objects.filter(provider_message_id="SS-RACE").count() == 1
    assert sum(WebhookLog.objects.values_list("new_messages", flat=True)) == 1


@pytest.mark.django_db(transaction=True)
def test_a_second_processing_run_skips_the_events_another_run_holds(provider, sender):
    """Two runs at once (two Celery children) take different events: the second neither
    waits for the first nor stores its events a second time."""
    if connection.vendor != "postgresql":
        pytest.skip("row locks need PostgreSQL")
    for n in range(6):
        signed(Client(), provider, body_of(id=f"SS-CLAIM-{n}"), process=False)
    held_ids = list(InboundEvent.objects.order_by("id").values_list("id", flat=True)[:3])
    holding, release = threading.Event(), threading.Event()

    def first_run_holds_three():
        with transaction.atomic():
            list(InboundEvent.objects.select_for_update().filter(id__in=held_ids))
            holding.set()
            release.wait(10)
        connection.close()

    holder = threading.Thread(target=first_run_holds_three)
    holder.start()
    holding.wait(5)
    started = time.monotonic()
    assert webhooks.inbound_pending_process() == 3
    assert time.monotonic() - started < 5  # did not wait for the holder
    stored = set(Message.objects.values_list("provider_message_id", flat=True))
    assert stored == {"SS-CLAIM-3", "SS-CLAIM-4", "SS-CLAIM-5"}
    release.set()
    holder.join()
    assert webhooks.inbound_pending_process() == 3
    assert Message.objects.count() == 6


def test_old_raw_requests_are_purged_and_messages_stay(provider, sender, settings):
    settings.WEBHOOK_LOG_RETENTION_DAYS = 7
    signed(Client(), provider, body_of(id="SS-OLD"))
    signed(Client(), provider, body_of(id="SS-NEW"))
    old = WebhookLog.objects.order_by("id").first()
    WebhookLog.objects.filter(id=old.id).update(received_at=timezone.now() - timedelta(days=8))
    assert webhooks.webhook_log_purge() == 1
    assert WebhookLog.objects.count() == 1
    assert Message.objects.count() == 2


# ---------------------------------------------------------------- media


def png_route(fake: FakeApi, status: int = 200):
    fake.route("GET", r"/files/cat\.png", lambda r: (status, {"Content-Type": "image/png"}, PNG))
    return f"{fake.url}/files/cat.png"


def inbound_with_media(provider, media_url: str) -> Message:
    body = body_of(media=[{"url": media_url, "content_type": "image/png"}])
    assert signed(Client(), provider, body).status_code == 200
    return Message.objects.get()


def test_inbound_media_is_downloaded_once_and_served_only_with_credentials(
    provider, sender, fake, account, admin_user, agent1, outsider, client_for
):
    message = inbound_with_media(provider, png_route(fake))
    assert message.sid.startswith("MM") and message.num_media == 1
    assert media.inbound_media_fetch(message_id=message.id) == 1
    assert media.inbound_media_fetch(message_id=message.id) == 0  # a repeated task run
    assert len(fake.received) == 1
    item = Media.objects.get()
    assert (item.state, item.size, item.content_type) == ("stored", len(PNG), "image/png")
    assert item.file.read() == PNG

    path = f"/2010-04-01/Accounts/{account.sid}/Messages/{message.sid}/Media/{item.sid}"
    assert Client().get(path).status_code == 401
    basic = base64.b64encode(f"{account.sid}:{account.auth_token}".encode()).decode()
    served = Client().get(path, HTTP_AUTHORIZATION=f"Basic {basic}")
    assert served.status_code == 200
    assert b"".join(served.streaming_content) == PNG
    assert served["Content-Type"] == "image/png"
    assert served["Content-Security-Policy"] == "sandbox"
    meta = Client().get(path + ".json", HTTP_AUTHORIZATION=f"Basic {basic}").json()
    assert (meta["sid"], meta["parent_sid"], meta["content_type"]) == (
        item.sid,
        message.sid,
        "image/png",
    )

    staff_path = f"/media/{item.sid}"
    assert Client().get(staff_path).status_code == 302  # to sign-in
    assert client_for(outsider).get(staff_path).status_code == 403
    assert client_for(agent1).get(staff_path).status_code == 200


def test_a_media_download_that_fails_is_marked_and_the_message_kept(provider, sender, fake):
    message = inbound_with_media(provider, png_route(fake, status=404))
    assert media.inbound_media_fetch(message_id=message.id) == 0
    item = Media.objects.get()
    assert item.state == "failed"
    assert "404" in item.error
    assert Message.objects.filter(id=message.id).exists()


def test_media_larger_than_the_cap_is_refused(provider, sender, fake, settings):
    settings.INBOUND_MEDIA_MAX_BYTES = 10
    message = inbound_with_media(provider, png_route(fake))
    media.inbound_media_fetch(message_id=message.id)
    item = Media.objects.get()
    assert item.state == "failed" and "larger than 10 bytes" in item.error


# ---------------------------------------------------------------- forwarding


def twiml(text: str):
    def respond(_request: Received):
        return 200, {"Content-Type": "text/xml"}, text.encode()

    return respond


def forward(provider, **fields) -> Message:
    assert signed(Client(), provider, body_of(**fields)).status_code == 200
    message = Message.objects.get(direction=Direction.INBOUND)
    forwarding.inbound_forward(message_id=message.id)
    return Message.objects.get(id=message.id)


def test_the_service_webhook_gets_twilio_parameters_signed_and_its_twiml_reply_is_sent(
    provider, sender, service, fake, account
):
    service.inbound_request_url = f"{fake.url}/sms"
    service.save()
    fake.route(
        "POST",
        "/sms",
        twiml('<?xml version="1.0"?><Response><Message>Thanks, we got it</Message></Response>'),
    )
    message = forward(provider)
    (request,) = fake.received
    params = request.form
    assert params["MessageSid"] == params["SmsSid"] == message.sid
    assert (params["From"], params["To"], params["Body"]) == (CUSTOMER, LONG_CODE, "Hi")
    assert (params["AccountSid"], params["MessagingServiceSid"]) == (account.sid, service.sid)
    assert (params["NumMedia"], params["NumSegments"], params["SmsStatus"]) == (
        "0",
        "1",
        "received",
    )
    assert (params["FromCountry"], params["FromState"], params["FromCity"]) == (
        "US",
        "CA",
        "San Francisco",
    )
    validator = RequestValidator(account.auth_token)
    assert validator.validate(f"{fake.url}/sms", params, request.headers["X-Twilio-Signature"])

    reply = Message.objects.get(direction=Direction.OUTBOUND_REPLY)
    assert (reply.from_address, reply.to_address, reply.body) == (
        LONG_CODE,
        CUSTOMER,
        "Thanks, we got it",
    )
    assert message.forward_result.startswith("primary; replies: SM")
    forwarding.inbound_forward(message_id=message.id)  # a repeated task run
    assert len(fake.received) == 1
    assert Message.objects.filter(direction=Direction.OUTBOUND_REPLY).count() == 1


def test_the_fallback_url_is_called_when_the_primary_fails(provider, sender, service, fake):
    service.inbound_request_url = f"{fake.url}/primary"
    service.fallback_url = f"{fake.url}/fallback"
    service.save()
    fake.route("POST", "/primary", lambda r: (500, {}, b"boom"))
    fake.route("POST", "/fallback", twiml("<Response/>"))
    message = forward(provider)
    assert [r.path for r in fake.received] == ["/primary", "/fallback"]
    fallback = fake.received[1].form
    assert (fallback["ErrorCode"], fallback["ErrorUrl"]) == ("11200", f"{fake.url}/primary")
    assert message.forward_result == "fallback"
    assert not Message.objects.filter(direction=Direction.OUTBOUND_REPLY).exists()


def test_when_both_urls_fail_the_message_says_so(provider, sender, service, fake):
    service.inbound_request_url = f"{fake.url}/primary"
    service.fallback_url = f"{fake.url}/fallback"
    service.save()
    message = forward(provider)  # FakeApi answers 404 to both
    assert message.forward_result == "failed: HTTP 404; fallback: HTTP 404"


def test_a_sender_webhook_by_get_with_media_and_a_reply_with_body_and_media(
    account, provider, fake, settings
):
    settings.PUBLIC_BASE_URL = "https://cc.example.com"
    lone = Sender(
        account=account, provider=provider, kind="long_code", address=LONG_CODE, mms_capable=True
    )
    lone.inbound_request_url = f"{fake.url}/app?token=abc"
    lone.inbound_method = "GET"
    lone.full_clean()
    lone.save()
    fake.route(
        "GET",
        "/app",
        twiml(
            "<Response><Message><Body>See this</Body>"
            "<Media>https://example.com/a.png</Media></Message></Response>"
        ),
    )
    message = forward(
        provider, media=[{"url": "https://example.com/in.jpg", "content_type": "image/jpeg"}]
    )
    (request,) = fake.received
    query = dict(part.split("=", 1) for part in request.path.split("?", 1)[1].split("&"))
    assert query["token"] == "abc" and query["NumMedia"] == "1"
    item = Media.objects.get(message=message)
    assert "MediaUrl0" in query and item.sid in query["MediaUrl0"]
    validator = RequestValidator(account.auth_token)
    assert validator.validate(
        f"{fake.url}{request.path}", {}, request.headers["X-Twilio-Signature"]
    )
    assert message.forward_result.startswith("primary; replies: MM")
    reply = Message.objects.get(direction=Direction.OUTBOUND_REPLY)
    assert reply.body == "See this" and reply.num_media == 1


def test_a_number_in_a_service_keeps_its_own_webhook_when_the_service_says_so(
    provider, sender, service
):
    service.inbound_request_url = "https://service.example.com/in"
    service.save()
    sender.inbound_request_url = "https://number.example.com/in"
    sender.save()
    sender.refresh_from_db()
    assert forwarding.forward_urls(sender).primary == "https://service.example.com/in"
    service.use_inbound_webhook_on_number = True
    service.save()
    sender.refresh_from_db()
    assert forwarding.forward_urls(sender).primary == "https://number.example.com/in"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", []),
        ('{"ok": true}', []),
        ("<Response/>", []),
        ("<Response><Message>One</Message><Message>Two</Message></Response>", ["One", "Two"]),
        ("<Response><Message><Body>A</Body><Body>B</Body></Message></Response>", ["AB"]),
    ],
)
def test_twiml_replies(text, expected):
    assert [reply.body for reply in forwarding.twiml_replies(text)] == expected


def test_malformed_twiml_is_recorded_not_sent(provider, sender, service, fake):
    service.inbound_request_url = f"{fake.url}/sms"
    service.save()
    fake.route("POST", "/sms", twiml("<Response><Message>unclosed</Response>"))
    message = forward(provider)
    assert "bad TwiML" in message.forward_result
    assert not Message.objects.filter(direction=Direction.OUTBOUND_REPLY).exists()


# ---------------------------------------------------------------- receipts


def sent_message(account, sender, to: str, provider_id: str) -> Message:
    message = message_create(
        account=account, request=MessageRequest(to=to, from_=sender.address, body="x")
    )
    for status in ("sending", "sent"):
        message_status_apply(
            message_id=message.id, status=status, source="test", provider_message_id=provider_id
        )
    return Message.objects.get(id=message.id)


def test_a_receipt_by_provider_id_moves_the_message_forward_only(account, provider, sender):
    message = sent_message(account, sender, CUSTOMER, "PX1")
    delivered = StatusUpdate(status="delivered", provider_message_id="PX1")
    assert status_update_apply(provider_id=provider.id, update=delivered) == 1
    late_sent = StatusUpdate(status="sent", provider_message_id="PX1")
    assert status_update_apply(provider_id=provider.id, update=late_sent) == 0
    assert Message.objects.get(id=message.id).status == "delivered"
    failed = StatusUpdate(status="failed", provider_message_id="PX-unknown", error_code=30003)
    assert status_update_apply(provider_id=provider.id, update=failed) == 0


def test_a_watermark_marks_every_earlier_message_to_that_customer(account, provider):
    page = Sender(
        account=account, provider=provider, kind="messenger_page", address="messenger:500"
    )
    page.full_clean()
    page.save()
    psid = "messenger:7001"
    for customer in (psid, "messenger:7002"):
        open_window(account, customer, "messenger:500")
    first = sent_message(account, page, psid, "mid.1")
    second = sent_message(account, page, psid, "mid.2")
    other = sent_message(account, page, "messenger:7002", "mid.3")
    Message.objects.filter(id=second.id).update(date_sent=timezone.now() + timedelta(minutes=5))
    read = StatusUpdate(
        status="read", recipient=psid, sender_ref="messenger:500", watermark=timezone.now()
    )
    assert status_update_apply(provider_id=provider.id, update=read) == 1
    statuses = dict(Message.objects.values_list("id", "status"))
    assert statuses[first.id] == "read"
    assert statuses[second.id] == "sent"  # sent after the watermark
    assert statuses[other.id] == "sent"  # another customer


def test_an_event_that_cannot_be_stored_fails_alone_and_the_next_one_goes_on(provider, sender):
    signed(Client(), provider, body_of(id="SS-BAD"), process=False)
    signed(Client(), provider, body_of(id="SS-GOOD"), process=False)
    bad = InboundEvent.objects.get(provider_message_id="SS-BAD")
    InboundEvent.objects.filter(id=bad.id).update(payload={"broken": True})  # no fields at all
    assert webhooks.inbound_pending_process() == 1
    states = dict(InboundEvent.objects.values_list("provider_message_id", "state"))
    assert states == {"SS-BAD": "failed", "SS-GOOD": "stored"}
    assert "KeyError" in InboundEvent.objects.get(id=bad.id).error
    assert list(Message.objects.values_list("provider_message_id", flat=True)) == ["SS-GOOD"]


def test_a_stop_still_reaches_the_app_marked_with_opt_out_type(provider, sender, service, fake):
    service.inbound_request_url = f"{fake.url}/sms"
    service.save()
    fake.route("POST", "/sms", twiml("<Response/>"))
    message = forward(provider, body=" stop ")
    assert message.opt_out_type == "STOP"
    (request,) = fake.received
    assert (request.form["OptOutType"], request.form["Body"]) == ("STOP", " stop ")


def test_the_sweep_takes_only_what_a_lost_task_left_waiting(provider, sender):
    signed(Client(), provider, body_of(id="SS-LOST"), process=False)
    signed(Client(), provider, body_of(id="SS-FRESH"), process=False)
    lost = InboundEvent.objects.filter(provider_message_id="SS-LOST")
    lost.update(received_at=timezone.now() - timedelta(seconds=31))
    assert webhooks.inbound_sweep(older_than_seconds=30) == 1
    states = dict(InboundEvent.objects.values_list("provider_message_id", "state"))
    assert states == {"SS-LOST": "stored", "SS-FRESH": "pending"}


def test_cached_rows_expire_and_misses_are_not_kept(monkeypatch):
    from messaging import caching

    clock = [100.0]
    monkeypatch.setattr(caching.time, "monotonic", lambda: clock[0])
    cache = caching.TtlCache(seconds=5.0, max_size=10)
    loads = []

    def load(value):
        loads.append(value)
        return value

    assert cache.get("k", lambda: load("a")) == "a"
    assert cache.get("k", lambda: load("b")) == "a"  # within 5 s: not read again
    clock[0] += 6
    assert cache.get("k", lambda: load("c")) == "c"  # expired: read again
    assert cache.get("gone", lambda: load(None)) is None
    assert cache.get("gone", lambda: load("now here")) == "now here"  # the miss was not kept
    assert loads == ["a", "c", None, "now here"]
