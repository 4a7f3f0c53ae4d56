"""The Messenger Platform adapter against a local server speaking the Graph Send API's wire
format: exact request bodies, paths, access tokens, error mapping, webhook parsing and
signatures, media downloads with a size cap."""

import json
import socket
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest

from messaging.models import Message, ProviderAccount, Sender
from messaging.providers import (
    InboundMedia,
    InboundMessage,
    ListPicker,
    ListRow,
    OutboundContent,
    ProviderError,
    QuickReply,
    StatusUpdate,
    WebhookPayloadError,
    WebhookRequest,
    adapter_for,
    messenger,
)
from messaging.providers.meta import body_signature
from messaging.services.providers import provider_credentials_set
from tests.support.http import FakeApi, json_answer

APP_SECRET = "messenger-app-secret"
VERIFY_TOKEN = "verify-me"
PAGE = "100200300"
PSID = "5550001"
SEND_PATH = "/v23.0/me/messages"


@pytest.fixture(scope="module")
def shared_api():
    server = FakeApi()  # one server for the module: each close waits out a 0.5 s poll
    yield server
    server.close()


@pytest.fixture
def api(shared_api):
    shared_api.routes.clear()
    shared_api.received.clear()
    return shared_api


@pytest.fixture
def messenger_provider(account, api):
    provider = ProviderAccount.objects.create(
        account=account,
        name="Messenger",
        kind="messenger",
        settings={"graph_base_url": api.url, "api_version": "v23.0", "timeout_seconds": 2},
    )
    provider_credentials_set(
        provider,
        {"page_access_token": "PAGE-TOKEN", "app_secret": APP_SECRET, "verify_token": VERIFY_TOKEN},
    )
    return provider


def make_sender(provider, page: str = PAGE) -> Sender:
    sender = Sender(
        account=provider.account, provider=provider, kind="messenger_page", address=page
    )
    sender.full_clean()
    sender.save()
    return sender


@pytest.fixture
def sender(messenger_provider):
    return make_sender(messenger_provider)


def outbound(sender: Sender, to: str = f"messenger:{PSID}") -> Message:
    return Message(
        sid="SM" + "a" * 32,
        sender=sender,
        channel="messenger",
        direction="outbound-api",
        from_address=sender.address,
        to_address=to,
        status="sending",
        num_segments=1,
    )


def send(provider, sender, content: OutboundContent):
    return adapter_for(provider).send(
        outbound(sender), content=content, idempotency_key="SM" + "a" * 32
    )


def answers(api: FakeApi, *message_ids: str) -> None:
    """The Send API answering each call with the next message id."""
    ids = iter(message_ids)

    def respond(_request):
        body = {"recipient_id": PSID, "message_id": next(ids)}
        return 200, {"Content-Type": "application/json"}, json.dumps(body).encode()

    api.route("POST", SEND_PATH, respond)


def bodies(api: FakeApi) -> list[dict]:
    return [json.loads(request.body) for request in api.received]


def query(request) -> dict[str, list[str]]:
    return parse_qs(urlsplit(request.path).query)


# ---------------------------------------------------------------- sending


def test_registered_for_messenger_and_not_idempotent(messenger_provider):
    adapter = adapter_for(messenger_provider)
    assert isinstance(adapter, messenger.MessengerAdapter)
    assert adapter.idempotent is False


def test_text_is_one_call_with_the_page_token_in_the_query(api, messenger_provider, sender):
    answers(api, "m_text_1")

    result = send(messenger_provider, sender, OutboundContent(text="Hola, ¿en qué ayudo?"))

    assert result.provider_message_id == "m_text_1"
    [request] = api.received
    assert request.method == "POST"
    assert urlsplit(request.path).path == SEND_PATH
    assert query(request) == {"access_token": ["PAGE-TOKEN"]}
    assert request.headers["Content-Type"] == "application/json"
    assert "Authorization" not in request.headers
    assert json.loads(request.body) == {
        "recipient": {"id": PSID},
        "messaging_type": "RESPONSE",
        "message": {"text": "Hola, ¿en qué ayudo?"},
    }


