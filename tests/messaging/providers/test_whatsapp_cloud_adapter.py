"""The WhatsApp Cloud API adapter against a local server speaking Meta's Graph wire format:
the exact JSON the Messages API receives (path with version and phone number id, Bearer
token), Graph error bodies and their mapping, the `hub.challenge` handshake,
`X-Hub-Signature-256`, the `whatsapp_business_account` webhook, the two-step media download
and template management."""

import json
import socket
import time
from datetime import UTC, datetime

import pytest

from messaging.models import Message, ProviderAccount, Sender
from messaging.providers import (
    InboundMedia,
    ListPicker,
    ListRow,
    OutboundContent,
    ProviderError,
    QuickReply,
    TemplateRef,
    WebhookPayloadError,
    WebhookRequest,
    adapter_for,
    meta,
)
from messaging.providers import whatsapp_cloud as wa
from messaging.providers.whatsapp_cloud import WhatsAppCloudAdapter
from messaging.services.providers import provider_credentials_set
from tests.support.http import FakeApi, json_answer

ACCESS_TOKEN = "EAAG-test-access-token"
APP_SECRET = "meta-app-secret"
VERIFY_TOKEN = "verify-me"
PHONE_NUMBER_ID = "106540352242922"
WABA_ID = "102290129340398"
VERSION = "v21.0"
MESSAGES_PATH = f"/{VERSION}/{PHONE_NUMBER_ID}/messages"
TEMPLATES_PATH = f"/{VERSION}/{WABA_ID}/message_templates"
CUSTOMER = "whatsapp:+5215512345678"
CUSTOMER_DIGITS = "5215512345678"
OUR_SID = "SM" + "d" * 32
WEBHOOK_URL = "https://cc.example.com/webhooks/p/PA123"


# ---------------------------------------------------------------- fixtures and helpers


@pytest.fixture(scope="module")
def graph_server():
    # One server for the module: each close waits out the server's 0.5 s poll.
    server = FakeApi()
    yield server
    server.close()


@pytest.fixture
def api(graph_server):
    graph_server.routes.clear()
    graph_server.received.clear()
    return graph_server


@pytest.fixture
def provider(account, api):
    provider = ProviderAccount.objects.create(
        account=account,
        name="WhatsApp",
        kind="whatsapp_cloud",
        settings={
            "graph_base_url": api.url,
            "api_version": VERSION,
            "waba_id": WABA_ID,
            "timeout_seconds": 0.5,
        },
    )
    provider_credentials_set(
        provider,
        {"access_token": ACCESS_TOKEN, "app_secret": APP_SECRET, "verify_token": VERIFY_TOKEN},
    )
    return provider


@pytest.fixture
def sender(account, provider):
    sender = Sender(
        account=account,
        provider=provider,
        kind="whatsapp",
        address="whatsapp:+14155550199",
        provider_ref=PHONE_NUMBER_ID,
    )
    sender.full_clean()
    sender.save()
    return sender


@pytest.fixture
def message(account, sender):
    # Unsaved: the adapter reads the sender, the recipient and the sid, and writes nothing.
    return Message(
        account=account,
        sender=sender,
        channel="whatsapp",
        direction="outbound-api",
        from_address=sender.address,
        to_address=CUSTOMER,
        sid=OUR_SID,
        num_segments=1,
    )


@pytest.fixture
def adapter(provider):
    return adapter_for(provider)


def sent_ok(wamid: str = "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBJDQjZCMzlEQUE4OTJBMTE4RTUA"):
    return json_answer(
        {
            "messaging_product": "whatsapp",
            "contacts": [{"input": CUSTOMER_DIGITS, "wa_id": CUSTOMER_DIGITS}],
            "messages": [{"id": wamid}],
        }
    )


def numbered_sends():
    """Answers wamid.1, wamid.2, ... in the order the calls arrive."""
    count = {"n": 0}

    def respond(_request):
        count["n"] += 1
        body = json.dumps({"messages": [{"id": f"wamid.{count['n']}"}]}).encode()
        return 200, {"Content-Type": "application/json"}, body

    return respond


def headers_of(received) -> dict[str, str]:
    return {name.lower(): value for name, value in received.headers.items()}


def sent_bodies(api) -> list[dict]:
    return [json.loads(r.body) for r in api.received]


def envelope(payload: dict) -> dict:
    return {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": CUSTOMER_DIGITS,
        **payload,
    }


def graph_error_body(code: int, message: str, *, subcode: int | None = None, details=""):
    error = {"message": message, "type": "OAuthException", "code": code, "fbtrace_id": "AbCdEf"}
    if subcode is not None:
        error["error_subcode"] = subcode
    if details:
        error["error_data"] = {"messaging_product": "whatsapp", "details": details}
    return {"error": error}


def send(adapter, message, **content) -> str:
    result = adapter.send(message, content=OutboundContent(**content), idempotency_key=OUR_SID)
    return result.provider_message_id


def refused(adapter, message, **content) -> ProviderError:
    with pytest.raises(ProviderError) as caught:
        send(adapter, message, **content)
    return caught.value


# ---------------------------------------------------------------- send: wire format


def test_registered_for_whatsapp_cloud_and_not_idempotent(adapter):
    assert isinstance(adapter, WhatsAppCloudAdapter)
    assert adapter.idempotent is False
    assert adapter.network is True


def test_text_without_url_posts_exact_json_with_bearer(api, adapter, message):
    api.route("POST", MESSAGES_PATH, sent_ok("wamid.text1"))

    assert send(adapter, message, text="Hola Ana, ¿en qué te ayudo?") == "wamid.text1"

    [request] = api.received
    assert request.method == "POST"
    assert request.path == MESSAGES_PATH
    headers = headers_of(request)
    assert headers["authorization"] == f"Bearer {ACCESS_TOKEN}"
    assert headers["content-type"] == "application/json"
    assert json.loads(request.body) == envelope(
        {"type": "text", "text": {"body": "Hola Ana, ¿en qué te ayudo?", "preview_url": False}}
    )


