"""The native JSON API under /api/v1/: messages, senders, messaging services, auth, errors
and the OpenAPI schema and docs."""

import base64
import json
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from messaging import crypto
from messaging.models import (
    Account,
    Message,
    MessagingService,
    ProviderAccount,
    Sender,
    StickySender,
)
from messaging.services.accounts import (
    account_get_or_create_default,
    api_key_create,
    api_key_revoke,
)
from messaging.services.config import sender_create, service_create
from messaging.services.messages import MessageRequest, message_create, message_status_apply

CUSTOMER = "+14155550123"
OTHER_CUSTOMER = "+14155550124"
NUMBER = "+14155550100"
MESSAGES = "/api/v1/messages"
SENDERS = "/api/v1/senders"
SERVICES = "/api/v1/services"


def basic(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


class Api:
    """A JSON client; `authorization` is sent as the Authorization header when given."""

    def __init__(self, authorization: str | None = None, client: Client | None = None):
        self.client = client or Client()
        self.headers = {"Authorization": authorization} if authorization else {}

    def get(self, path: str, params: dict | None = None):
        return self.client.get(path, params or {}, headers=self.headers)

    def post(self, path: str, data=None, **kwargs):
        body = kwargs.pop("raw", None)
        if body is None:
            body = json.dumps(data if data is not None else {})
        content_type = kwargs.pop("content_type", "application/json")
        return self.client.post(path, body, content_type=content_type, headers=self.headers)

    def patch(self, path: str, data: dict):
        return self.client.patch(
            path, json.dumps(data), content_type="application/json", headers=self.headers
        )

    def delete(self, path: str):
        return self.client.delete(path, headers=self.headers)


def parse_time(value: str) -> datetime:
    assert value.endswith("Z"), value  # ISO 8601 in UTC
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def assert_error(response, status: int, code: int, field: str | None = None) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert body["code"] == code, body
    assert body["status"] == status
    assert body["field"] == field, body
    assert isinstance(body["message"], str) and body["message"]
    return body


def other_account() -> Account:
    return Account.objects.create(
        friendly_name="Other", auth_token_encrypted=crypto.encrypt(crypto.new_token())
    )


@pytest.fixture
def env(db):
    account = account_get_or_create_default()
    provider = ProviderAccount.objects.create(
        account=account, name="native-simulator", kind="simulator"
    )
    service = service_create(account=account, friendly_name="Native service")
    sender = sender_create(
        account=account,
        kind="long_code",
        address=NUMBER,
        provider_sid=provider.sid,
        messaging_service_sid=service.sid,
        mms_capable=True,
    )
    key = api_key_create(account=account, friendly_name="native tests")
    return SimpleNamespace(
        account=account,
        provider=provider,
        service=service,
        sender=sender,
        key=key.key,
        api=Api(basic(key.key.sid, key.secret)),
        account_api=Api(basic(account.sid, account.auth_token)),
    )


# ---------------------------------------------------------------- messages


def test_create_from_a_sender_is_queued(env):
    before = timezone.now().replace(microsecond=0)
    response = env.account_api.post(
        MESSAGES,
        {"to": "+1 (415) 555-0123", "from": NUMBER, "body": "Hola", "tags": {"order": 42}},
    )

    assert response.status_code == 201, response.content
    data = response.json()
    assert data["sid"].startswith("SM") and len(data["sid"]) == 34
    assert data["account_sid"] == env.account.sid
    assert data["messaging_service_sid"] == env.service.sid  # the number is in that pool
    assert data["from"] == NUMBER
    assert data["to"] == CUSTOMER  # normalised
    assert data["channel"] == "sms"
    assert data["direction"] == "outbound-api"
    assert data["body"] == "Hola"
    assert data["status"] == "queued"
    assert data["encoding"] == "GSM-7"
    assert data["num_segments"] == 1 and data["num_media"] == 0
    assert data["error_code"] is None and data["error_message"] is None
    assert data["sender_rule"] == "from"
    assert data["validity_period"] == 36000
    assert data["send_at"] is None and data["date_sent"] is None
    assert data["tags"] == {"order": "42"}
    assert parse_time(data["date_created"]) >= before
    assert [(h["status"], h["error_code"], h["source"]) for h in data["history"]] == [
        ("queued", None, "api")
    ]
    parse_time(data["history"][0]["at"])
    assert data["media"] == []

    stored = Message.objects.get(sid=data["sid"])
    assert stored.account == env.account
    assert stored.sender == env.sender
    assert stored.to_address == CUSTOMER and stored.status == "queued"
    assert stored.tags == {"order": "42"}


def test_create_through_a_service_is_accepted_without_from(env):
    response = env.api.post(
        MESSAGES,
        {
            "to": CUSTOMER,
            "messaging_service_sid": env.service.sid,
            "body": "Your code is 1234",
            "media_urls": ["https://example.com/a.png"],
            "status_callback": "https://example.com/status",
            "validity_period": 600,
        },
    )

    assert response.status_code == 201, response.content
    data = response.json()
    assert data["sid"].startswith("MM")
    assert data["status"] == "accepted"
    assert data["from"] is None and data["sender_rule"] is None
    assert data["messaging_service_sid"] == env.service.sid
    assert data["num_media"] == 1
    assert data["validity_period"] == 600
    assert [m["url"] for m in data["media"]] == ["https://example.com/a.png"]
    assert data["media"][0]["sid"].startswith("ME")
    stored = Message.objects.get(sid=data["sid"])
    assert stored.sender is None and stored.service == env.service
    assert stored.status_callback == "https://example.com/status"
    assert list(stored.media.values_list("url", flat=True)) == ["https://example.com/a.png"]


def test_list_pages_newest_first_and_follows_next(env):
    sids = []
    for n in range(5):
        response = env.api.post(MESSAGES, {"to": CUSTOMER, "from": NUMBER, "body": f"n{n}"})
        assert response.status_code == 201
        sids.append(response.json()["sid"])

    pages, seen = [], []
    response = env.api.get(MESSAGES, {"page_size": 2})
    while True:
        assert response.status_code == 200, response.content
        page = response.json()
        pages.append(page)
        seen += [m["sid"] for m in page["results"]]
        if page["next"] is None:
            assert page["next_page_token"] is None
            break
        assert page["next"].startswith("http://testserver/api/v1/messages?")
        assert f"page_token={page['next_page_token']}" in page["next"]
        assert "page_size=2" in page["next"]
        response = env.api.client.get(page["next"], headers=env.api.headers)

    assert [len(p["results"]) for p in pages] == [2, 2, 1]
    assert seen == list(reversed(sids))
    assert pages[0]["results"][0]["body"] == "n4"
    assert pages[0]["results"][0]["history"][0]["status"] == "queued"

    # The token alone works too.
    second = env.api.get(MESSAGES, {"page_size": 2, "page_token": pages[0]["next_page_token"]})
    assert [m["sid"] for m in second.json()["results"]] == seen[2:4]


def test_list_costs_the_same_queries_for_any_page(env, django_assert_max_num_queries):
    for n in range(6):
        payload = {"to": CUSTOMER, "from": NUMBER, "body": f"n{n}"}
        if n % 2:
            payload["media_urls"] = [f"https://example.com/{n}.png", "https://example.com/b.png"]
        assert env.api.post(MESSAGES, payload).status_code == 201

    # Authenticate, the page, its history and its media: not one query per message.
    with django_assert_max_num_queries(5):
        response = env.api.get(MESSAGES, {"page_size": 50})
    results = response.json()["results"]
    assert len(results) == 6
    assert [m["num_media"] for m in results] == [2, 0, 2, 0, 2, 0]
    assert [m["url"] for m in results[0]["media"]] == [
        "https://example.com/5.png",
        "https://example.com/b.png",
    ]
    assert all(len(m["history"]) == 1 for m in results)


def test_list_filters(env):
    queued = env.api.post(MESSAGES, {"to": CUSTOMER, "from": NUMBER, "body": "a"}).json()
    accepted = env.api.post(
        MESSAGES, {"to": OTHER_CUSTOMER, "messaging_service_sid": env.service.sid, "body": "b"}
    ).json()
    sent_at = datetime(2026, 1, 10, 12, 0, tzinfo=UTC)
    Message.objects.filter(sid=queued["sid"]).update(date_sent=sent_at)

    def listed(**params) -> list[str]:
        response = env.api.get(MESSAGES, params)
        assert response.status_code == 200, response.content
        return [m["sid"] for m in response.json()["results"]]

    assert listed(to=OTHER_CUSTOMER) == [accepted["sid"]]
    assert listed(to="+1 415 555 0123") == [queued["sid"]]
    assert listed(**{"from": NUMBER}) == [queued["sid"]]
    assert listed(status="accepted") == [accepted["sid"]]
    assert listed(date_sent_after="2026-01-10T12:00:00Z") == [queued["sid"]]
    assert listed(date_sent_after="2026-01-10T12:00:01Z") == []
    assert listed(date_sent_before="2026-01-10T12:00:01") == [queued["sid"]]  # naive is UTC
    assert listed(date_sent_before="2026-01-10T12:00:00Z") == []


def test_fetch_a_message(env):
    created = env.api.post(MESSAGES, {"to": CUSTOMER, "from": NUMBER, "body": "Hi"}).json()

    response = env.api.get(f"{MESSAGES}/{created['sid']}")

    assert response.status_code == 200
    assert response.json() == created


def test_cancel_a_scheduled_message(env):
    send_at = (timezone.now() + timedelta(hours=1)).replace(microsecond=0)
    response = env.api.post(
        MESSAGES,
        {
            "to": CUSTOMER,
            "messaging_service_sid": env.service.sid,
            "body": "Later",
            "schedule_type": "fixed",
            "send_at": send_at.isoformat(),
        },
    )
    assert response.status_code == 201, response.content
    created = response.json()
    assert created["status"] == "scheduled"
    assert parse_time(created["send_at"]) == send_at

    response = env.api.post(f"{MESSAGES}/{created['sid']}/cancel")

    assert response.status_code == 200, response.content
    data = response.json()
    assert data["status"] == "canceled"
    assert [h["status"] for h in data["history"]] == ["scheduled", "canceled"]
    assert Message.objects.get(sid=created["sid"]).status == "canceled"
    # Canceling again is harmless.
    again = env.api.post(f"{MESSAGES}/{created['sid']}/cancel")
    assert again.status_code == 200 and again.json()["status"] == "canceled"


def test_cancel_refuses_a_queued_message(env):
    created = env.api.post(MESSAGES, {"to": CUSTOMER, "from": NUMBER, "body": "Now"}).json()

    response = env.api.post(f"{MESSAGES}/{created['sid']}/cancel")

    assert_error(response, 400, 20422, "status")
    assert Message.objects.get(sid=created["sid"]).status == "queued"


def test_schedule_too_soon_is_refused(env):
    response = env.api.post(
        MESSAGES,
        {
            "to": CUSTOMER,
            "messaging_service_sid": env.service.sid,
            "body": "Soon",
            "schedule_type": "fixed",
            "send_at": (timezone.now() + timedelta(seconds=60)).isoformat(),
        },
    )
    assert_error(response, 400, 35114, "send_at")
    assert not Message.objects.exists()


def test_redact_is_refused_while_queued_then_allowed_once_delivered(env):
    created = env.api.post(MESSAGES, {"to": CUSTOMER, "from": NUMBER, "body": "Secret"}).json()
    path = f"{MESSAGES}/{created['sid']}/redact"

    assert_error(env.api.post(path), 400, 20422, "body")
    assert Message.objects.get(sid=created["sid"]).body == "Secret"

    message = Message.objects.get(sid=created["sid"])
    assert message_status_apply(message_id=message.id, status="delivered", source="simulator")
    response = env.api.post(path)

    assert response.status_code == 200, response.content
    assert response.json()["body"] == "" and response.json()["redacted"] is True
    assert response.json()["status"] == "delivered"
    stored = Message.objects.get(sid=created["sid"])
    assert stored.body == "" and stored.redacted


@pytest.mark.parametrize(
    ("payload", "code", "field"),
    [
        ({"to": "+1 555", "from": NUMBER, "body": "x"}, 21211, "to"),
        ({"to": "not a number", "from": NUMBER, "body": "x"}, 21211, "to"),
        ({"from": NUMBER, "body": "x"}, 21604, "to"),
        ({"to": CUSTOMER, "from": NUMBER}, 21602, "body"),
        ({"to": CUSTOMER, "from": NUMBER, "body": ""}, 21602, "body"),
        ({"to": CUSTOMER, "from": "+14155550999", "body": "x"}, 21606, "from"),
        ({"to": CUSTOMER, "body": "x"}, 21603, "from"),
        ({"to": CUSTOMER, "messaging_service_sid": "MG" + "0" * 32, "body": "x"}, 21701, None),
        ({"to": CUSTOMER, "from": NUMBER, "body": "x" * 1601}, 21617, "body"),
        ({"to": CUSTOMER, "from": NUMBER, "body": "x", "media_urls": ["ftp://x/a"]}, 21620, None),
        ({"to": CUSTOMER, "from": NUMBER, "body": "x", "validity_period": 0}, 21624, None),
        ({"to": CUSTOMER, "from": NUMBER, "body": "x", "validity_period": "z"}, 21624, None),
        ({"to": CUSTOMER, "from": NUMBER, "body": "x", "status_callback": "nope"}, 21609, None),
        ({"to": CUSTOMER, "from": NUMBER, "content_variables": []}, 21656, None),
        ({"to": CUSTOMER, "from": NUMBER, "body": "x", "send_at": "tomorrow"}, 20422, None),
        ({"to": CUSTOMER, "from": NUMBER, "body": "x", "smart_encoded": "maybe"}, 20422, None),
        ({"to": CUSTOMER, "from": NUMBER, "body": "x", "tags": {"a": {"b": 1}}}, 20422, None),
        ({"to": CUSTOMER, "from": NUMBER, "body": "x", "colour": "red"}, 20422, None),
    ],
)
def test_create_refuses_bad_input_with_a_code_and_writes_nothing(env, payload, code, field):
    response = env.api.post(MESSAGES, payload)

    body = response.json()
    assert response.status_code in (400, 404), body
    assert body["code"] == code, body
    assert body["status"] == response.status_code
    if field is not None:
        assert body["field"] == field
    assert not Message.objects.exists()


def test_error_fields_are_snake_case(env):
    bad_service = env.api.post(
        MESSAGES, {"to": CUSTOMER, "messaging_service_sid": "MGnope", "body": "x"}
    )
    assert_error(bad_service, 404, 21701, "messaging_service_sid")
    unknown = env.api.post(MESSAGES, {"to": CUSTOMER, "from": NUMBER, "body": "x", "colour": 1})
    assert_error(unknown, 400, 20422, "colour")
    tags = env.api.post(MESSAGES, {"to": CUSTOMER, "from": NUMBER, "body": "x", "tags": []})
    assert_error(tags, 400, 20422, "tags")


def test_bad_json_and_wrong_content_type_are_client_errors(env):
    response = env.api.post(MESSAGES, raw='{"to": "+14155550123",')
    body = assert_error(response, 400, 20422, None)
    assert "JSON" in body["message"]

    as_list = env.api.post(MESSAGES, [CUSTOMER])
    assert_error(as_list, 400, 20422, None)

    too_deep = env.api.post(MESSAGES, raw="[" * 100_000)
    assert "nested too deeply" in assert_error(too_deep, 400, 20422, None)["message"]

    form = env.api.post(
        MESSAGES, raw="to=%2B14155550123&body=x", content_type="application/x-www-form-urlencoded"
    )
    assert_error(form, 415, 20415, None)
    assert not Message.objects.exists()


@pytest.mark.parametrize(
    "params",
    [{"page_size": 0}, {"page_size": 1001}, {"page_size": "x"}, {"page_token": "PIabc"}],
)
def test_list_refuses_bad_paging(env, params):
    response = env.api.get(MESSAGES, params)
    assert_error(response, 400, 20422, next(iter(params)))


def test_list_accepts_the_largest_page(env):
    response = env.api.get(MESSAGES, {"page_size": 1000, "page_token": "PI999999999999999999"})
    assert response.status_code == 200
    assert response.json() == {"results": [], "next_page_token": None, "next": None}


def test_bad_credentials_are_401_and_create_nothing(env):
    payload = {"to": CUSTOMER, "from": NUMBER, "body": "x"}
    for authorization in (
        basic(env.account.sid, "wrong"),
        basic(env.key.sid, "wrong"),
        basic("nobody", "x"),
        "Bearer abc",
        "Basic !!!",
    ):
        response = Api(authorization).post(MESSAGES, payload)
        assert_error(response, 401, 20003, None)
        assert response["WWW-Authenticate"] == 'Basic realm="contactcenter"'

    anonymous = Api().post(MESSAGES, payload)
    assert_error(anonymous, 401, 20003, None)
    assert anonymous["WWW-Authenticate"].startswith("Basic")
    assert not Message.objects.exists()


def test_a_revoked_api_key_is_refused(env):
    assert env.api.get(MESSAGES).status_code == 200
    api_key_revoke(key=env.key)

    assert_error(env.api.get(MESSAGES), 401, 20003, None)
    assert_error(env.api.post(MESSAGES, {"to": CUSTOMER, "from": NUMBER, "body": "x"}), 401, 20003)
    assert not Message.objects.exists()


def test_another_accounts_resources_are_not_found(env):
    other = other_account()
    other_provider = ProviderAccount.objects.create(
        account=other, name="other-simulator", kind="simulator"
    )
    other_service = service_create(account=other, friendly_name="Theirs")
    other_sender = sender_create(
        account=other,
        kind="long_code",
        address="+14155550177",
        provider_sid=other_provider.sid,
        messaging_service_sid=other_service.sid,
    )
    theirs = message_create(
        account=other, request=MessageRequest(to=CUSTOMER, from_="+14155550177", body="theirs")
    )

    for path in (
        f"{MESSAGES}/{theirs.sid}",
        f"{SENDERS}/{other_sender.sid}",
        f"{SERVICES}/{other_service.sid}",
    ):
        assert_error(env.api.get(path), 404, 20404, None)
    assert_error(env.api.post(f"{MESSAGES}/{theirs.sid}/cancel"), 404, 20404, None)
    assert_error(env.api.post(f"{MESSAGES}/{theirs.sid}/redact"), 404, 20404, None)
    assert_error(env.api.patch(f"{SENDERS}/{other_sender.sid}", {"active": False}), 404, 20404)
    assert_error(env.api.patch(f"{SERVICES}/{other_service.sid}", {"usecase": "poll"}), 404, 20404)
    add = env.api.post(f"{SERVICES}/{env.service.sid}/senders", {"sender_sid": other_sender.sid})
    assert_error(add, 404, 20404, "sender_sid")
    # Their sender cannot be used as From either, and lists only show ours.
    use = env.api.post(MESSAGES, {"to": CUSTOMER, "from": "+14155550177", "body": "x"})
    assert_error(use, 400, 21606, "from")
    assert [m["sid"] for m in env.api.get(MESSAGES).json()["results"]] == []
    assert [s["sid"] for s in env.api.get(SENDERS).json()["results"]] == [env.sender.sid]
    assert [s["sid"] for s in env.api.get(SERVICES).json()["results"]] == [env.service.sid]
    assert Sender.objects.get(sid=other_sender.sid).active
    assert Message.objects.get(sid=theirs.sid).body == "theirs"


def test_an_unknown_sid_is_not_found(env):
    assert_error(env.api.get(f"{MESSAGES}/SM{'0' * 32}"), 404, 20404, None)
    assert_error(env.api.get(f"{SENDERS}/nope"), 404, 20404, None)


def test_wrong_method_is_405(env):
    response = env.api.delete(MESSAGES)
    assert_error(response, 405, 20004, None)


# ---------------------------------------------------------------- sessions


def test_an_admin_session_works_for_the_default_account(env, admin_user, client_for):
    api = Api(client=client_for(admin_user))

    listed = api.get(SENDERS)
    assert listed.status_code == 200, listed.content
    assert [s["sid"] for s in listed.json()["results"]] == [env.sender.sid]

    created = api.post(MESSAGES, {"to": CUSTOMER, "from": NUMBER, "body": "From the admin"})
    assert created.status_code == 201, created.content
    assert created.json()["account_sid"] == env.account.sid
    assert Message.objects.get(sid=created.json()["sid"]).account == env.account


@pytest.mark.parametrize("member", ["agent1", "supervisor", "outsider"])
def test_a_session_without_the_admin_role_is_refused(env, request, client_for, member):
    user = request.getfixturevalue(member)
    api = Api(client=client_for(user))

    assert_error(api.get(SENDERS), 403, 20403, None)
    refused = api.post(MESSAGES, {"to": CUSTOMER, "from": NUMBER, "body": "x"})
    assert_error(refused, 403, 20403, None)
    assert not Message.objects.exists()


def test_an_admin_session_needs_the_csrf_token_to_write(env, admin_user):
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin_user)
    api = Api(client=client)

    assert api.get(SENDERS).status_code == 200
    refused = api.post(MESSAGES, {"to": CUSTOMER, "from": NUMBER, "body": "x"})
    body = assert_error(refused, 403, 20403, None)
    assert "CSRF" in body["message"]
    assert not Message.objects.exists()