def test_human_agent_tag_sends_a_message_tag(api, messenger_provider, sender):
    answers(api, "m_tagged")

    send(messenger_provider, sender, OutboundContent(text="Following up", tag="HUMAN_AGENT"))

    assert bodies(api) == [
        {
            "recipient": {"id": PSID},
            "messaging_type": "MESSAGE_TAG",
            "tag": "HUMAN_AGENT",
            "message": {"text": "Following up"},
        }
    ]


@pytest.mark.parametrize("as_json_text", [False, True])
def test_page_tokens_pick_the_senders_page_and_fall_back(api, messenger_provider, as_json_text):
    tokens = {PAGE: "TOKEN-OF-PAGE-A", "424242": "TOKEN-OF-PAGE-B"}
    provider_credentials_set(
        messenger_provider,
        {
            "page_access_token": "DEFAULT-TOKEN",
            "page_tokens": json.dumps(tokens) if as_json_text else tokens,
        },
    )
    answers(api, "m_1", "m_2", "m_3")

    for page in (PAGE, "424242", "777"):
        send(messenger_provider, make_sender(messenger_provider, page), OutboundContent(text="x"))

    assert [query(r)["access_token"] for r in api.received] == [
        ["TOKEN-OF-PAGE-A"],
        ["TOKEN-OF-PAGE-B"],
        ["DEFAULT-TOKEN"],
    ]


def test_no_token_for_the_page_is_a_permanent_20003(api, messenger_provider, sender):
    provider_credentials_set(messenger_provider, {"page_tokens": {"999": "OTHER"}})

    with pytest.raises(ProviderError) as caught:
        send(messenger_provider, sender, OutboundContent(text="x"))

    assert (caught.value.code, caught.value.permanent) == (20003, True)
    assert PAGE in caught.value.message and "page_access_token" in caught.value.message
    assert api.received == []


def test_quick_replies_ride_on_the_text_with_titles_cut_to_20(api, messenger_provider, sender):
    answers(api, "m_qr")
    content = OutboundContent(
        text="Pick one",
        quick_replies=(
            QuickReply(payload="YES", title="Yes"),
            QuickReply(payload="LATER", title="Remind me tomorrow morning"),
        ),
    )

    send(messenger_provider, sender, content)

    assert bodies(api)[0]["message"] == {
        "text": "Pick one",
        "quick_replies": [
            {"content_type": "text", "title": "Yes", "payload": "YES"},
            {"content_type": "text", "title": "Remind me tomorrow m", "payload": "LATER"},
        ],
    }


def test_more_than_13_quick_replies_is_refused_before_any_call(api, messenger_provider, sender):
    replies = tuple(QuickReply(payload=f"P{i}", title=f"T{i}") for i in range(14))

    with pytest.raises(ProviderError) as caught:
        send(messenger_provider, sender, OutboundContent(text="Too many", quick_replies=replies))

    assert (caught.value.code, caught.value.permanent) == (20422, True)
    assert "13" in caught.value.message and "14" in caught.value.message
    assert api.received == []


def test_a_list_picker_becomes_quick_replies(api, messenger_provider, sender):
    answers(api, "m_list")
    picker = ListPicker(
        button="Choose",
        rows=(ListRow(id="billing", title="Billing"), ListRow(id="tech", title="Tech support")),
    )

    send(messenger_provider, sender, OutboundContent(text="What about?", list_picker=picker))

    assert bodies(api)[0]["message"] == {
        "text": "What about?",
        "quick_replies": [
            {"content_type": "text", "title": "Billing", "payload": "billing"},
            {"content_type": "text", "title": "Tech support", "payload": "tech"},
        ],
    }


def test_a_list_picker_of_14_rows_is_refused(api, messenger_provider, sender):
    picker = ListPicker(
        button="Choose", rows=tuple(ListRow(id=f"r{i}", title="t") for i in range(14))
    )

    with pytest.raises(ProviderError) as caught:
        send(messenger_provider, sender, OutboundContent(text="List", list_picker=picker))

    assert caught.value.permanent and caught.value.code == 20422
    assert api.received == []