def test_text_with_url_asks_for_a_preview(api, adapter, message):
    api.route("POST", MESSAGES_PATH, sent_ok())

    send(adapter, message, text="Tu pedido: https://shop.example.com/o/42")

    assert sent_bodies(api) == [
        envelope(
            {
                "type": "text",
                "text": {"body": "Tu pedido: https://shop.example.com/o/42", "preview_url": True},
            }
        )
    ]


def test_image_with_caption(api, adapter, message):
    api.route("POST", MESSAGES_PATH, sent_ok("wamid.img"))

    result = send(
        adapter,
        message,
        text="Your receipt",
        media_urls=("https://cdn.example.com/r/receipt",),
        media_types=("image/png",),
    )

    assert result == "wamid.img"
    assert sent_bodies(api) == [
        envelope(
            {
                "type": "image",
                "image": {"link": "https://cdn.example.com/r/receipt", "caption": "Your receipt"},
            }
        )
    ]


def test_two_media_two_calls_caption_on_first_and_first_id_returned(api, adapter, message):
    api.route("POST", MESSAGES_PATH, numbered_sends())

    result = send(
        adapter,
        message,
        text="Photos of the damage",
        media_urls=("https://cdn.example.com/a.jpg", "https://cdn.example.com/b.mp4"),
    )

    assert result == "wamid.1"
    assert sent_bodies(api) == [
        envelope(
            {
                "type": "image",
                "image": {
                    "link": "https://cdn.example.com/a.jpg",
                    "caption": "Photos of the damage",
                },
            }
        ),
        envelope({"type": "video", "video": {"link": "https://cdn.example.com/b.mp4"}}),
    ]
    assert all(r.path == MESSAGES_PATH for r in api.received)


def test_document_gets_its_filename_and_unsupported_images_go_as_documents(api, adapter, message):
    api.route("POST", MESSAGES_PATH, numbered_sends())

    send(
        adapter,
        message,
        text="Contract and map",
        media_urls=("https://cdn.example.com/docs/Contrato%202024.pdf", "https://x.example/m"),
        media_types=("application/pdf", "image/gif"),
    )

    assert sent_bodies(api) == [
        envelope(
            {
                "type": "document",
                "document": {
                    "link": "https://cdn.example.com/docs/Contrato%202024.pdf",
                    "caption": "Contract and map",
                    "filename": "Contrato 2024.pdf",
                },
            }
        ),
        envelope({"type": "document", "document": {"link": "https://x.example/m"}}),
    ]


def test_audio_takes_no_caption_so_the_text_goes_first(api, adapter, message):
    api.route("POST", MESSAGES_PATH, numbered_sends())

    result = send(
        adapter, message, text="Listen to this", media_urls=("https://cdn.example.com/v.ogg",)
    )

    assert result == "wamid.1"
    assert sent_bodies(api) == [
        envelope({"type": "text", "text": {"body": "Listen to this", "preview_url": False}}),
        envelope({"type": "audio", "audio": {"link": "https://cdn.example.com/v.ogg"}}),
    ]


def test_quick_replies_become_reply_buttons(api, adapter, message):
    api.route("POST", MESSAGES_PATH, sent_ok("wamid.btn"))

    send(
        adapter,
        message,
        text="Did this solve it?",
        quick_replies=(
            QuickReply(payload="YES", title="Yes"),
            QuickReply("NO", "No, still broken"),
        ),
    )

    assert sent_bodies(api) == [
        envelope(
            {
                "type": "interactive",
                "interactive": {
                    "type": "button",
                    "body": {"text": "Did this solve it?"},
                    "action": {
                        "buttons": [
                            {"type": "reply", "reply": {"id": "YES", "title": "Yes"}},
                            {"type": "reply", "reply": {"id": "NO", "title": "No, still broken"}},
                        ]
                    },
                },
            }
        )
    ]


def test_more_than_three_quick_replies_become_a_list(api, account, adapter, message, provider):
    provider.settings = {**provider.settings, "list_button": "Opciones"}
    api.route("POST", MESSAGES_PATH, sent_ok())
    replies = tuple(QuickReply(payload=f"P{i}", title=f"Option {i}") for i in range(4))

    send(adapter_for(provider), message, text="Pick one", quick_replies=replies)

    [body] = sent_bodies(api)
    assert body["interactive"] == {
        "type": "list",
        "body": {"text": "Pick one"},
        "action": {
            "button": "Opciones",
            "sections": [{"rows": [{"id": f"P{i}", "title": f"Option {i}"} for i in range(4)]}],
        },
    }


def test_a_button_title_over_20_characters_becomes_a_list_with_the_default_label(
    api, adapter, message
):
    api.route("POST", MESSAGES_PATH, sent_ok())

    send(adapter, message, text="Pick", quick_replies=(QuickReply("L", "A title of 22 chars..."),))

    [body] = sent_bodies(api)
    assert body["interactive"]["type"] == "list"
    assert body["interactive"]["action"]["button"] == "Options"


