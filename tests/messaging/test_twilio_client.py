"""The official `twilio` package, used as a real client against a live test server."""

from datetime import UTC, datetime, timedelta

import pytest
from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client

from messaging.models import ApiKey, Contact, Media, Message, MessageStatusChange, OptOut
from messaging.services.accounts import api_key_revoke

CUSTOMER = "+14155550123"


def client_for(live_server, username: str, password: str, account_sid: str) -> Client:
    client = Client(username, password, account_sid)
    client.api.base_url = live_server.url
    return client


@pytest.fixture
def twilio(live_server, live_world):
    return client_for(live_server, live_world.account.sid, live_world.token, live_world.account.sid)


def error_code(call) -> tuple[int, int]:
    with pytest.raises(TwilioRestException) as info:
        call()
    return info.value.code, info.value.status


def test_create_from_a_number_is_queued_with_segments_counted(twilio, live_world):
    message = twilio.messages.create(to=CUSTOMER, from_="+14155550100", body="Hola “amigo”…")

    assert message.sid.startswith("SM") and len(message.sid) == 34
    assert message.status == "queued"
    assert message.from_ == "+14155550100"
    assert message.to == CUSTOMER
    assert message.num_segments == "1"
    assert message.num_media == "0"
    assert message.direction == "outbound-api"
    assert message.account_sid == live_world.account.sid
    assert message.messaging_service_sid == live_world.service.sid  # the number is in a pool
    assert isinstance(message.date_created, datetime)
    stored = Message.objects.get(sid=message.sid)
    assert stored.encoding == "GSM-7"  # smart encoding of the service made it GSM-7
    assert stored.sender_rule == "from"
    assert Contact.objects.get(address=CUSTOMER).country == "US"
    assert list(stored.history.values_list("status", flat=True)) == ["queued"]


def test_create_through_a_service_is_accepted_without_from(twilio, live_world):
    message = twilio.messages.create(
        to=CUSTOMER,
        messaging_service_sid=live_world.service.sid,
        body="Your code is 1234",
        status_callback="https://example.com/status",
    )
    assert message.status == "accepted"
    assert message.from_ is None
    assert message.num_segments == "0"
    assert message.messaging_service_sid == live_world.service.sid
    assert Message.objects.get(sid=message.sid).status_callback == "https://example.com/status"


def test_media_message_gets_an_mm_sid_and_media_rows(twilio):
    message = twilio.messages.create(
        to=CUSTOMER,
        from_="+14155550100",
        body="Look",
        media_url=["https://example.com/a.jpg", "https://example.com/b.png"],
    )
    assert message.sid.startswith("MM")
    assert message.num_media == "2"
    assert sorted(Media.objects.filter(message__sid=message.sid).values_list("url", flat=True)) == [
        "https://example.com/a.jpg",
        "https://example.com/b.png",
    ]


def test_fetch_returns_the_same_resource(twilio):
    created = twilio.messages.create(to=CUSTOMER, from_="+14155550100", body="fetch me")
    fetched = twilio.messages(created.sid).fetch()
    assert fetched.sid == created.sid
    assert fetched.body == "fetch me"
    assert fetched.date_created == created.date_created


def test_list_filters_and_follows_next_page_uri(twilio):
    for n in range(5):
        twilio.messages.create(to=CUSTOMER, from_="+14155550100", body=f"n{n}")
    twilio.messages.create(to="+14155550124", from_="+14155550100", body="other")

    listed = twilio.messages.list(to=CUSTOMER, page_size=2)

    assert [m.body for m in listed] == ["n4", "n3", "n2", "n1", "n0"]
    page = twilio.messages.page(to=CUSTOMER, page_size=2)
    assert page.next_page_url is not None and "PageToken=" in page.next_page_url
    assert len(twilio.messages.list(from_="+14155550100")) == 6


def test_cancel_a_scheduled_message(twilio, live_world):
    send_at = datetime.now(UTC) + timedelta(hours=1)
    scheduled = twilio.messages.create(
        to=CUSTOMER,
        messaging_service_sid=live_world.service.sid,
        body="Reminder",
        send_at=send_at,
        schedule_type="fixed",
    )
    assert scheduled.status == "scheduled"

    canceled = twilio.messages(scheduled.sid).update(status="canceled")

    assert canceled.status == "canceled"
    assert list(
        MessageStatusChange.objects.filter(message__sid=scheduled.sid).values_list(
            "status", flat=True
        )
    ) == ["scheduled", "canceled"]
    code, _ = error_code(lambda: twilio.messages(scheduled.sid).update(body="x"))
    assert code == 20422


def test_cancel_refused_for_an_unscheduled_message(twilio):
    message = twilio.messages.create(to=CUSTOMER, from_="+14155550100", body="now")
    assert error_code(lambda: twilio.messages(message.sid).update(status="canceled")) == (
        20422,
        400,
    )
    assert Message.objects.get(sid=message.sid).status == "queued"


def test_api_key_authentication(live_server, live_world):
    client = client_for(
        live_server, live_world.key_sid, live_world.key_secret, live_world.account.sid
    )
    message = client.messages.create(to=CUSTOMER, from_="+14155550100", body="via key")
    assert Message.objects.filter(sid=message.sid).exists()


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"to": "+1415", "body": "x"}, 21211),
        ({"to": "4155550123", "body": "x"}, 21211),
        ({"to": CUSTOMER}, 21602),
        ({"to": CUSTOMER, "body": "a" * 1601}, 21617),
        ({"to": CUSTOMER, "body": "x", "media_url": ["ftp://example.com/a.png"]}, 21620),
        (
            {
                "to": CUSTOMER,
                "body": "x",
                "media_url": [f"https://e.com/{i}.png" for i in range(11)],
            },
            21623,
        ),
        ({"to": CUSTOMER, "body": "x", "status_callback": "javascript:alert(1)"}, 21609),
        ({"to": CUSTOMER, "body": "x", "validity_period": 36001}, 21624),
        ({"to": "whatsapp:+14155550123", "body": "x"}, 21606),  # From is an SMS number
    ],
)
def test_bad_input_surfaces_the_twilio_code_and_creates_nothing(twilio, kwargs, code):
    kwargs.setdefault("from_", "+14155550100")
    assert error_code(lambda: twilio.messages.create(**kwargs)) == (code, 400)
    assert Message.objects.count() == 0