def test_media_go_one_call_each_before_the_text(api, messenger_provider, sender):
    answers(api, "m_image", "m_file", "m_text")
    content = OutboundContent(
        text="Your receipt",
        media_urls=("https://cdn.example.com/photo", "https://cdn.example.com/receipt.pdf"),
        media_types=("image/png",),
        quick_replies=(QuickReply(payload="OK", title="OK"),),
    )

    result = send(messenger_provider, sender, content)

    assert result.provider_message_id == "m_text"
    assert [b["message"] for b in bodies(api)] == [
        {
            "attachment": {
                "type": "image",
                "payload": {"url": "https://cdn.example.com/photo", "is_reusable": True},
            }
        },
        {
            "attachment": {
                "type": "file",
                "payload": {"url": "https://cdn.example.com/receipt.pdf", "is_reusable": True},
            }
        },
        {
            "text": "Your receipt",
            "quick_replies": [{"content_type": "text", "title": "OK", "payload": "OK"}],
        },
    ]
    assert all(b["recipient"] == {"id": PSID} for b in bodies(api))


def test_media_only_answers_the_last_media_id(api, messenger_provider, sender):
    answers(api, "m_video", "m_audio")
    content = OutboundContent(
        media_urls=("https://cdn.example.com/clip.mp4", "https://cdn.example.com/voice.mp3")
    )

    result = send(messenger_provider, sender, content)

    assert result.provider_message_id == "m_audio"
    assert [b["message"]["attachment"]["type"] for b in bodies(api)] == ["video", "audio"]


def test_text_over_2000_characters_is_refused_not_split(api, messenger_provider, sender):
    with pytest.raises(ProviderError) as caught:
        send(messenger_provider, sender, OutboundContent(text="a" * 2001))

    assert (caught.value.code, caught.value.permanent) == (21617, True)
    assert api.received == []


def test_exactly_2000_characters_go_in_one_call(api, messenger_provider, sender):
    answers(api, "m_long")

    send(messenger_provider, sender, OutboundContent(text="é" * 2000))

    assert bodies(api)[0]["message"] == {"text": "é" * 2000}


def test_a_failure_after_a_part_went_through_is_never_retried(api, messenger_provider, sender):
    calls = []

    def respond(_request):
        calls.append(1)
        if len(calls) == 1:
            return 200, {}, json.dumps({"recipient_id": PSID, "message_id": "m_img"}).encode()
        return 503, {"Content-Type": "text/html"}, b"<html>unavailable</html>"

    api.route("POST", SEND_PATH, respond)
    content = OutboundContent(text="caption", media_urls=("https://cdn.example.com/a.jpg",))

    with pytest.raises(ProviderError) as caught:
        send(messenger_provider, sender, content)

    assert (caught.value.code, caught.value.permanent) == (30008, True)
    assert "1 of 2" in caught.value.message and "503" in caught.value.message
    assert len(api.received) == 2


def test_a_non_messenger_recipient_is_21211(api, messenger_provider, sender):
    with pytest.raises(ProviderError) as caught:
        adapter_for(messenger_provider).send(
            outbound(sender, to="+14155550100"),
            content=OutboundContent(text="x"),
            idempotency_key="k",
        )

    assert (caught.value.code, caught.value.permanent) == (21211, True)
    assert api.received == []


@pytest.mark.parametrize("action", ["typing_on", "typing_off", "mark_seen"])
def test_sender_action(api, messenger_provider, action):
    api.route("POST", SEND_PATH, json_answer({"recipient_id": PSID}))

    messenger.sender_action(messenger_provider, f"messenger:{PAGE}", PSID, action)

    [request] = api.received
    assert urlsplit(request.path).path == SEND_PATH
    assert query(request) == {"access_token": ["PAGE-TOKEN"]}
    assert json.loads(request.body) == {"recipient": {"id": PSID}, "sender_action": action}


def test_an_unknown_sender_action_is_a_value_error(api, messenger_provider):
    with pytest.raises(ValueError, match="typing_on"):
        messenger.sender_action(messenger_provider, PAGE, PSID, "dance")
    assert api.received == []