def test_list_picker(api, adapter, message):
    api.route("POST", MESSAGES_PATH, sent_ok("wamid.list"))
    picker = ListPicker(
        button="See times",
        section_title="Tomorrow",
        rows=(
            ListRow(id="slot-9", title="9:00", description="With Dr. Ruiz"),
            ListRow(id="slot-11", title="11:00"),
        ),
    )

    assert send(adapter, message, text="Choose a time", list_picker=picker) == "wamid.list"

    assert sent_bodies(api) == [
        envelope(
            {
                "type": "interactive",
                "interactive": {
                    "type": "list",
                    "body": {"text": "Choose a time"},
                    "action": {
                        "button": "See times",
                        "sections": [
                            {
                                "title": "Tomorrow",
                                "rows": [
                                    {
                                        "id": "slot-9",
                                        "title": "9:00",
                                        "description": "With Dr. Ruiz",
                                    },
                                    {"id": "slot-11", "title": "11:00"},
                                ],
                            }
                        ],
                    },
                },
            }
        )
    ]


def test_media_with_buttons_sends_the_media_then_the_buttons(api, adapter, message):
    api.route("POST", MESSAGES_PATH, numbered_sends())

    result = send(
        adapter,
        message,
        text="Is this your car?",
        media_urls=("https://cdn.example.com/car.jpg",),
        quick_replies=(QuickReply("Y", "Yes"),),
    )

    assert result == "wamid.1"
    bodies = sent_bodies(api)
    assert bodies[0] == envelope(
        {"type": "image", "image": {"link": "https://cdn.example.com/car.jpg"}}
    )
    assert bodies[1]["interactive"]["body"] == {"text": "Is this your car?"}


def test_template_with_header_body_and_button_params(api, adapter, message):
    api.route("POST", MESSAGES_PATH, sent_ok("wamid.tpl"))
    template = TemplateRef(
        name="order_update",
        language="es_MX",
        header_params=("Pedido 42",),
        body_params=("Ana", "mañana"),
        button_payloads={0: "TRACK-42"},
        button_url_params={1: "o/42"},
    )

    result = send(adapter, message, text="ignored outside the template", template=template)

    assert result == "wamid.tpl"
    assert sent_bodies(api) == [
        envelope(
            {
                "type": "template",
                "template": {
                    "name": "order_update",
                    "language": {"code": "es_MX"},
                    "components": [
                        {"type": "header", "parameters": [{"type": "text", "text": "Pedido 42"}]},
                        {
                            "type": "body",
                            "parameters": [
                                {"type": "text", "text": "Ana"},
                                {"type": "text", "text": "mañana"},
                            ],
                        },
                        {
                            "type": "button",
                            "sub_type": "quick_reply",
                            "index": "0",
                            "parameters": [{"type": "payload", "payload": "TRACK-42"}],
                        },
                        {
                            "type": "button",
                            "sub_type": "url",
                            "index": "1",
                            "parameters": [{"type": "text", "text": "o/42"}],
                        },
                    ],
                },
            }
        )
    ]


def test_template_with_media_header_and_no_params(api, adapter, message):
    api.route("POST", MESSAGES_PATH, sent_ok())
    with_header = TemplateRef(
        name="promo",
        language="en_US",
        header_media_url="https://cdn.example.com/p.jpg",
        header_media_type="image",
    )

    send(adapter, message, template=with_header)
    send(adapter, message, template=TemplateRef(name="hello_world", language="en_US"))

    first, second = sent_bodies(api)
    assert first["template"]["components"] == [
        {
            "type": "header",
            "parameters": [{"type": "image", "image": {"link": "https://cdn.example.com/p.jpg"}}],
        }
    ]
    assert second["template"] == {"name": "hello_world", "language": {"code": "en_US"}}


# ---------------------------------------------------------------- send: refused before a call


def test_sender_without_phone_number_id_is_refused_without_a_call(api, adapter, message):
    message.sender.provider_ref = ""

    error = refused(adapter, message, text="hi")

    assert (error.code, error.permanent) == (21606, True)
    assert "no phone number id" in error.message
    assert api.received == []


def test_missing_access_token_is_refused_without_a_call(api, provider, message):
    provider_credentials_set(provider, {"app_secret": APP_SECRET})

    error = refused(adapter_for(provider), message, text="hi")

    assert (error.code, error.permanent) == (20003, True)
    assert "access_token" in error.message
    assert api.received == []


@pytest.mark.parametrize(
    ("content", "expected_code", "words"),
    [
        ({}, 21602, "Nothing to send"),
        ({"quick_replies": (QuickReply("A", "a"),)}, 63021, "need body text"),
        (
            {
                "text": "pick",
                "list_picker": ListPicker(
                    button="More", rows=tuple(ListRow(str(i), f"r{i}") for i in range(11))
                ),
            },
            63021,
            "1 to 10 rows",
        ),
        (
            {
                "text": "pick",
                "quick_replies": tuple(QuickReply(str(i), f"r{i}") for i in range(11)),
            },
            63021,
            "1 to 10 rows",
        ),
        (
            {
                "text": "pick",
                "list_picker": ListPicker(button="Go", rows=(ListRow("x", "y" * 25),)),
            },
            63021,
            "row titles need 1 to 24",
        ),
        (
            {
                "text": "pick",
                "list_picker": ListPicker(button="Go", rows=(ListRow("x", "y", "d" * 73),)),
            },
            63021,
            "descriptions are at most 72",
        ),
        (
            {"text": "pick", "list_picker": ListPicker(button="b" * 21, rows=(ListRow("x", "y"),))},
            63021,
            "button label needs 1 to 20",
        ),
    ],
)
def test_content_whatsapp_cannot_carry_is_refused_without_a_call(
    api, adapter, message, content, expected_code, words
):
    error = refused(adapter, message, **content)

    assert (error.code, error.permanent) == (expected_code, True)
    assert words in error.message
    assert api.received == []


# ---------------------------------------------------------------- send: error mapping