def test_unknown_sender_and_content_errors(twilio, live_world):
    checks = [
        (lambda: twilio.messages.create(to=CUSTOMER, from_="+14155550999", body="x"), 21606),
        (lambda: twilio.messages.create(to=CUSTOMER, body="x"), 21603),
        (
            lambda: twilio.messages.create(
                to=CUSTOMER, messaging_service_sid="MG" + "0" * 32, body="x"
            ),
            21701,
        ),
        (
            lambda: twilio.messages.create(
                to=CUSTOMER,
                from_="+14155550100",
                content_sid="HX" + "1" * 32,
                content_variables="{not json",
            ),
            21656,
        ),
        (
            lambda: twilio.messages.create(
                to=CUSTOMER, from_="55501", body="x", media_url=["https://e.com/a.png"]
            ),
            21606,  # the short code cannot send MMS
        ),
    ]
    for call, code in checks:
        assert error_code(call)[0] == code
    assert Message.objects.count() == 0


def test_schedule_window_errors(twilio, live_world):
    now = datetime.now(UTC)
    service = live_world.service.sid
    too_soon = now + timedelta(seconds=200)
    too_far = now + timedelta(days=36)
    assert (
        error_code(
            lambda: twilio.messages.create(
                to=CUSTOMER,
                messaging_service_sid=service,
                body="x",
                send_at=too_soon,
                schedule_type="fixed",
            )
        )[0]
        == 35114
    )
    assert (
        error_code(
            lambda: twilio.messages.create(
                to=CUSTOMER,
                messaging_service_sid=service,
                body="x",
                send_at=too_far,
                schedule_type="fixed",
            )
        )[0]
        == 35115
    )
    assert (
        error_code(
            lambda: twilio.messages.create(
                to=CUSTOMER, messaging_service_sid=service, body="x", schedule_type="fixed"
            )
        )[0]
        == 35111
    )
    assert (
        error_code(
            lambda: twilio.messages.create(
                to=CUSTOMER,
                from_="+14155550100",
                body="x",
                send_at=now + timedelta(hours=1),
                schedule_type="fixed",
            )
        )[0]
        == 35118
    )
    assert Message.objects.count() == 0


def test_opted_out_recipient_is_refused_with_21610(twilio, live_world):
    OptOut.objects.create(account=live_world.account, service=live_world.service, address=CUSTOMER)
    assert error_code(
        lambda: twilio.messages.create(to=CUSTOMER, from_="+14155550100", body="x")
    ) == (21610, 400)
    assert error_code(
        lambda: twilio.messages.create(
            to=CUSTOMER, messaging_service_sid=live_world.service.sid, body="x"
        )
    ) == (21610, 400)
    assert Message.objects.count() == 0


def test_wrong_credentials_are_401_and_create_nothing(live_server, live_world):
    bad = client_for(live_server, live_world.account.sid, "wrong-token", live_world.account.sid)
    assert error_code(lambda: bad.messages.create(to=CUSTOMER, from_="+14155550100", body="x")) == (
        20003,
        401,
    )
    wrong_secret = client_for(
        live_server, live_world.key_sid, "not-the-secret", live_world.account.sid
    )
    assert error_code(
        lambda: wrong_secret.messages.create(to=CUSTOMER, from_="+14155550100", body="x")
    ) == (20003, 401)
    api_key_revoke(key=ApiKey.objects.get(sid=live_world.key_sid))
    revoked = client_for(
        live_server, live_world.key_sid, live_world.key_secret, live_world.account.sid
    )
    assert error_code(
        lambda: revoked.messages.create(to=CUSTOMER, from_="+14155550100", body="x")
    ) == (20003, 401)
    assert Message.objects.count() == 0


def test_another_accounts_sid_is_404(live_server, live_world):
    other_sid = "AC" + "f" * 32
    client = client_for(live_server, live_world.account.sid, live_world.token, other_sid)
    assert error_code(
        lambda: client.messages.create(to=CUSTOMER, from_="+14155550100", body="x")
    ) == (20404, 404)
    assert error_code(lambda: client.messages("SM" + "0" * 32).fetch()) == (20404, 404)
    assert Message.objects.count() == 0


def test_nul_characters_and_malformed_sids_are_clean_errors(live_server, live_world):
    import httpx

    base = f"{live_server.url}/2010-04-01/Accounts/{live_world.account.sid}"
    auth = (live_world.account.sid, live_world.token)
    response = httpx.post(
        f"{base}/Messages.json",
        data={"To": CUSTOMER, "From": "+14155550100", "Body": "a\x00b"},
        auth=auth,
    )
    assert (response.status_code, response.json()["code"]) == (400, 20422)
    assert "Body" in response.json()["message"]
    response = httpx.get(f"{base}/Messages/SM%00.json", auth=auth)
    assert (response.status_code, response.json()["code"]) == (404, 20404)
    response = httpx.get(f"{base}/Messages.json", params={"To": "+1\x00"}, auth=auth)
    assert response.status_code == 400
    response = httpx.delete(f"{base}/Messages.json", auth=auth)
    assert (response.status_code, response.json()["code"]) == (405, 20004)
    assert Message.objects.count() == 0