def test_a_refused_sender_action_raises_the_mapped_error(api, messenger_provider):
    error = {
        "error": {"message": "Invalid OAuth access token.", "type": "OAuthException", "code": 190}
    }
    api.route("POST", SEND_PATH, json_answer(error, 401))

    with pytest.raises(ProviderError) as caught:
        messenger.sender_action(messenger_provider, PAGE, PSID, "mark_seen")

    assert (caught.value.code, caught.value.permanent) == (20003, True)


# ---------------------------------------------------------------- error mapping


def graph(code, subcode=None, message="Meta says no"):
    error = {"message": message, "type": "OAuthException", "code": code, "fbtrace_id": "AbC123"}
    if subcode is not None:
        error["error_subcode"] = subcode
    return {"error": error}


@pytest.mark.parametrize(
    ("status", "body", "code", "permanent", "throttled"),
    [
        (400, graph(10, 2018278), 63016, True, False),
        (400, graph(10, 2018065), 63016, True, False),
        (400, graph(551, 1545041), 30003, True, False),
        (400, graph(200, 1545041), 30003, True, False),
        (400, graph(10, 2018108), 30003, True, False),
        (400, graph(100, 2018001), 21211, True, False),
        (400, graph(100, 2018109), 30008, True, False),
        (401, graph(190), 20003, True, False),
        (400, graph(190, 460), 20003, True, False),
        (401, None, 20003, True, False),
        (403, graph(3), 20003, True, False),
        (400, graph(4), 20429, False, True),
        (400, graph(4, 2018022), 20429, False, True),
        (400, graph(32), 20429, False, True),
        (400, graph(613), 20429, False, True),
        (429, None, 20429, False, True),
        (500, graph(2), 30008, False, False),
        (400, graph(1), 30008, False, False),
        (400, graph(1200), 30008, False, False),
        (503, None, 30008, False, False),
        (500, graph(100), 30008, False, False),
        (400, graph(100, 2018032), 30008, True, False),
        (404, None, 30008, True, False),
    ],
)
def test_graph_errors_are_mapped(
    api, messenger_provider, sender, status, body, code, permanent, throttled
):
    if body is None:
        api.route("POST", SEND_PATH, lambda _r: (status, {"Content-Type": "text/plain"}, b"nope"))
    else:
        api.route("POST", SEND_PATH, json_answer(body, status))

    with pytest.raises(ProviderError) as caught:
        send(messenger_provider, sender, OutboundContent(text="x"))

    error = caught.value
    assert (error.code, error.permanent, error.throttled) == (code, permanent, throttled)
    if body is not None:
        meta_code = body["error"]["code"]
        assert f"Messenger error {meta_code}" in error.message
        assert "Meta says no" in error.message and "AbC123" in error.message
    else:
        assert str(status) in error.message
    assert "PAGE-TOKEN" not in error.message


def test_an_unknown_meta_error_keeps_code_subcode_and_message(api, messenger_provider, sender):
    api.route("POST", SEND_PATH, json_answer(graph(100, 2018032, "Invalid data"), 400))

    with pytest.raises(ProviderError) as caught:
        send(messenger_provider, sender, OutboundContent(text="x"))

    assert caught.value.message == "Messenger error 100/2018032: Invalid data (fbtrace_id AbC123)"


def test_a_403_says_the_token_was_refused(api, messenger_provider, sender):
    api.route("POST", SEND_PATH, json_answer(graph(3, message="Capability missing"), 403))

    with pytest.raises(ProviderError) as caught:
        send(messenger_provider, sender, OutboundContent(text="x"))

    assert caught.value.message.startswith("Messenger refused the page token (HTTP 403).")


def test_429_honours_retry_after(api, messenger_provider, sender):
    api.route("POST", SEND_PATH, json_answer(graph(613), 429, headers={"Retry-After": "7"}))

    with pytest.raises(ProviderError) as caught:
        send(messenger_provider, sender, OutboundContent(text="x"))

    assert caught.value.throttled and caught.value.retry_after == 7.0


