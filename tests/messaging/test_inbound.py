"""Inbound messages through the simulator webhook: signature first, then exactly-once storage
on the contact's conversation, then the product's handlers after commit."""

import json
import threading

import pytest
from django.db import connection
from django.test import Client

from messaging import crypto, hooks
from messaging.models import (
    Contact,
    Conversation,
    Media,
    Message,
    MessagingService,
    ProviderAccount,
    Sender,
)
from messaging.providers.simulator import SIGNATURE_HEADER, inbound_payload, signature
from messaging.services.inbound import inbound_message_receive
from messaging.services.messages import MessageRequest, message_create
from messaging.services.providers import (
    provider_credentials,
    provider_credentials_set,
    provider_webhook_secret,
)
from messaging.webhooks import simulator_inbound_handle
from tests.messaging.conftest import WEBHOOK_SECRET

SECRET = WEBHOOK_SECRET
CUSTOMER = "+14155550142"
LONG_CODE = "+14155550100"


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
def handler_calls(monkeypatch):
    """A registered inbound handler that records the message ids it is given."""
    calls: list[int] = []
    monkeypatch.setattr(hooks, "_inbound_handlers", [])
    hooks.register_inbound_handler(calls.append)
    return calls


def webhook_url(provider) -> str:
    return f"/webhooks/simulator/{provider.sid}/inbound"


def post(client, provider, body: bytes, sig: str | None = None):
    headers = {} if sig is None else {SIGNATURE_HEADER: sig}
    return client.post(
        webhook_url(provider), data=body, content_type="application/json", headers=headers
    )


def signed_post(client, provider, body: bytes, secret: str = SECRET):
    return post(client, provider, body, signature(secret, body))


def payload(**fields) -> bytes:
    base = {"id": "SS1", "from": CUSTOMER, "to": LONG_CODE, "body": "Hello there"}
    return json.dumps({**base, **fields}).encode()


def nothing_stored() -> bool:
    return not any(model.objects.exists() for model in (Message, Contact, Conversation))


# ---------------------------------------------------------------- signature


@pytest.mark.parametrize("sig", [None, "", "0" * 64, "not-hex"])
def test_a_bad_or_missing_signature_is_refused_and_nothing_is_stored(client, sender, sig):
    response = post(client, sender.provider, payload(), sig)
    assert response.status_code == 403
    assert response.json()["code"] == 20403
    assert "signature" in response.json()["message"]
    assert nothing_stored()


def test_a_body_signed_with_another_secret_is_refused(client, sender):
    response = signed_post(client, sender.provider, payload(), secret="someone-else")
    assert response.status_code == 403
    assert nothing_stored()


def test_the_signature_is_checked_before_the_body_is_parsed(client, sender):
    # Unsigned garbage gets 403, not a parse error: nothing about it is looked at.
    response = post(client, sender.provider, b"{not json", "x")
    assert response.status_code == 403


def test_a_provider_without_a_secret_accepts_nothing(client, sender):
    provider_credentials_set(sender.provider, {})
    response = signed_post(client, sender.provider, payload(), secret="")
    assert response.status_code == 403
    assert nothing_stored()


def test_providers_need_no_csrf_token(sender):
    body = payload()
    response = Client(enforce_csrf_checks=True).post(
        webhook_url(sender.provider),
        data=body,
        content_type="application/json",
        headers={SIGNATURE_HEADER: signature(SECRET, body)},
    )
    assert response.status_code == 200


def test_an_unknown_provider_is_404_and_get_is_405(client, sender):
    response = client.post(
        "/webhooks/simulator/PA00000000000000000000000000000000/inbound",
        data=payload(),
        content_type="application/json",
    )
    assert response.status_code == 404
    assert response.json()["code"] == 20404
    response = client.get(webhook_url(sender.provider))
    assert response.status_code == 405
    assert response["Allow"] == "POST"


# ---------------------------------------------------------------- storage


def test_a_signed_message_is_stored_on_its_contact_and_conversation(client, sender):
    body = inbound_payload(
        from_address="+1 (415) 555-0142", to_address=LONG_CODE, body="Olá, ¿qué tal?", name="Eva"
    )
    response = signed_post(client, sender.provider, body)

    assert response.status_code == 200
    message = Message.objects.get()
    assert response.json() == {"sid": message.sid}
    assert message.sid.startswith("SM")
    assert message.direction == "inbound"
    assert message.status == "received"
    assert message.from_address == CUSTOMER  # canonical E.164
    assert message.to_address == LONG_CODE
    assert message.body == "Olá, ¿qué tal?"
    assert message.channel == "sms"
    assert message.sender == sender
    assert message.service == sender.service
    assert message.provider_message_id == json.loads(body)["id"]
    assert message.encoding == "UCS-2"  # "¿" is GSM, "á" is not
    assert message.num_segments == 1
    assert message.num_media == 0
    assert message.date_sent is not None
    assert list(message.history.values_list("status", "source")) == [("received", "provider")]

    contact = message.contact
    assert (contact.address, contact.channel, contact.name) == (CUSTOMER, "sms", "Eva")
    assert (contact.country, contact.area_code) == ("US", "415")
    conversation = message.conversation
    assert conversation.contact == contact
    assert conversation.business_address == LONG_CODE
    assert conversation.state == "open"
    assert conversation.service == sender.service
    assert conversation.last_inbound_at is not None
    assert conversation.last_message_at == conversation.last_inbound_at