# Meta's code → (our code, kind): written out here, independently of the module's table.
EXPECTED_MAPPING = {
    131047: (63016, "permanent"),
    131026: (30003, "permanent"),
    131050: (21610, "permanent"),
    131049: (30007, "permanent"),
    131051: (63021, "permanent"),
    132000: (63028, "permanent"),
    132001: (63027, "permanent"),
    132012: (63028, "permanent"),
    133010: (21606, "permanent"),
    190: (20003, "permanent"),
    130429: (63018, "throttled"),
    131048: (63018, "throttled"),
    131056: (63018, "throttled"),
    80007: (63018, "throttled"),
    131000: (30008, "transient"),
}


def test_the_expected_mapping_covers_the_whole_table():
    assert set(EXPECTED_MAPPING) == set(wa.GRAPH_ERRORS)


@pytest.mark.parametrize(("meta_code", "expected"), sorted(EXPECTED_MAPPING.items()))
def test_graph_error_codes_are_mapped(api, adapter, message, meta_code, expected):
    our_code, kind = expected
    status = 401 if meta_code == 190 else 400
    body = graph_error_body(meta_code, f"Meta says {meta_code}", details=f"details {meta_code}")
    api.route("POST", MESSAGES_PATH, json_answer(body, status))

    error = refused(adapter, message, text="hi")

    assert error.code == our_code
    assert error.permanent is (kind == "permanent")
    assert error.throttled is (kind == "throttled")
    # Meta's own code, message, details and trace id stay in the text.
    assert f"Meta error {meta_code}" in error.message
    assert f"Meta says {meta_code}" in error.message
    assert f"details {meta_code}" in error.message
    assert "fbtrace_id AbCdEf" in error.message


def test_outside_the_window_reads_clearly(api, adapter, message):
    body = graph_error_body(
        131047,
        "Re-engagement message",
        details="Message failed to send because more than 24 hours have passed since the "
        "customer last replied to this number.",
    )
    api.route("POST", MESSAGES_PATH, json_answer(body, 400))

    error = refused(adapter, message, text="hi")

    assert error.code == 63016
    assert error.message.startswith("outside the 24-hour window: send an approved template")
    assert "more than 24 hours have passed" in error.message


def test_unknown_graph_code_is_permanent_30008_with_metas_code_and_message(api, adapter, message):
    body = graph_error_body(100, "(#100) Invalid parameter", subcode=2494010)
    api.route("POST", MESSAGES_PATH, json_answer(body, 400))

    error = refused(adapter, message, text="hi")

    assert (error.code, error.permanent, error.throttled) == (30008, True, False)
    assert "HTTP 400, Meta error 100/2494010: (#100) Invalid parameter" in error.message


@pytest.mark.parametrize(
    ("status", "body", "headers", "expected"),
    [
        (401, {}, {}, (20003, True, False, None)),
        (
            403,
            graph_error_body(10, "(#10) Application does not have permission"),
            {},
            (20003, True, False, None),
        ),
        (429, {}, {"Retry-After": "7"}, (20429, False, True, 7.0)),
        (429, graph_error_body(130429, "Rate limit hit"), {}, (63018, False, True, None)),
        (
            500,
            {"error": {"message": "An unknown error occurred", "code": 1}},
            {},
            (30008, False, False, None),
        ),
        (503, None, {}, (30008, False, False, None)),
    ],
)
def test_http_status_fallbacks(api, adapter, message, status, body, headers, expected):
    if body is None:  # a proxy's HTML page, not Graph JSON
        api.route(
            "POST",
            MESSAGES_PATH,
            lambda _r: (status, {"Content-Type": "text/html"}, b"<h1>down</h1>"),
        )
    else:
        api.route("POST", MESSAGES_PATH, json_answer(body, status, headers))

    error = refused(adapter, message, text="hi")

    assert (error.code, error.permanent, error.throttled, error.retry_after) == expected
    assert f"HTTP {status}" in error.message


def test_a_send_left_unanswered_is_failed_not_retried(provider, message):
    # A server that takes the connection and never answers: WhatsApp may have the message,
    # and without an idempotency key a retry could deliver it twice.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        provider.settings = {
            **provider.settings,
            "graph_base_url": f"http://127.0.0.1:{port}",
            "timeout_seconds": 0.3,
        }

        started = time.monotonic()
        error = refused(adapter_for(provider), message, text="hi")

    assert time.monotonic() - started < 2
    assert (error.code, error.permanent, error.throttled) == (30008, True, False)
    assert "did not answer (ReadTimeout" in error.message


def test_connection_refused_is_transient(provider, message):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    provider.settings = {**provider.settings, "graph_base_url": f"http://127.0.0.1:{port}"}

    error = refused(adapter_for(provider), message, text="hi")

    assert (error.code, error.permanent) == (30008, False)
    assert "could not be reached" in error.message


def test_success_without_a_message_id_is_permanent(api, adapter, message):
    api.route("POST", MESSAGES_PATH, json_answer({"messaging_product": "whatsapp"}))

    error = refused(adapter, message, text="hi")

    assert (error.code, error.permanent) == (30008, True)
    assert "without a message id" in error.message


def test_a_later_part_failing_is_permanent_so_sent_parts_are_not_repeated(api, adapter, message):
    calls = {"n": 0}

    def first_ok_then_down(_request):
        calls["n"] += 1
        if calls["n"] == 1:
            return 200, {"Content-Type": "application/json"}, b'{"messages":[{"id":"wamid.1"}]}'
        return 503, {"Content-Type": "application/json"}, b'{"error":{"message":"busy","code":2}}'

    api.route("POST", MESSAGES_PATH, first_ok_then_down)

    error = refused(
        adapter,
        message,
        media_urls=("https://cdn.example.com/a.jpg", "https://cdn.example.com/b.jpg"),
    )

    assert (error.code, error.permanent) == (30008, True)
    assert "accepted 1 of 2 parts (first wamid.1)" in error.message
    assert len(api.received) == 2


# ---------------------------------------------------------------- handshake and signature