def test_a_send_left_unanswered_is_failed_not_retried(api, messenger_provider, sender):
    # The request went out whole: Messenger may have delivered it, and a retry has no
    # idempotency key to stop a second copy.
    messenger_provider.settings = {**messenger_provider.settings, "timeout_seconds": 0.2}

    def slow(_request):
        time.sleep(1.0)
        return 200, {}, b"{}"

    api.route("POST", SEND_PATH, slow)

    with pytest.raises(ProviderError) as caught:
        send(messenger_provider, sender, OutboundContent(text="x"))

    assert (caught.value.code, caught.value.permanent) == (30008, True)
    assert "did not answer (ReadTimeout" in caught.value.message
    assert "could deliver the message twice" in caught.value.message


def test_an_unreachable_graph_is_transient(messenger_provider, sender):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    messenger_provider.settings = {
        **messenger_provider.settings,
        "graph_base_url": f"http://127.0.0.1:{port}",
    }

    with pytest.raises(ProviderError) as caught:
        send(messenger_provider, sender, OutboundContent(text="x"))

    assert (caught.value.code, caught.value.permanent) == (30008, False)
    assert caught.value.message.startswith("Could not reach Messenger")


# ---------------------------------------------------------------- handshake and signature


def request_for(body: bytes, signature: str | None = None, method: str = "POST", query=None):
    headers = {"Content-Type": "application/json"}
    if signature is not None:
        headers["X-Hub-Signature-256"] = signature
    return WebhookRequest(
        method=method,
        url="https://cc.example.com/webhooks/messenger",
        headers=headers,
        body=body,
        query=query or {},
    )