# ---------------------------------------------------------------- senders


def test_create_a_sender_normalises_and_validates(env):
    response = env.api.post(
        SENDERS,
        {
            "kind": "long_code",
            "address": "+1 (415) 555-0142",
            "friendly_name": "Support line",
            "provider": env.provider.sid,
            "inbound_request_url": "https://example.com/in",
        },
    )

    assert response.status_code == 201, response.content
    data = response.json()
    assert data["sid"].startswith("PN")
    assert data["address"] == "+14155550142"
    assert data["channel"] == "sms"
    assert data["country"] == "US"
    assert data["throughput"] is None and data["segments_per_second"] == 1.0
    assert data["provider"] == env.provider.sid
    assert data["messaging_service_sid"] is None
    assert data["inbound_method"] == "POST" and data["active"] is True
    stored = Sender.objects.get(sid=data["sid"])
    assert stored.account == env.account and stored.address == "+14155550142"
    assert stored.inbound_request_url == "https://example.com/in"

    whatsapp = env.api.post(
        SENDERS,
        {
            "kind": "whatsapp",
            "address": "+14155550142",  # same number, other channel: allowed
            "provider": env.provider.sid,
            "messaging_service_sid": env.service.sid,
            "throughput": 20,
        },
    )
    assert whatsapp.status_code == 201, whatsapp.content
    assert whatsapp.json()["address"] == "whatsapp:+14155550142"
    assert whatsapp.json()["channel"] == "whatsapp"
    assert whatsapp.json()["sms_capable"] is False
    assert whatsapp.json()["throughput"] == 20.0
    assert whatsapp.json()["messaging_service_sid"] == env.service.sid

    listed = env.api.get(SENDERS).json()["results"]
    assert [s["address"] for s in listed] == [NUMBER, "+14155550142", "whatsapp:+14155550142"]