def test_the_same_provider_id_twice_stores_one_message(client, sender, handler_calls):
    body = payload(id="SSretry")
    first = signed_post(client, sender.provider, body)
    second = signed_post(client, sender.provider, body)
    assert first.status_code == second.status_code == 200
    assert first.json() == second.json()
    assert Message.objects.count() == 1
    assert Conversation.objects.count() == 1


def test_a_second_message_joins_the_open_conversation(client, sender):
    signed_post(client, sender.provider, payload(id="SSa", body="one"))
    signed_post(client, sender.provider, payload(id="SSb", body="two"))
    assert Message.objects.count() == 2
    assert Conversation.objects.count() == 1
    assert set(Message.objects.values_list("conversation", flat=True)) == {
        Conversation.objects.get().id
    }


def test_a_reply_joins_the_conversation_the_business_started(client, sender, account):
    outbound = message_create(
        account=account, request=MessageRequest(to=CUSTOMER, from_=LONG_CODE, body="Hi")
    )
    signed_post(client, sender.provider, payload(id="SSreply", body="Hi back"))
    inbound = Message.objects.get(direction="inbound")
    assert inbound.conversation_id == outbound.conversation_id
    assert inbound.contact_id == outbound.contact_id


def test_media_is_stored_with_its_content_type(client, sender):
    media = [
        {"url": "https://example.com/a.jpg", "content_type": "image/jpeg"},
        {"url": "https://example.com/b.pdf"},
    ]
    response = signed_post(client, sender.provider, payload(media=media, body=""))
    assert response.status_code == 200
    message = Message.objects.get()
    assert message.sid.startswith("MM")
    assert message.num_media == 2
    assert message.num_segments == 1
    assert sorted(Media.objects.values_list("url", "content_type")) == [
        ("https://example.com/a.jpg", "image/jpeg"),
        ("https://example.com/b.pdf", ""),
    ]


def test_a_profile_name_fills_an_empty_contact_name_but_never_replaces_one(client, sender):
    signed_post(client, sender.provider, payload(id="SS1", profile_name=""))
    assert Contact.objects.get().name == ""
    signed_post(client, sender.provider, payload(id="SS2", profile_name="Eva"))
    assert Contact.objects.get().name == "Eva"
    signed_post(client, sender.provider, payload(id="SS3", profile_name="Somebody else"))
    assert Contact.objects.get().name == "Eva"


# ---------------------------------------------------------------- bad input


def test_malformed_json_is_400_with_the_reason_and_stores_nothing(client, sender):
    response = signed_post(client, sender.provider, b'{"id": "SS1", "from": ')
    assert response.status_code == 400
    assert response.json()["code"] == 20422
    assert "not valid JSON" in response.json()["message"]
    assert nothing_stored()


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"[1, 2]", 20422),
        (b'"text"', 20422),
        (payload(id=""), 20422),
        (payload(id=12), 20422),
        (payload(id="x" * 129), 20422),
        (payload(**{"from": "not a number"}), 21211),
        (payload(**{"from": "whatsapp:+14155550142"}), 21211),
        (payload(to=None), 20422),
        (payload(body=["x"]), 20422),
        (payload(media=[{"url": "ftp://example.com/a"}]), 21620),
        (payload(media="https://example.com/a"), 20422),
        (b"\xff\xfe", 20422),
    ],
)
def test_bad_fields_are_400_with_a_code(client, sender, body, code):
    response = signed_post(client, sender.provider, body)
    assert response.status_code == 400
    assert response.json()["code"] == code
    assert response.json()["message"]
    assert nothing_stored()


def test_an_unknown_sender_is_400_21606(client, sender):
    response = signed_post(client, sender.provider, payload(to="+14155550111"))
    assert response.status_code == 400
    assert response.json()["code"] == 21606
    assert nothing_stored()


def test_a_sender_of_another_provider_is_unknown_here(client, sender, account):
    other = ProviderAccount.objects.create(account=account, name="Other", kind="simulator")
    provider_credentials_set(other, {"webhook_secret": SECRET})
    response = signed_post(client, other, payload())
    assert response.status_code == 400
    assert response.json()["code"] == 21606


def test_an_inactive_sender_receives_nothing(client, sender):
    Sender.objects.filter(id=sender.id).update(active=False)
    response = signed_post(client, sender.provider, payload())
    assert response.json()["code"] == 21606