def get_request(query: dict) -> WebhookRequest:
    return WebhookRequest("GET", WEBHOOK_URL, {}, b"", query=query)


def test_handshake_answers_the_challenge_for_our_token(adapter):
    answer = adapter.handshake(
        get_request(
            {
                "hub.mode": "subscribe",
                "hub.verify_token": VERIFY_TOKEN,
                "hub.challenge": "1158201444",
            }
        )
    )

    assert (answer.status, answer.body) == (200, "1158201444")


def test_handshake_refuses_another_token(adapter):
    answer = adapter.handshake(
        get_request({"hub.mode": "subscribe", "hub.verify_token": "guess", "hub.challenge": "1"})
    )

    assert answer.status == 403
    assert answer.body != "1"


def test_a_post_is_not_a_handshake(adapter):
    assert adapter.handshake(WebhookRequest("POST", WEBHOOK_URL, {}, b"{}")) is None


def signed(body: bytes, secret: str = APP_SECRET) -> WebhookRequest:
    headers = {meta.SIGNATURE_HEADER: meta.body_signature(secret, body)}
    return WebhookRequest("POST", WEBHOOK_URL, headers, body)


def test_signature_valid(adapter):
    assert adapter.verify_request(signed(b'{"object":"whatsapp_business_account"}')) is True


def test_signature_header_is_hmac_sha256_of_the_raw_body(adapter):
    # Computed independently: HMAC-SHA256("meta-app-secret", body) in hex.
    import hashlib
    import hmac

    body = b'{"object":"whatsapp_business_account","entry":[]}'
    digest = hmac.new(APP_SECRET.encode(), body, hashlib.sha256).hexdigest()
    request = WebhookRequest("POST", WEBHOOK_URL, {"X-Hub-Signature-256": f"sha256={digest}"}, body)

    assert adapter.verify_request(request) is True


def test_signature_over_a_tampered_body_fails(adapter):
    good = signed(b'{"object":"whatsapp_business_account"}')
    tampered = WebhookRequest("POST", WEBHOOK_URL, good.headers, b'{"object":"page"}')

    assert adapter.verify_request(tampered) is False


def test_signature_with_the_wrong_secret_fails(adapter):
    assert adapter.verify_request(signed(b"{}", secret="another-secret")) is False


def test_missing_signature_header_fails(adapter):
    assert adapter.verify_request(WebhookRequest("POST", WEBHOOK_URL, {}, b"{}")) is False


# ---------------------------------------------------------------- parse_webhook


def change(value: dict, field: str = "messages") -> dict:
    return {"value": {"messaging_product": "whatsapp", **value}, "field": field}


METADATA = {"display_phone_number": "15550783881", "phone_number_id": PHONE_NUMBER_ID}
OTHER_METADATA = {"display_phone_number": "15550001111", "phone_number_id": "999000111"}

REALISTIC_WEBHOOK = {
    "object": "whatsapp_business_account",
    "entry": [
        {
            "id": WABA_ID,
            "changes": [
                change(
                    {
                        "metadata": METADATA,
                        "contacts": [{"profile": {"name": "Ana López"}, "wa_id": CUSTOMER_DIGITS}],
                        "messages": [
                            {
                                "from": CUSTOMER_DIGITS,
                                "id": "wamid.text",
                                "timestamp": "1749416383",
                                "type": "text",
                                "text": {"body": "Hola, mi pedido no llegó"},
                            },
                            {
                                "from": CUSTOMER_DIGITS,
                                "id": "wamid.image",
                                "timestamp": "1749416390",
                                "type": "image",
                                "image": {
                                    "caption": "Así llegó",
                                    "mime_type": "image/jpeg",
                                    "sha256": "abc=",
                                    "id": "1003383421387256",
                                },
                            },
                            {
                                "context": {"from": "15550783881", "id": "wamid.template1"},
                                "from": CUSTOMER_DIGITS,
                                "id": "wamid.button",
                                "timestamp": "1749416400",
                                "type": "button",
                                "button": {"payload": "TRACK-42", "text": "Seguir pedido"},
                            },
                            {
                                "context": {"from": "15550783881", "id": "wamid.buttons1"},
                                "from": CUSTOMER_DIGITS,
                                "id": "wamid.reply",
                                "timestamp": "1749416410",
                                "type": "interactive",
                                "interactive": {
                                    "type": "button_reply",
                                    "button_reply": {"id": "YES", "title": "Sí"},
                                },
                            },
                            {
                                "from": CUSTOMER_DIGITS,
                                "id": "wamid.reaction",
                                "timestamp": "1749416415",
                                "type": "reaction",
                                "reaction": {"message_id": "wamid.x", "emoji": "👍"},
                            },
                            {
                                "from": CUSTOMER_DIGITS,
                                "id": "wamid.hologram",
                                "timestamp": "1749416416",
                                "type": "hologram",
                                "hologram": {"shape": "cube"},
                            },
                        ],
                    }
                ),
                change(
                    {"event": "APPROVED", "message_template_id": 1},
                    "message_template_status_update",
                ),
            ],
        },
        {
            "id": WABA_ID,
            "changes": [
                change(
                    {
                        "metadata": OTHER_METADATA,
                        "contacts": [{"profile": {"name": "Luis"}, "wa_id": "16505551234"}],
                        "messages": [
                            {
                                "from": "16505551234",
                                "id": "wamid.list",
                                "timestamp": "1749416420",
                                "type": "interactive",
                                "interactive": {
                                    "type": "list_reply",
                                    "list_reply": {
                                        "id": "slot-9",
                                        "title": "9:00",
                                        "description": "With Dr. Ruiz",
                                    },
                                },
                            },
                            {
                                "from": "16505551234",
                                "id": "wamid.location",
                                "timestamp": "1749416430",
                                "type": "location",
                                "location": {
                                    "latitude": 19.4326,
                                    "longitude": -99.1332,
                                    "name": "Zócalo",
                                    "address": "Plaza de la Constitución, CDMX",
                                },
                                "brand_new_field": {"ignored": True},
                            },
                        ],
                        "statuses": [
                            {
                                "id": "wamid.out1",
                                "status": "sent",
                                "timestamp": "1749416500",
                                "recipient_id": "16505551234",
                                "conversation": {"id": "c1", "origin": {"type": "service"}},
                                "pricing": {"billable": True, "category": "service"},
                            },
                            {
                                "id": "wamid.out1",
                                "status": "delivered",
                                "timestamp": "1749416501",
                                "recipient_id": "16505551234",
                            },
                            {
                                "id": "wamid.out1",
                                "status": "read",
                                "timestamp": "1749416502",
                                "recipient_id": "16505551234",
                            },
                            {
                                "id": "wamid.out2",
                                "status": "failed",
                                "timestamp": "1749416503",
                                "recipient_id": "16505551234",
                                "errors": [
                                    {
                                        "code": 131047,
                                        "title": "Re-engagement message",
                                        "message": "Re-engagement message",
                                        "error_data": {
                                            "details": "More than 24 hours have passed."
                                        },
                                    }
                                ],
                            },
                            {
                                "id": "wamid.out3",
                                "status": "deleted",
                                "timestamp": "1749416504",
                                "recipient_id": "16505551234",
                            },
                        ],
                    }
                )
            ],
        },
    ],
}