@pytest.mark.parametrize(
    ("payload", "field", "text"),
    [
        ({"kind": "long_code", "address": "+1 555"}, "address", None),
        ({"kind": "long_code", "address": "4155550142"}, "address", None),
        ({"kind": "alphanumeric", "address": "TWELVECHARSX"}, "address", "11 characters"),
        ({"kind": "alphanumeric", "address": "ACME", "mms_capable": True}, "mms_capable", None),
        ({"kind": "short_code", "address": "12"}, "address", "3 to 8 digits"),
        ({"kind": "long_code", "address": NUMBER}, "address", "already exists"),
        ({"kind": "long_code", "address": "+1 415 555 0100"}, "address", "already exists"),
        ({"kind": "carrier_pigeon", "address": "x"}, "kind", None),
        ({"kind": "long_code", "address": "+14155550142", "country": "ZZ"}, "country", None),
        ({"kind": "long_code", "address": "+14155550142", "throughput": 0}, "throughput", None),
        ({"kind": "long_code", "address": "+14155550142", "throughput": 1.234}, "throughput", None),
        (
            {"kind": "long_code", "address": "+14155550142", "fallback_url": "ftp://x"},
            "fallback_url",
            None,
        ),
        (
            {"kind": "long_code", "address": "+14155550142", "inbound_method": "PUT"},
            "inbound_method",
            None,
        ),
        (
            {"kind": "long_code", "address": "+14155550142", "provider": "PAnope"},
            "provider",
            "not found",
        ),
        (
            {"kind": "long_code", "address": "+14155550142", "messaging_service_sid": "MGnope"},
            "messaging_service_sid",
            "not found",
        ),
        ({"kind": "long_code", "address": "+14155550142", "channel": "sms"}, "channel", None),
    ],
)
def test_create_a_sender_refuses_bad_input(env, payload, field, text):
    payload = {"provider": env.provider.sid, **payload}

    response = env.api.post(SENDERS, payload)

    body = assert_error(response, 400, 20422, field)
    if text:
        assert text in body["message"]
    assert list(Sender.objects.values_list("sid", flat=True)) == [env.sender.sid]