def test_handshake_answers_the_challenge_for_our_verify_token(messenger_provider):
    adapter = adapter_for(messenger_provider)
    good = {"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "12345"}

    answer = adapter.handshake(request_for(b"", method="GET", query=good))
    refused = adapter.handshake(
        request_for(b"", method="GET", query={**good, "hub.verify_token": "guess"})
    )

    assert (answer.status, answer.body) == (200, "12345")
    assert refused.status == 403
    assert adapter.handshake(request_for(b"{}", body_signature(APP_SECRET, b"{}"))) is None


def test_signature_over_the_raw_body(messenger_provider):
    adapter = adapter_for(messenger_provider)
    body = b'{"object":"page","entry":[]}'

    assert adapter.verify_request(request_for(body, body_signature(APP_SECRET, body)))
    assert not adapter.verify_request(request_for(body + b" ", body_signature(APP_SECRET, body)))
    assert not adapter.verify_request(request_for(body, body_signature("other-secret", body)))
    assert not adapter.verify_request(request_for(body))
    assert not adapter.verify_request(request_for(body, "sha256="))


def test_without_an_app_secret_nothing_verifies(messenger_provider):
    provider_credentials_set(messenger_provider, {"page_access_token": "PAGE-TOKEN"})
    body = b"{}"

    assert not adapter_for(messenger_provider).verify_request(
        request_for(body, body_signature("", body))
    )


# ---------------------------------------------------------------- webhook parsing

T1, T2, T3 = 1458692752478, 1458692753000, 1458692754321


def at(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


REALISTIC = {
    "object": "page",
    "entry": [
        {
            "id": PAGE,
            "time": T1,
            "messaging": [
                {
                    "sender": {"id": PSID},
                    "recipient": {"id": PAGE},
                    "timestamp": T1,
                    "message": {
                        "mid": "m_text",
                        "text": "hello, world!",
                        "reply_to": {"mid": "m_earlier", "is_self_reply": False},
                        "nlp": {"entities": {}},  # an unknown field
                    },
                }
            ],
        },
        {
            "id": PAGE,
            "time": T2,
            "messaging": [
                {
                    "sender": {"id": PSID},
                    "recipient": {"id": PAGE},
                    "timestamp": T2,
                    "message": {
                        "mid": "m_quick",
                        "text": "Yes",
                        "quick_reply": {"payload": "CONFIRM_YES"},
                    },
                }
            ],
        },
        {
            "id": PAGE,
            "time": T2,
            "messaging": [
                {
                    "sender": {"id": PSID},
                    "recipient": {"id": PAGE},
                    "timestamp": T2,
                    "message": {
                        "mid": "m_media",
                        "attachments": [
                            {
                                "type": "image",
                                "payload": {
                                    "url": "https://scontent.xx.fbcdn.net/v/t1/1_n.png?x=1"
                                },
                            },
                            {"type": "image", "payload": {"url": "https://cdn.fb.com/v/abc?oh=1"}},
                            {
                                "type": "audio",
                                "payload": {"url": "https://cdn.fb.com/audioclip-1.mp4?x=2"},
                            },
                            {"type": "file", "payload": {"url": "https://cdn.fb.com/doc.pdf"}},
                            {"type": "fallback", "payload": None, "title": "a shared link"},
                        ],
                    },
                }
            ],
        },
        {
            "id": PAGE,
            "time": T2,
            "messaging": [
                {
                    "sender": {"id": PSID},
                    "recipient": {"id": PAGE},
                    "timestamp": T2,
                    "message": {
                        "mid": "m_location",
                        "attachments": [
                            {
                                "type": "location",
                                "title": "Pin",
                                "payload": {"coordinates": {"lat": 19.4326, "long": -99.1332}},
                            }
                        ],
                    },
                }
            ],
        },
        {
            "id": PAGE,
            "time": T3,
            "messaging": [
                {
                    "sender": {"id": PSID},
                    "recipient": {"id": PAGE},
                    "timestamp": T3,
                    "postback": {"title": "Talk to an agent", "payload": "AGENT", "mid": "m_pb"},
                },
                {
                    "sender": {"id": PSID},
                    "recipient": {"id": PAGE},
                    "timestamp": T3,
                    "postback": {"title": "Get Started", "payload": "GET_STARTED"},
                },
                {  # our own send, echoed: skipped
                    "sender": {"id": PAGE},
                    "recipient": {"id": PSID},
                    "timestamp": T3,
                    "message": {
                        "is_echo": True,
                        "app_id": 1517776481860111,
                        "mid": "m_echo",
                        "text": "hi",
                    },
                },
                {
                    "sender": {"id": PSID},
                    "recipient": {"id": PAGE},
                    "timestamp": T3,
                    "delivery": {"mids": ["m_out_1", "m_out_2"], "watermark": T2},
                },
                {
                    "sender": {"id": PSID},
                    "recipient": {"id": PAGE},
                    "timestamp": T3,
                    "read": {"watermark": T3},
                },
                {  # an event kind we do not handle: skipped
                    "sender": {"id": PSID},
                    "recipient": {"id": PAGE},
                    "timestamp": T3,
                    "reaction": {"mid": "m_out_1", "action": "react", "emoji": "❤"},
                },
                {  # an opt-in from the checkbox plugin has no sender.id: still skipped cleanly
                    "recipient": {"id": PAGE},
                    "timestamp": T3,
                    "optin": {"ref": "promo", "user_ref": "UREF"},
                },
            ],
        },
        {  # a thread another app owns (handover protocol): skipped
            "id": PAGE,
            "time": T3,
            "standby": [
                {
                    "sender": {"id": PSID},
                    "recipient": {"id": PAGE},
                    "timestamp": T3,
                    "message": {"mid": "m_standby", "text": "not ours"},
                }
            ],
        },
    ],
}


def parse(provider, payload) -> object:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return adapter_for(provider).parse_webhook(request_for(body, body_signature(APP_SECRET, body)))


def test_a_realistic_webhook(messenger_provider):
    events = parse(messenger_provider, REALISTIC)
    customer, page = f"messenger:{PSID}", f"messenger:{PAGE}"

    assert events.messages == (
        InboundMessage(
            provider_message_id="m_text",
            from_address=customer,
            to_address=page,
            body="hello, world!",
            timestamp=at(T1),
            extra={"ReplyToProviderMessageId": "m_earlier"},
        ),
        InboundMessage(
            provider_message_id="m_quick",
            from_address=customer,
            to_address=page,
            body="Yes",
            timestamp=at(T2),
            extra={"ButtonPayload": "CONFIRM_YES"},
        ),
        InboundMessage(
            provider_message_id="m_media",
            from_address=customer,
            to_address=page,
            media=(
                InboundMedia(
                    url="https://scontent.xx.fbcdn.net/v/t1/1_n.png?x=1", content_type="image/png"
                ),
                InboundMedia(url="https://cdn.fb.com/v/abc?oh=1", content_type="image/jpeg"),
                InboundMedia(
                    url="https://cdn.fb.com/audioclip-1.mp4?x=2", content_type="audio/mp4"
                ),
                InboundMedia(url="https://cdn.fb.com/doc.pdf", content_type="application/pdf"),
            ),
            timestamp=at(T2),
        ),
        InboundMessage(
            provider_message_id="m_location",
            from_address=customer,
            to_address=page,
            timestamp=at(T2),
            extra={"Latitude": "19.4326", "Longitude": "-99.1332"},
        ),
        InboundMessage(
            provider_message_id="m_pb",
            from_address=customer,
            to_address=page,
            body="Talk to an agent",
            timestamp=at(T3),
            extra={"ButtonPayload": "AGENT", "ButtonText": "Talk to an agent"},
        ),
        InboundMessage(
            provider_message_id=f"postback:{PSID}:{T3}",
            from_address=customer,
            to_address=page,
            body="Get Started",
            timestamp=at(T3),
            extra={"ButtonPayload": "GET_STARTED", "ButtonText": "Get Started"},
        ),
    )
    assert events.statuses == (
        StatusUpdate(status="delivered", provider_message_id="m_out_1", timestamp=at(T3)),
        StatusUpdate(status="delivered", provider_message_id="m_out_2", timestamp=at(T3)),
        StatusUpdate(
            status="delivered",
            recipient=customer,
            sender_ref=page,
            watermark=at(T2),
            timestamp=at(T3),
        ),
        StatusUpdate(
            status="read", recipient=customer, sender_ref=page, watermark=at(T3), timestamp=at(T3)
        ),
    )


def test_string_and_second_timestamps_are_read(messenger_provider):
    payload = {
        "object": "page",
        "entry": [
            {
                "messaging": [
                    {
                        "sender": {"id": PSID},
                        "recipient": {"id": PAGE},
                        "timestamp": "1527459824",
                        "postback": {"mid": "m_x", "title": "T", "payload": "P"},
                    }
                ]
            }
        ],
    }

    [message] = parse(messenger_provider, payload).messages

    assert message.timestamp == datetime(2018, 5, 27, 22, 23, 44, tzinfo=UTC)


def event(**fields):
    base = {"sender": {"id": PSID}, "recipient": {"id": PAGE}, "timestamp": T1}
    base.update(fields)
    return {key: value for key, value in base.items() if value is not None}


def page_payload(*events):
    return {"object": "page", "entry": [{"id": PAGE, "messaging": list(events)}]}


GOOD = event(message={"mid": "m_ok", "text": "ok"})


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"{not json", "body is not JSON"),
        (b"[1, 2]", "body is not a JSON object"),
        (
            {"object": "whatsapp_business_account", "entry": []},
            "object is 'whatsapp_business_account', expected 'page'",
        ),
        ({"object": "page"}, "entry is missing"),
        ({"object": "page", "entry": {"id": PAGE}}, "entry is not a list"),
        ({"object": "page", "entry": ["x"]}, "entry[0] is not an object"),
        ({"object": "page", "entry": [{"messaging": {}}]}, "entry[0].messaging is not a list"),
        (page_payload(GOOD, "x"), "entry[0].messaging[1] is not an object"),
        (
            page_payload(GOOD, event(sender={"name": "?"}, message={"mid": "m", "text": "t"})),
            "entry[0].messaging[1].sender.id is missing",
        ),
        (
            page_payload(GOOD, event(sender=None, message={"mid": "m", "text": "t"})),
            "entry[0].messaging[1].sender is missing",
        ),
        (
            page_payload(event(recipient={}, message={"mid": "m"})),
            "entry[0].messaging[0].recipient.id is missing",
        ),
        (
            page_payload(event(timestamp=None, message={"mid": "m"})),
            "entry[0].messaging[0].timestamp is missing",
        ),
        (
            page_payload(event(timestamp="yesterday", message={"mid": "m"})),
            "entry[0].messaging[0].timestamp is not a timestamp: 'yesterday'",
        ),
        (
            page_payload(GOOD, GOOD, event(message={"text": "no mid"})),
            "entry[0].messaging[2].message.mid is missing",
        ),
        (
            page_payload(event(message={"mid": "m", "attachments": {"type": "image"}})),
            "entry[0].messaging[0].message.attachments is not a list",
        ),
        (
            page_payload(event(delivery={"mids": "m_1", "watermark": T1})),
            "entry[0].messaging[0].delivery.mids is not a list",
        ),
        (page_payload(event(read="x")), "entry[0].messaging[0].read is not an object"),
        (
            page_payload(event(read={"seq": 0})),
            "entry[0].messaging[0].read.watermark is missing",
        ),
    ],
)
def test_malformed_webhooks_name_what_is_wrong(messenger_provider, payload, reason):
    with pytest.raises(WebhookPayloadError) as caught:
        parse(messenger_provider, payload)

    assert caught.value.reason.startswith(reason)