def at(epoch: int) -> datetime:
    return datetime.fromtimestamp(epoch, tz=UTC)


def parse(adapter, payload) -> tuple:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    events = adapter.parse_webhook(signed(body))
    return events.messages, events.statuses


def test_realistic_multi_entry_webhook(adapter):
    messages, statuses = parse(adapter, REALISTIC_WEBHOOK)

    by_id = {m.provider_message_id: m for m in messages}
    # The reaction and the unknown type are skipped; the template status field too.
    assert list(by_id) == [
        "wamid.text",
        "wamid.image",
        "wamid.button",
        "wamid.reply",
        "wamid.list",
        "wamid.location",
    ]

    text = by_id["wamid.text"]
    # WhatsApp's Mexican wa_id keeps the "1" Mexico's number plan dropped: stored without it.
    assert text.from_address == "whatsapp:+525512345678"
    assert (text.to_address, text.to_ref) == ("whatsapp:+15550783881", PHONE_NUMBER_ID)
    assert text.body == "Hola, mi pedido no llegó"
    assert text.profile_name == "Ana López"
    assert text.timestamp == at(1749416383)
    assert text.timestamp.tzinfo is not None
    assert dict(text.extra) == {"WaId": CUSTOMER_DIGITS, "ProfileName": "Ana López"}

    image = by_id["wamid.image"]
    assert image.body == "Así llegó"
    assert image.media == (
        InboundMedia(provider_media_id="1003383421387256", content_type="image/jpeg"),
    )

    button = by_id["wamid.button"]
    assert button.body == "Seguir pedido"
    assert button.extra["ButtonText"] == "Seguir pedido"
    assert button.extra["ButtonPayload"] == "TRACK-42"
    assert button.extra["ReplyToProviderId"] == "wamid.template1"

    reply = by_id["wamid.reply"]
    assert reply.body == "Sí"
    assert (reply.extra["ButtonPayload"], reply.extra["ButtonText"]) == ("YES", "Sí")
    assert reply.extra["ReplyToProviderId"] == "wamid.buttons1"

    picked = by_id["wamid.list"]
    assert picked.from_address == "whatsapp:+16505551234"
    assert (picked.to_address, picked.to_ref) == ("whatsapp:+15550001111", "999000111")
    assert picked.body == "9:00"
    assert (picked.extra["ButtonPayload"], picked.extra["ButtonText"]) == ("slot-9", "9:00")
    assert picked.profile_name == "Luis"

    location = by_id["wamid.location"]
    assert location.body == ""
    assert {k: location.extra[k] for k in ("Latitude", "Longitude", "Address", "Label")} == {
        "Latitude": "19.4326",
        "Longitude": "-99.1332",
        "Address": "Plaza de la Constitución, CDMX",
        "Label": "Zócalo",
    }

    assert [(s.provider_message_id, s.status) for s in statuses] == [
        ("wamid.out1", "sent"),
        ("wamid.out1", "delivered"),
        ("wamid.out1", "read"),
        ("wamid.out2", "failed"),
    ]
    sent, _, read, failed = statuses
    assert sent.timestamp == at(1749416500)
    assert read.timestamp == at(1749416502)
    assert (sent.recipient, sent.sender_ref) == ("whatsapp:+16505551234", "999000111")
    assert sent.error_code is None and sent.watermark is None
    assert failed.error_code == 63016
    assert "Meta error 131047" in failed.error_message
    assert "Re-engagement message" in failed.error_message
    assert "More than 24 hours have passed." in failed.error_message