def test_a_duplicate_that_slips_past_the_checks_is_still_a_clear_error(env, monkeypatch):
    # Two writers can both pass the checks; the unique index then decides, and the loser
    # gets the same answer as a plain duplicate.
    from messaging.services import config

    monkeypatch.setattr(config, "_refuse_duplicate_address", lambda sender: None)
    monkeypatch.setattr(Sender, "validate_constraints", lambda self, exclude=None: None)

    response = env.api.post(
        SENDERS, {"kind": "long_code", "address": NUMBER, "provider": env.provider.sid}
    )

    body = assert_error(response, 400, 20422, "address")
    assert "already exists" in body["message"]
    assert list(Sender.objects.values_list("sid", flat=True)) == [env.sender.sid]


def test_a_sender_cannot_join_another_accounts_service(env):
    other_service = service_create(account=other_account(), friendly_name="Theirs")
    response = env.api.post(
        SENDERS,
        {
            "kind": "long_code",
            "address": "+14155550142",
            "provider": env.provider.sid,
            "messaging_service_sid": other_service.sid,
        },
    )
    assert_error(response, 400, 20422, "messaging_service_sid")
    assert Sender.objects.count() == 1


def test_patch_a_sender(env):
    path = f"{SENDERS}/{env.sender.sid}"

    response = env.api.patch(
        path, {"friendly_name": "Main", "throughput": 2.5, "messaging_service_sid": None}
    )

    assert response.status_code == 200, response.content
    data = response.json()
    assert data["friendly_name"] == "Main"
    assert data["throughput"] == 2.5 and data["segments_per_second"] == 2.5
    assert data["messaging_service_sid"] is None
    assert data["address"] == NUMBER and data["mms_capable"] is True  # untouched
    stored = Sender.objects.get(sid=env.sender.sid)
    assert stored.friendly_name == "Main" and stored.service is None
    assert str(stored.throughput) == "2.50"

    back = env.api.patch(path, {"messaging_service_sid": env.service.sid, "throughput": None})
    assert back.json()["messaging_service_sid"] == env.service.sid
    assert back.json()["throughput"] is None and back.json()["segments_per_second"] == 1.0
    assert env.api.get(path).json() == back.json()


