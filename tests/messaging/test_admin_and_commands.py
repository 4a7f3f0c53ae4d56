"""The messaging admin validates what admins type; create_api_key issues working keys; raw
Twilio-wire edge cases the helper library cannot produce."""

import base64
import io

from django.core.management import call_command

from messaging import crypto
from messaging.models import ApiKey, Message, OptOut, Sender, StatusCallback
from messaging.services.messages import MessageRequest, message_create, message_status_apply

CUSTOMER = "+14155550123"


def basic(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


def test_every_messaging_changelist_renders_for_an_admin(admin_user, client_for, world):
    client = client_for(admin_user)
    message = message_create(
        account=world.account, request=MessageRequest(to=CUSTOMER, from_="+14155550100", body="x")
    )
    for model in (
        "account",
        "apikey",
        "provideraccount",
        "sender",
        "messagingservice",
        "message",
        "optout",
        "statuscallback",
        "contact",
        "conversation",
    ):
        response = client.get(f"/admin/messaging/{model}/")
        assert response.status_code == 200, model
    detail = client.get(f"/admin/messaging/message/{message.pk}/change/")
    assert detail.status_code == 200
    assert message.sid in detail.content.decode()


def test_admin_refuses_a_bad_sender_address_and_writes_nothing(admin_user, client_for, world):
    client = client_for(admin_user)
    before = Sender.objects.count()
    data = {
        "account": world.account.pk,
        "provider": world.provider.pk,
        "kind": "long_code",
        "address": "+1415",
        "country": "",
        "sms_capable": "on",
        "inbound_method": "POST",
    }
    response = client.post("/admin/messaging/sender/add/", data)
    assert response.status_code == 200
    assert "not a valid phone number" in response.content.decode()
    data.update(kind="alphanumeric", address="WAY-TOO-LONG-ID")
    response = client.post("/admin/messaging/sender/add/", data)
    assert "1 to 11 characters" in response.content.decode()
    data.update(
        kind="long_code", address="+1 (415) 555-0177", status_callback_url="ftp://example.com/z"
    )
    response = client.post("/admin/messaging/sender/add/", data)
    assert "http:// or https://" in response.content.decode()
    assert Sender.objects.count() == before
    data.update(status_callback_url="")
    response = client.post("/admin/messaging/sender/add/", data)
    assert response.status_code == 302
    created = Sender.objects.get(address="+14155550177")  # normalised to E.164
    assert (created.channel, created.country) == ("sms", "US")


def test_admin_opt_out_blocks_and_fails_the_waiting_message(admin_user, client_for, world):
    queued = message_create(
        account=world.account, request=MessageRequest(to=CUSTOMER, from_="+14155550100", body="x")
    )
    client = client_for(admin_user)
    response = client.post(
        "/admin/messaging/optout/add/",
        {"service": world.service.pk, "address": "+1 415 555 0123", "keyword": "STOP"},
    )
    assert response.status_code == 302
    assert OptOut.objects.get().address == CUSTOMER
    queued.refresh_from_db()
    assert (queued.status, queued.error_code) == ("failed", 21610)
    response = client.post(
        "/admin/messaging/optout/add/",
        {"service": world.service.pk, "sender": world.senders["long_code"].pk, "address": CUSTOMER},
    )
    assert "not both" in response.content.decode()


def test_failed_callbacks_are_visible_in_the_admin(admin_user, client_for, world):
    message = message_create(
        account=world.account,
        request=MessageRequest(
            to=CUSTOMER, from_="+14155550100", body="x", status_callback="http://127.0.0.1:9/cb"
        ),
    )
    message_status_apply(message_id=message.id, status="sending", source="system")
    StatusCallback.objects.update(state="failed", last_error="ConnectError: refused", attempts=6)
    page = client_for(admin_user).get("/admin/messaging/statuscallback/?state__exact=failed")
    assert "ConnectError: refused" in page.content.decode()


def test_create_api_key_prints_a_working_key_once(world, client):
    out = io.StringIO()
    call_command("create_api_key", "billing system", stdout=out)
    fields = dict(line.split(":", 1) for line in out.getvalue().splitlines() if ":" in line)
    key_sid, secret = fields["API key SID"].strip(), fields["Secret"].strip()
    assert fields["Account SID"].strip() == world.account.sid
    key = ApiKey.objects.get(sid=key_sid)
    assert key.friendly_name == "billing system"
    assert secret not in key.secret_hash and crypto.secret_matches(secret, key.secret_hash)
    response = client.get(
        f"/2010-04-01/Accounts/{world.account.sid}/Messages.json",
        HTTP_AUTHORIZATION=basic(key_sid, secret),
    )
    assert response.status_code == 200
    assert response.json()["messages"] == []


def test_unparseable_send_at_and_smart_encoded_are_clear_errors(world, client):
    url = f"/2010-04-01/Accounts/{world.account.sid}/Messages.json"
    auth = basic(world.account.sid, world.token)
    base = {"To": CUSTOMER, "MessagingServiceSid": world.service.sid, "Body": "x"}
    cases = [
        ({**base, "ScheduleType": "fixed", "SendAt": "tomorrow"}, 20422, "SendAt"),
        ({**base, "ScheduleType": "weekly", "SendAt": "2030-01-01T00:00:00Z"}, 35116, None),
        ({**base, "SmartEncoded": "maybe"}, 20422, "SmartEncoded"),
        ({**base, "ValidityPeriod": "ten"}, 21624, "ValidityPeriod"),
        ({**base, "ContentSid": "HX" + "1" * 32, "ContentVariables": "[1]"}, 21656, None),
        ({**base, "Tags": "{bad"}, 20422, "Tags"),
        ({"To": "", "From": "+14155550100", "Body": "x"}, 21604, None),
    ]
    for data, code, mentioned in cases:
        response = client.post(url, data, HTTP_AUTHORIZATION=auth)
        body = response.json()
        assert (response.status_code, body["code"]) == (400, code), data
        assert body["more_info"].endswith(str(code))
        if mentioned:
            assert mentioned in body["message"]
    assert Message.objects.count() == 0
    response = client.post(url, {"To": CUSTOMER, "Body": "x"}, HTTP_AUTHORIZATION="Bearer x")
    assert response.status_code == 401 and response["WWW-Authenticate"].startswith("Basic")