def test_document_filename_and_sticker(adapter):
    payload = {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "changes": [
                    change(
                        {
                            "metadata": METADATA,
                            "messages": [
                                {
                                    "from": CUSTOMER_DIGITS,
                                    "id": "wamid.doc",
                                    "timestamp": "1749416383",
                                    "type": "document",
                                    "document": {
                                        "filename": "factura.pdf",
                                        "mime_type": "application/pdf",
                                        "id": "555",
                                    },
                                },
                                {
                                    "from": CUSTOMER_DIGITS,
                                    "id": "wamid.sticker",
                                    "timestamp": "1749416384",
                                    "type": "sticker",
                                    "sticker": {
                                        "mime_type": "image/webp",
                                        "id": "556",
                                        "animated": False,
                                    },
                                },
                            ],
                        }
                    )
                ]
            }
        ],
    }

    document, sticker = parse(adapter, payload)[0]

    assert document.extra["Filename"] == "factura.pdf"
    assert document.media == (
        InboundMedia(provider_media_id="555", content_type="application/pdf"),
    )
    assert document.body == ""
    assert sticker.media == (InboundMedia(provider_media_id="556", content_type="image/webp"),)
    # No contacts[]: the WaId is the sender's number, no profile name.
    assert sticker.extra["WaId"] == CUSTOMER_DIGITS
    assert sticker.profile_name == ""


def test_unknown_type_with_text_is_kept(adapter):
    payload = {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "changes": [
                    change(
                        {
                            "metadata": METADATA,
                            "messages": [
                                {
                                    "from": CUSTOMER_DIGITS,
                                    "id": "wamid.order",
                                    "type": "order",
                                    "order": {"catalog_id": "1", "text": "Two of these, please"},
                                }
                            ],
                        }
                    )
                ]
            }
        ],
    }

    [order] = parse(adapter, payload)[0]

    assert order.body == "Two of these, please"
    assert order.timestamp is None


def test_a_webhook_of_only_other_fields_has_no_events(adapter):
    payload = {
        "object": "whatsapp_business_account",
        "entry": [{"id": WABA_ID, "changes": [change({"decision": "APPROVED"}, "account_update")]}],
    }

    assert parse(adapter, payload) == ((), ())


def malformed(**value_overrides) -> dict:
    message = {
        "from": CUSTOMER_DIGITS,
        "id": "wamid.a",
        "timestamp": "1",
        "type": "text",
        "text": {"body": "a"},
    }
    second = {**message, "id": "wamid.b", **value_overrides.pop("second", {})}
    for key in value_overrides.pop("drop_from_second", ()):
        second.pop(key)
    value = {"metadata": METADATA, "messages": [message, second], **value_overrides}
    return {"object": "whatsapp_business_account", "entry": [{"changes": [change(value)]}]}


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"not json {", "body is not JSON"),
        (b"[1, 2]", "body is not an object"),
        (json.dumps({"object": "page", "entry": []}).encode(), "object is 'page', expected"),
        (json.dumps({"object": "whatsapp_business_account"}).encode(), "body.entry is missing"),
        (
            malformed(drop_from_second=("from",)),
            "entry[0].changes[0].value.messages[1].from is missing",
        ),
        (
            malformed(drop_from_second=("id",)),
            "entry[0].changes[0].value.messages[1].id is missing",
        ),
        (
            malformed(second={"text": {}}),
            "entry[0].changes[0].value.messages[1].text.body is missing",
        ),
        (
            malformed(second={"timestamp": "soon"}),
            "entry[0].changes[0].value.messages[1].timestamp is not epoch seconds",
        ),
        (
            malformed(second={"type": "image", "image": {"mime_type": "image/png"}}),
            "entry[0].changes[0].value.messages[1].image.id is missing",
        ),
        (malformed(messages="oops"), "entry[0].changes[0].value.messages is not a list"),
        (
            malformed(metadata={"display_phone_number": "1555"}),
            "entry[0].changes[0].value.metadata.phone_number_id is missing",
        ),
        (
            malformed(statuses=[{"status": "sent"}]),
            "entry[0].changes[0].value.statuses[0].id is missing",
        ),
    ],
)
def test_malformed_payloads_name_the_field(adapter, body, reason):
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()

    with pytest.raises(WebhookPayloadError) as caught:
        adapter.parse_webhook(signed(raw))

    assert reason in caught.value.reason


# ---------------------------------------------------------------- fetch_media


MEDIA_ID = "1003383421387256"
MEDIA_BYTES = b"\xff\xd8\xff\xe0" + b"jpeg" * 100


def media_info(api, size: int | None = len(MEDIA_BYTES)) -> dict:
    info = {
        "messaging_product": "whatsapp",
        "url": f"{api.url}/whatsapp_business/attachments/?mid={MEDIA_ID}&ext=1&hash=x",
        "mime_type": "image/jpeg",
        "sha256": "abc",
        "id": MEDIA_ID,
    }
    if size is not None:
        info["file_size"] = size
    return info


def test_fetch_media_is_two_steps_with_the_bearer_on_both(api, adapter):
    api.route("GET", f"/{VERSION}/{MEDIA_ID}", json_answer(media_info(api)))
    api.route(
        "GET",
        "/whatsapp_business/attachments/",
        lambda _r: (200, {"Content-Type": "application/octet-stream"}, MEDIA_BYTES),
    )

    media = adapter.fetch_media(InboundMedia(provider_media_id=MEDIA_ID, content_type="image/jpeg"))

    assert media.content == MEDIA_BYTES
    assert media.content_type == "image/jpeg"  # Meta's mime_type, not the CDN's header
    lookup, download = api.received
    assert (lookup.method, lookup.path) == ("GET", f"/{VERSION}/{MEDIA_ID}")
    assert (download.method, download.path) == (
        "GET",
        f"/whatsapp_business/attachments/?mid={MEDIA_ID}&ext=1&hash=x",
    )
    assert headers_of(lookup)["authorization"] == f"Bearer {ACCESS_TOKEN}"
    assert headers_of(download)["authorization"] == f"Bearer {ACCESS_TOKEN}"


def test_fetch_media_refuses_a_declared_size_over_the_cap_without_downloading(api, provider):
    provider.settings = {**provider.settings, "max_media_bytes": 100}
    api.route("GET", f"/{VERSION}/{MEDIA_ID}", json_answer(media_info(api, size=101)))

    with pytest.raises(ProviderError) as caught:
        adapter_for(provider).fetch_media(InboundMedia(provider_media_id=MEDIA_ID))

    assert (caught.value.code, caught.value.permanent) == (30008, True)
    assert "max_media_bytes (100)" in caught.value.message
    assert len(api.received) == 1