def test_patch_a_sender_revalidates_and_writes_nothing_on_error(env):
    path = f"{SENDERS}/{env.sender.sid}"
    other = sender_create(
        account=env.account, kind="long_code", address="+14155550142", provider_sid=env.provider.sid
    )

    assert_error(env.api.patch(path, {"address": "+1 555"}), 400, 20422, "address")
    duplicate = env.api.patch(f"{SENDERS}/{other.sid}", {"address": NUMBER, "active": False})
    body = assert_error(duplicate, 400, 20422, "address")
    assert "already exists" in body["message"]
    # Changing the kind re-checks the address against the new kind.
    assert_error(env.api.patch(path, {"kind": "short_code"}), 400, 20422, "address")
    # The sender is MMS capable; an alphanumeric id cannot be.
    alpha = env.api.patch(path, {"kind": "alphanumeric", "address": "ACME"})
    assert_error(alpha, 400, 20422, "mms_capable")

    assert Sender.objects.get(pk=other.pk).active is True
    stored = Sender.objects.get(pk=env.sender.pk)
    assert (stored.kind, stored.address, stored.mms_capable) == ("long_code", NUMBER, True)

    # Re-typing the same address in another format is not a duplicate of itself.
    same = env.api.patch(path, {"address": "+1 415-555-0100"})
    assert same.status_code == 200 and same.json()["address"] == NUMBER