def test_entries_without_messaging_are_empty(messenger_provider):
    events = parse(messenger_provider, {"object": "page", "entry": [{"id": PAGE, "changes": []}]})

    assert events.messages == () and events.statuses == ()


# ---------------------------------------------------------------- media


def test_fetch_media_downloads_without_credentials(api, messenger_provider):
    api.route(
        "GET",
        "/media/photo.jpg",
        lambda _r: (200, {"Content-Type": "image/jpeg; q=1"}, b"JPEGDATA"),
    )

    media = adapter_for(messenger_provider).fetch_media(
        InboundMedia(url=f"{api.url}/media/photo.jpg?oh=abc", content_type="image/jpeg")
    )

    assert (media.content, media.content_type) == (b"JPEGDATA", "image/jpeg")
    [request] = api.received
    assert request.method == "GET" and request.path == "/media/photo.jpg?oh=abc"
    assert "Authorization" not in request.headers and "access_token" not in request.path


def test_fetch_media_over_the_cap_is_refused(api, messenger_provider):
    messenger_provider.settings = {**messenger_provider.settings, "max_media_bytes": 10}
    api.route("GET", "/media/big", lambda _r: (200, {"Content-Type": "video/mp4"}, b"x" * 11))
    api.route("GET", "/media/fits", lambda _r: (200, {"Content-Type": "video/mp4"}, b"x" * 10))
    adapter = adapter_for(messenger_provider)

    with pytest.raises(ProviderError) as caught:
        adapter.fetch_media(InboundMedia(url=f"{api.url}/media/big"))

    assert caught.value.permanent and "10-byte limit" in caught.value.message
    assert adapter.fetch_media(InboundMedia(url=f"{api.url}/media/fits")).content == b"x" * 10