# ---------------------------------------------------------------- hooks


def test_the_inbound_handler_runs_after_commit_with_the_message_id(
    client, sender, handler_calls, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        signed_post(client, sender.provider, payload(id="SShook"))
    # Nothing ran inside the transaction; the handler waits for the commit.
    assert handler_calls == []
    assert len(callbacks) == 1
    callbacks[0]()
    assert handler_calls == [Message.objects.get().id]


def test_a_retry_does_not_call_the_handler_again(
    client, sender, handler_calls, django_capture_on_commit_callbacks
):
    body = payload(id="SSonce")
    with django_capture_on_commit_callbacks(execute=True):
        signed_post(client, sender.provider, body)
    with django_capture_on_commit_callbacks(execute=True):
        signed_post(client, sender.provider, body)
    assert handler_calls == [Message.objects.get().id]


def test_every_registered_handler_runs(
    client, sender, monkeypatch, django_capture_on_commit_callbacks
):
    seen: list[tuple[str, int]] = []
    monkeypatch.setattr(hooks, "_inbound_handlers", [])
    hooks.register_inbound_handler(lambda mid: seen.append(("a", mid)))
    hooks.register_inbound_handler(lambda mid: seen.append(("b", mid)))
    with django_capture_on_commit_callbacks(execute=True):
        signed_post(client, sender.provider, payload())
    message_id = Message.objects.get().id
    assert seen == [("a", message_id), ("b", message_id)]


# ---------------------------------------------------------------- credentials


def test_credentials_are_encrypted_at_rest(provider):
    provider.refresh_from_db()
    assert SECRET not in provider.credentials_encrypted
    assert json.loads(crypto.decrypt(provider.credentials_encrypted)) == {"webhook_secret": SECRET}
    assert provider_credentials(provider) == {"webhook_secret": SECRET}


def test_the_secret_can_come_from_the_environment(client, sender, monkeypatch):
    provider = sender.provider
    provider_credentials_set(provider, {})
    provider.credentials_env_prefix = "SIMTEST"
    provider.save()
    monkeypatch.setenv("SIMTEST_WEBHOOK_SECRET", "from-env")
    assert provider_webhook_secret(provider) == "from-env"
    assert signed_post(client, provider, payload(), secret="from-env").status_code == 200


def test_a_stored_secret_wins_over_the_environment(provider, monkeypatch):
    provider.credentials_env_prefix = "SIMTEST"
    monkeypatch.setenv("SIMTEST_WEBHOOK_SECRET", "from-env")
    monkeypatch.setenv("SIMTEST_OTHER", "x")
    assert provider_credentials(provider) == {"webhook_secret": SECRET, "other": "x"}


def test_an_unreadable_secret_refuses_everything(client, sender):
    ProviderAccount.objects.filter(id=sender.provider_id).update(
        credentials_encrypted="gAAAAAbogus"
    )
    sender.provider.refresh_from_db()
    assert provider_webhook_secret(sender.provider) == ""
    assert signed_post(client, sender.provider, payload()).status_code == 403


def test_the_handler_function_is_the_same_without_http(sender):
    body = payload(id="SSdirect")
    outcome = simulator_inbound_handle(
        provider_sid=sender.provider.sid, body=body, signature=signature(SECRET, body)
    )
    assert outcome.status == 200
    assert outcome.created
    assert outcome.body == {"sid": Message.objects.get().sid}


# ---------------------------------------------------------------- concurrency


@pytest.mark.django_db(transaction=True)
def test_concurrent_retries_store_one_message(provider, sender):
    """Several workers receive the same webhook at once: exactly one message is created."""
    workers = 6
    barrier = threading.Barrier(workers)
    results: list[tuple[str, bool]] = []
    errors: list[BaseException] = []

    def receive():
        try:
            barrier.wait()
            message, created = inbound_message_receive(
                provider=provider,
                provider_message_id="SSrace",
                from_address=CUSTOMER,
                to_address=LONG_CODE,
                body="race",
            )
            results.append((message.sid, created))
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=receive) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert Message.objects.count() == 1
    assert Contact.objects.count() == 1
    assert Conversation.objects.count() == 1
    assert sorted(created for _sid, created in results) == [False] * (workers - 1) + [True]
    assert {sid for sid, _created in results} == {Message.objects.get().sid}


@pytest.mark.parametrize("field", ["body", "profile_name", "id", "from"])
def test_nul_characters_are_a_clear_error_not_a_crash(client, sender, field):
    # PostgreSQL cannot store U+0000: it must be refused as input, never reach the database.
    value = {"body": "a\x00b", "profile_name": "Ev\x00a", "id": "SS\x001", "from": "+1415\x00"}
    response = signed_post(client, sender.provider, payload(**{field: value[field]}))
    assert response.status_code == 400
    assert response.json()["code"] in (20422, 21211)
    assert nothing_stored()