def test_an_empty_patch_changes_nothing(env):
    before = Sender.objects.get(pk=env.sender.pk).date_updated
    response = env.api.patch(f"{SENDERS}/{env.sender.sid}", {})
    assert response.status_code == 200
    assert Sender.objects.get(pk=env.sender.pk).date_updated == before


# ---------------------------------------------------------------- messaging services


def test_create_and_patch_a_service(env):
    response = env.api.post(
        SERVICES,
        {
            "friendly_name": "Marketing",
            "usecase": "marketing",
            "sticky_sender": False,
            "validity_period": 600,
            "status_callback": "https://example.com/status",
        },
    )

    assert response.status_code == 201, response.content
    data = response.json()
    assert data["sid"].startswith("MG")
    assert data["account_sid"] == env.account.sid
    assert (data["friendly_name"], data["usecase"]) == ("Marketing", "marketing")
    assert data["sticky_sender"] is False and data["smart_encoding"] is True
    assert data["validity_period"] == 600
    assert data["senders"] == []
    stored = MessagingService.objects.get(sid=data["sid"])
    assert stored.account == env.account and stored.status_callback == "https://example.com/status"

    patched = env.api.patch(
        f"{SERVICES}/{data['sid']}", {"fallback_method": "GET", "area_code_geomatch": False}
    )
    assert patched.status_code == 200, patched.content
    assert patched.json()["fallback_method"] == "GET"
    assert patched.json()["area_code_geomatch"] is False
    assert patched.json()["friendly_name"] == "Marketing"
    stored.refresh_from_db()
    assert stored.fallback_method == "GET" and not stored.area_code_geomatch

    listed = env.api.get(SERVICES).json()["results"]
    assert [(s["sid"], s["senders"]) for s in listed] == [
        (env.service.sid, [env.sender.sid]),
        (data["sid"], []),
    ]


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({}, "friendly_name"),
        ({"friendly_name": ""}, "friendly_name"),
        ({"friendly_name": "x" * 65}, "friendly_name"),
        ({"friendly_name": "S", "validity_period": 0}, "validity_period"),
        ({"friendly_name": "S", "validity_period": 36001}, "validity_period"),
        (
            {"friendly_name": "S", "inbound_request_url": "javascript:alert(1)"},
            "inbound_request_url",
        ),
        ({"friendly_name": "S", "usecase": "spam"}, "usecase"),
        ({"friendly_name": "S", "senders": []}, "senders"),
    ],
)
def test_create_a_service_refuses_bad_input(env, payload, field):
    response = env.api.post(SERVICES, payload)
    assert_error(response, 400, 20422, field)
    assert MessagingService.objects.count() == 1