@pytest.fixture
def chunked_server():
    """A CDN answering in chunks with no Content-Length: only streaming can enforce the cap."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "application/pdf")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            try:
                for _ in range(8):
                    chunk = b"y" * 1024
                    self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                self.wfile.write(b"0\r\n\r\n")
            except OSError:
                pass  # the client stopped reading at the cap

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


def test_fetch_media_cap_holds_while_streaming(messenger_provider, chunked_server):
    messenger_provider.settings = {**messenger_provider.settings, "max_media_bytes": 4096}
    with pytest.raises(ProviderError) as caught:
        adapter_for(messenger_provider).fetch_media(InboundMedia(url=f"{chunked_server}/doc"))
    assert "4096-byte limit" in caught.value.message

    messenger_provider.settings = {**messenger_provider.settings, "max_media_bytes": 8192}
    media = adapter_for(messenger_provider).fetch_media(InboundMedia(url=f"{chunked_server}/doc"))
    assert (len(media.content), media.content_type) == (8192, "application/pdf")


@pytest.mark.parametrize(
    ("status", "permanent"), [(403, True), (404, True), (500, False), (429, False)]
)
def test_fetch_media_http_errors(api, messenger_provider, status, permanent):
    api.route("GET", "/media/gone", lambda _r: (status, {}, b""))

    with pytest.raises(ProviderError) as caught:
        adapter_for(messenger_provider).fetch_media(InboundMedia(url=f"{api.url}/media/gone"))

    assert caught.value.permanent is permanent and str(status) in caught.value.message