def test_fetch_media_stops_a_download_that_outgrows_the_cap(api, provider):
    provider.settings = {**provider.settings, "max_media_bytes": 100}
    api.route("GET", f"/{VERSION}/{MEDIA_ID}", json_answer(media_info(api, size=None)))
    api.route("GET", "/whatsapp_business/attachments/", lambda _r: (200, {}, b"x" * 5000))

    with pytest.raises(ProviderError) as caught:
        adapter_for(provider).fetch_media(InboundMedia(provider_media_id=MEDIA_ID))

    assert caught.value.permanent is True
    assert "larger than max_media_bytes" in caught.value.message
    assert len(api.received) == 2


def test_fetch_media_of_an_unknown_id_is_permanent(api, adapter):
    body = graph_error_body(100, "Unsupported get request.", subcode=33)
    api.route("GET", f"/{VERSION}/{MEDIA_ID}", json_answer(body, 400))

    with pytest.raises(ProviderError) as caught:
        adapter.fetch_media(InboundMedia(provider_media_id=MEDIA_ID))

    assert caught.value.permanent is True
    assert "Unsupported get request." in caught.value.message


def test_fetch_media_download_server_error_is_transient(api, adapter):
    api.route("GET", f"/{VERSION}/{MEDIA_ID}", json_answer(media_info(api)))
    api.route("GET", "/whatsapp_business/attachments/", lambda _r: (502, {}, b"bad gateway"))

    with pytest.raises(ProviderError) as caught:
        adapter.fetch_media(InboundMedia(provider_media_id=MEDIA_ID))

    assert (caught.value.code, caught.value.permanent) == (30008, False)


# ---------------------------------------------------------------- templates


def test_templates_list_follows_paging_next(api, provider):
    second_page = f"{api.url}{TEMPLATES_PATH}?limit=100&after=QVFIUmlm"

    def pages(request):
        if "after=QVFIUmlm" in request.path:
            payload = {
                "data": [{"name": "promo", "language": "es_MX", "status": "PENDING", "id": "3"}],
                "paging": {"cursors": {"before": "b2", "after": "a2"}},
            }
        else:
            payload = {
                "data": [
                    {"name": "hello_world", "language": "en_US", "status": "APPROVED", "id": "1"},
                    {"name": "order_update", "language": "es_MX", "status": "APPROVED", "id": "2"},
                ],
                "paging": {"cursors": {"before": "b1", "after": "QVFIUmlm"}, "next": second_page},
            }
        return 200, {"Content-Type": "application/json"}, json.dumps(payload).encode()

    api.route("GET", TEMPLATES_PATH, pages)

    templates = wa.templates_list(provider)

    assert [t["name"] for t in templates] == ["hello_world", "order_update", "promo"]
    first, second = api.received
    assert first.path == f"{TEMPLATES_PATH}?limit=100"
    assert second.path == f"{TEMPLATES_PATH}?limit=100&after=QVFIUmlm"
    assert all(headers_of(r)["authorization"] == f"Bearer {ACCESS_TOKEN}" for r in api.received)


def test_template_submit_posts_metas_create_shape(api, provider):
    api.route(
        "POST",
        TEMPLATES_PATH,
        json_answer({"id": "594425479261596", "status": "PENDING", "category": "UTILITY"}),
    )
    payload = {
        "name": "order_update",
        "language": "es_MX",
        "category": "UTILITY",
        "components": [
            {
                "type": "BODY",
                "text": "Hola {{1}}, tu pedido llega {{2}}.",
                "example": {"body_text": [["Ana", "mañana"]]},
            },
            {"type": "BUTTONS", "buttons": [{"type": "QUICK_REPLY", "text": "Seguir pedido"}]},
        ],
    }

    answer = wa.template_submit(provider, payload)

    assert answer == {"id": "594425479261596", "status": "PENDING", "category": "UTILITY"}
    [request] = api.received
    assert (request.method, request.path) == ("POST", TEMPLATES_PATH)
    assert json.loads(request.body) == payload
    assert headers_of(request)["authorization"] == f"Bearer {ACCESS_TOKEN}"


def test_template_submit_refused_raises(api, provider):
    body = graph_error_body(
        100,
        "Invalid parameter",
        subcode=2388023,
        details="Message template language is being deleted",
    )
    api.route("POST", TEMPLATES_PATH, json_answer(body, 400))

    with pytest.raises(ProviderError) as caught:
        wa.template_submit(provider, {"name": "x", "language": "en_US", "category": "UTILITY"})

    assert "Message template language is being deleted" in caught.value.message


def test_template_delete_by_name(api, provider):
    api.route("DELETE", TEMPLATES_PATH, json_answer({"success": True}))

    assert wa.template_delete(provider, "order_update") is None

    [request] = api.received
    assert (request.method, request.path) == ("DELETE", f"{TEMPLATES_PATH}?name=order_update")
    assert headers_of(request)["authorization"] == f"Bearer {ACCESS_TOKEN}"


def test_template_delete_not_done_raises(api, provider):
    api.route("DELETE", TEMPLATES_PATH, json_answer({"success": False}))

    with pytest.raises(ProviderError, match="did not delete template 'gone'"):
        wa.template_delete(provider, "gone")


def test_templates_need_a_waba_id(api, provider):
    provider.settings = {k: v for k, v in provider.settings.items() if k != "waba_id"}

    with pytest.raises(ProviderError, match="no waba_id"):
        wa.templates_list(provider)
    assert api.received == []