def test_patch_a_service_refuses_bad_input(env):
    path = f"{SERVICES}/{env.service.sid}"
    assert_error(env.api.patch(path, {"validity_period": -5}), 400, 20422, "validity_period")
    assert_error(env.api.patch(path, {"status_callback": "nope"}), 400, 20422, "status_callback")
    env.service.refresh_from_db()
    assert env.service.validity_period == 36000 and env.service.status_callback == ""


def test_add_and_remove_pool_senders(env):
    spare = sender_create(
        account=env.account, kind="toll_free", address="+18885550100", provider_sid=env.provider.sid
    )
    StickySender.objects.create(
        service=env.service,
        contact_address=CUSTOMER,
        sender=env.sender,
        last_used_at=timezone.now(),
    )
    pool = f"{SERVICES}/{env.service.sid}/senders"

    added = env.api.post(pool, {"sender_sid": spare.sid})
    assert added.status_code == 200, added.content
    assert added.json()["senders"] == [env.sender.sid, spare.sid]
    assert Sender.objects.get(pk=spare.pk).service == env.service
    again = env.api.post(pool, {"sender_sid": spare.sid})  # idempotent
    assert again.status_code == 200 and again.json()["senders"] == [env.sender.sid, spare.sid]

    removed = env.api.delete(f"{pool}/{env.sender.sid}")
    assert removed.status_code == 204 and removed.content == b""
    assert Sender.objects.get(pk=env.sender.pk).service is None
    assert not StickySender.objects.filter(sender=env.sender).exists()
    assert env.api.get(f"{SERVICES}/{env.service.sid}").json()["senders"] == [spare.sid]
    assert env.api.get(f"{SENDERS}/{env.sender.sid}").status_code == 200  # still a sender

    assert_error(env.api.delete(f"{pool}/{env.sender.sid}"), 404, 20404, "sender_sid")
    assert_error(env.api.post(pool, {"sender_sid": "PNnope"}), 404, 20404, "sender_sid")
    assert_error(env.api.post(pool, {}), 400, 20422, "sender_sid")


def test_a_sender_in_another_pool_is_not_moved_silently(env):
    second = service_create(account=env.account, friendly_name="Second")
    response = env.api.post(f"{SERVICES}/{second.sid}/senders", {"sender_sid": env.sender.sid})

    body = assert_error(response, 400, 20422, "sender_sid")
    assert env.service.sid in body["message"]
    assert Sender.objects.get(pk=env.sender.pk).service == env.service


# ---------------------------------------------------------------- schema and docs


def test_the_schema_generates_without_warnings(tmp_path):
    target = tmp_path / "schema.yaml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(target))
    text = target.read_text()
    for operation in (
        "messages_create",
        "messages_list",
        "messages_retrieve",
        "messages_cancel",
        "messages_redact",
        "senders_list",
        "senders_create",
        "senders_retrieve",
        "senders_update",
        "services_list",
        "services_create",
        "services_retrieve",
        "services_update",
        "services_senders_add",
        "services_senders_remove",
    ):
        assert f"operationId: {operation}\n" in text


def test_the_schema_and_docs_are_served(db):
    client = Client()
    schema = client.get("/api/schema/", {"format": "json"})
    assert schema.status_code == 200
    document = json.loads(schema.content)
    assert {
        "/api/v1/messages",
        "/api/v1/messages/{sid}",
        "/api/v1/messages/{sid}/cancel",
        "/api/v1/messages/{sid}/redact",
        "/api/v1/senders",
        "/api/v1/senders/{sid}",
        "/api/v1/services",
        "/api/v1/services/{sid}",
        "/api/v1/services/{sid}/senders",
        "/api/v1/services/{sid}/senders/{sender_sid}",
    } <= set(document["paths"])
    messages = document["paths"]["/api/v1/messages"]
    assert set(messages) >= {"get", "post"}
    assert messages["post"]["tags"] == ["messages"]
    assert {"basicAuth", "cookieAuth"} <= set(document["components"]["securitySchemes"])
    output = document["components"]["schemas"]["MessageOutput"]["properties"]
    assert {"from", "num_segments", "history", "media"} <= set(output)

    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    html = docs.content.decode()
    assert "swagger" in html.lower()
    assert "/api/schema/" in html


def test_nul_characters_are_client_errors(env):
    # PostgreSQL cannot store NUL: refused at the edge, never a 500.
    assert_error(env.api.get(f"{MESSAGES}/SM%00"), 404, 20404, None)
    assert_error(env.api.get(f"{SENDERS}/PN%00x"), 404, 20404, None)
    assert_error(env.api.get(MESSAGES, {"to": "+1\x00"}), 400, 20422, "to")
    bad_tags = env.api.post(
        MESSAGES, {"to": CUSTOMER, "from": NUMBER, "body": "x", "tags": {"\x00": "v"}}
    )
    assert_error(bad_tags, 400, 20422, "tags")
    bad_body = env.api.post(MESSAGES, {"to": CUSTOMER, "from": NUMBER, "body": "a\x00"})
    assert_error(bad_body, 400, 20422, "body")
    assert not Message.objects.exists()
