"""The Twilio adapter against a local server speaking Twilio's wire format: the exact form
Twilio's Messages API receives, its error bodies, `X-Twilio-Signature`, the inbound and
status webhooks, and media downloads that redirect to a CDN."""

import base64
import hashlib
import json
import socket
import time
from types import ModuleType
from urllib.parse import parse_qs, urlencode

import pytest
from django.http import HttpResponse
from django.urls import include, path
from django.utils.datastructures import MultiValueDict
from twilio.request_validator import RequestValidator

from messaging.models import Message, ProviderAccount, Sender
from messaging.providers import (
    InboundMedia,
    ListPicker,
    ListRow,
    OutboundContent,
    ProviderError,
    QuickReply,
    TemplateRef,
    WebhookEvents,
    WebhookPayloadError,
    WebhookRequest,
    adapter_for,
)
from messaging.providers.twilio import TwilioAdapter
from messaging.services.providers import provider_credentials_set
from tests.support.http import FakeApi, json_answer

ACCOUNT_SID = "AC" + "a" * 32
AUTH_TOKEN = "twilio-auth-token"
KEY_SID = "SK" + "b" * 32
KEY_SECRET = "api-key-secret"
MESSAGE_SID = "SM" + "c" * 32
OUR_SID = "SM" + "d" * 32
CUSTOMER = "+14155550123"
LONG_CODE = "+14155550100"
WHATSAPP = "whatsapp:+14155550199"
MESSAGES_PATH = f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
WEBHOOK_URL = "https://cc.example.com/webhooks/p/PA123"
FORM = "application/x-www-form-urlencoded"


def _webhook_view(request, provider_sid):  # pragma: no cover - only reversed
    return HttpResponse()


# The route another module adds (`/webhooks/p/<provider_sid>`), so these tests do not depend
# on when it lands; `@pytest.mark.urls(__name__)` uses it.
urlpatterns = [
    path(
        "webhooks/",
        include(([path("p/<str:provider_sid>", _webhook_view, name="provider")], "webhooks")),
    )
]

NO_ROUTES = ModuleType("no_routes")
NO_ROUTES.urlpatterns = []


# ---------------------------------------------------------------- fixtures and helpers


def fake_server() -> FakeApi:
    server = FakeApi()
    # The adapter hangs up on purpose (timeouts, media over the cap): not worth a traceback.
    server.server.handle_error = lambda *_args: None
    return server


@pytest.fixture
def provider(account):
    """A Twilio account; its API base is a closed port until a test asks for `api`."""
    provider = ProviderAccount.objects.create(
        account=account,
        name="Twilio",
        kind="twilio",
        settings={"api_base_url": "http://127.0.0.1:9", "timeout_seconds": 0.2},
    )
    provider_credentials_set(provider, {"account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN})
    return provider


@pytest.fixture
def api(provider):
    """Twilio's API on a local port, the provider pointed at it."""
    server = fake_server()
    provider.settings = {**provider.settings, "api_base_url": server.url}
    provider.save(update_fields=["settings"])
    yield server
    server.close()


@pytest.fixture
def adapter(provider):
    return adapter_for(provider)


def sender(provider, address=LONG_CODE, kind="long_code") -> Sender:
    return Sender.objects.create(
        account=provider.account, provider=provider, kind=kind, address=address
    )


def outbound(provider, *, to=CUSTOMER, from_=LONG_CODE, kind="long_code") -> Message:
    """The message as the engine hands it over (the adapter only reads it)."""
    return Message(
        sid=OUR_SID,
        account=provider.account,
        sender=sender(provider, from_, kind),
        to_address=to,
        num_segments=1,
    )


def twilio_message(to=CUSTOMER, from_=LONG_CODE, body="Hola") -> dict:
    """Twilio's answer to a create: the Message resource (counts are strings)."""
    return {
        "sid": MESSAGE_SID,
        "account_sid": ACCOUNT_SID,
        "messaging_service_sid": None,
        "from": from_,
        "to": to,
        "body": body,
        "status": "queued",
        "direction": "outbound-api",
        "num_segments": "1",
        "num_media": "0",
        "error_code": None,
        "error_message": None,
        "price": None,
        "price_unit": "USD",
        "api_version": "2010-04-01",
        "uri": f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/{MESSAGE_SID}.json",
        "date_created": "Thu, 30 Jul 2015 20:12:31 +0000",
        "date_updated": "Thu, 30 Jul 2015 20:12:31 +0000",
        "date_sent": None,
    }


def twilio_error(code: int, message: str, status: int) -> dict:
    return {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }


def accept_messages(api, **kwargs) -> None:
    api.route("POST", MESSAGES_PATH, json_answer(twilio_message(**kwargs), 201))


def header(received, name: str) -> str | None:
    return {key.lower(): value for key, value in received.headers.items()}.get(name.lower())


def basic(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


def sent_form(api) -> dict[str, list[str]]:
    (request,) = api.received
    return parse_qs(request.body.decode(), keep_blank_values=True)


def send(adapter, message, **content) -> object:
    return adapter.send(message, content=OutboundContent(**content), idempotency_key=message.sid)


def refused(adapter, message, **content) -> ProviderError:
    with pytest.raises(ProviderError) as info:
        send(adapter, message, **content)
    return info.value


# ---------------------------------------------------------------- sending


def test_the_registered_adapter_is_not_idempotent_and_goes_over_the_network(adapter):
    assert isinstance(adapter, TwilioAdapter)
    assert adapter.idempotent is False
    assert adapter.network is True


def test_sms_posts_the_exact_form_with_basic_auth(adapter, provider, api, settings):
    settings.PUBLIC_BASE_URL = ""
    accept_messages(api)

    result = send(adapter, outbound(provider), text="Hola")

    assert result.provider_message_id == MESSAGE_SID
    (request,) = api.received
    assert request.method == "POST"
    assert request.path == MESSAGES_PATH
    assert header(request, "Authorization") == basic(ACCOUNT_SID, AUTH_TOKEN)
    assert header(request, "Content-Type") == FORM
    assert header(request, "Accept") == "application/json"
    # No StatusCallback without a public URL: Twilio could not reach us.
    assert sent_form(api) == {"To": [CUSTOMER], "From": [LONG_CODE], "Body": ["Hola"]}


@pytest.mark.urls(__name__)
def test_mms_repeats_media_url_and_asks_for_receipts_at_our_webhook(
    adapter, provider, api, settings
):
    settings.PUBLIC_BASE_URL = "https://cc.example.com"
    accept_messages(api)
    media = ("https://cdn.example.com/a.jpg", "https://cdn.example.com/b.png")

    send(adapter, outbound(provider), text="Fotos", media_urls=media)

    assert sent_form(api) == {
        "To": [CUSTOMER],
        "From": [LONG_CODE],
        "Body": ["Fotos"],
        "MediaUrl": list(media),
        "StatusCallback": [f"https://cc.example.com/webhooks/p/{provider.sid}"],
    }


def test_no_status_callback_when_our_webhook_route_is_missing(adapter, provider, api, settings):
    settings.PUBLIC_BASE_URL = "https://cc.example.com"
    settings.ROOT_URLCONF = NO_ROUTES  # reverse() fails
    accept_messages(api)

    send(adapter, outbound(provider), text="Hola")

    assert "StatusCallback" not in sent_form(api)


def test_media_only_sends_no_body(adapter, provider, api, settings):
    settings.PUBLIC_BASE_URL = ""
    accept_messages(api)

    send(adapter, outbound(provider), media_urls=("https://cdn.example.com/a.jpg",))

    assert sent_form(api) == {
        "To": [CUSTOMER],
        "From": [LONG_CODE],
        "MediaUrl": ["https://cdn.example.com/a.jpg"],
    }


def test_api_key_authenticates_sends_on_the_account_path(adapter, provider, api):
    provider_credentials_set(
        provider,
        {
            "account_sid": ACCOUNT_SID,
            "auth_token": AUTH_TOKEN,
            "api_key_sid": KEY_SID,
            "api_key_secret": KEY_SECRET,
        },
    )
    accept_messages(api)

    send(adapter, outbound(provider), text="Hola")

    (request,) = api.received
    assert request.path == MESSAGES_PATH
    assert header(request, "Authorization") == basic(KEY_SID, KEY_SECRET)


def test_whatsapp_keeps_the_whatsapp_prefix_on_both_sides(adapter, provider, api, settings):
    settings.PUBLIC_BASE_URL = ""
    accept_messages(api, to="whatsapp:" + CUSTOMER, from_=WHATSAPP)
    message = outbound(provider, to="whatsapp:" + CUSTOMER, from_=WHATSAPP, kind="whatsapp")

    send(adapter, message, text="Hola")

    assert sent_form(api) == {
        "To": ["whatsapp:" + CUSTOMER],
        "From": [WHATSAPP],
        "Body": ["Hola"],
    }


def test_quick_replies_and_list_rows_become_a_numbered_list(adapter, provider, api):
    accept_messages(api)
    picker = ListPicker(
        button="Ver opciones",
        rows=(ListRow(id="b", title="Billing", description="Invoices"), ListRow("s", "Sales")),
    )

    send(
        adapter,
        outbound(provider),
        text="How can we help?",
        quick_replies=(QuickReply(payload="AGENT", title="Talk to an agent"),),
        list_picker=picker,
    )

    assert sent_form(api)["Body"] == [
        "How can we help?\n\n1. Talk to an agent\n2. Billing - Invoices\n3. Sales"
    ]


def test_a_template_without_text_needs_a_content_sid(adapter, provider, api):
    error = refused(
        adapter, outbound(provider), template=TemplateRef(name="order_update", language="es_MX")
    )

    assert error.code == 21602
    assert error.permanent is True
    assert "Content SID" in error.message and "order_update" in error.message
    assert api.received == []


def test_a_template_with_its_text_fallback_sends_the_text(adapter, provider, api):
    accept_messages(api)

    send(
        adapter,
        outbound(provider),
        text="Your order shipped",
        template=TemplateRef(name="order_update", language="en_US"),
    )

    assert sent_form(api)["Body"] == ["Your order shipped"]


def test_missing_credentials_fail_without_calling_twilio(adapter, provider, api):
    provider_credentials_set(provider, {"account_sid": ACCOUNT_SID})

    error = refused(adapter, outbound(provider), text="Hola")

    assert (error.code, error.permanent) == (20003, True)
    assert "auth_token" in error.message
    assert api.received == []


@pytest.mark.parametrize(
    ("code", "text"),
    [
        (21211, "The 'To' number +1415555 is not a valid phone number."),
        (21610, "Attempt to send to unsubscribed recipient"),
        (21408, "Permission to send an SMS has not been enabled for the region"),
        (21606, "The From phone number is not a valid, SMS-capable inbound phone number"),
        (30007, "Message filtered"),
    ],
)
def test_a_refusal_keeps_twilios_code_and_message(adapter, provider, api, code, text):
    api.route("POST", MESSAGES_PATH, json_answer(twilio_error(code, text, 400), 400))

    error = refused(adapter, outbound(provider), text="Hola")

    assert (error.code, error.permanent, error.throttled) == (code, True, False)
    assert text in error.message
    assert "HTTP 400" in error.message


def test_an_rfc_9457_problem_body_keeps_its_code_title_and_detail(adapter, provider, api):
    problem = {
        "type": "https://www.twilio.com/docs/errors/21211",
        "title": "Invalid 'To' Phone Number",
        "status": 400,
        "code": 21211,
        "detail": "+1415555 is not a valid phone number",
    }
    api.route("POST", MESSAGES_PATH, json_answer(problem, 400))

    error = refused(adapter, outbound(provider), text="Hola")

    assert (error.code, error.permanent) == (21211, True)
    assert "Invalid 'To' Phone Number: +1415555 is not a valid phone number" in error.message


def test_401_is_a_permanent_authentication_failure(adapter, provider, api):
    api.route("POST", MESSAGES_PATH, json_answer(twilio_error(20003, "Authenticate", 401), 401))

    error = refused(adapter, outbound(provider), text="Hola")

    assert (error.code, error.permanent) == (20003, True)
    assert "authentication failed" in error.message
    assert "Authenticate" in error.message


def test_403_is_permanent_and_says_forbidden(adapter, provider, api):
    api.route(
        "POST",
        MESSAGES_PATH,
        json_answer(twilio_error(20003, "Account suspended", 403), 403),
    )

    error = refused(adapter, outbound(provider), text="Hola")

    assert (error.code, error.permanent) == (20003, True)
    assert "forbidden" in error.message and "Account suspended" in error.message


def test_429_is_transient_throttling_with_retry_after(adapter, provider, api):
    api.route(
        "POST",
        MESSAGES_PATH,
        json_answer(
            twilio_error(20429, "Too Many Requests", 429), 429, headers={"Retry-After": "7"}
        ),
    )

    error = refused(adapter, outbound(provider), text="Hola")

    assert (error.code, error.permanent, error.throttled) == (20429, False, True)
    assert error.retry_after == 7.0


def test_code_20429_throttles_even_without_http_429(adapter, provider, api):
    api.route(
        "POST", MESSAGES_PATH, json_answer(twilio_error(20429, "Too Many Requests", 400), 400)
    )

    error = refused(adapter, outbound(provider), text="Hola")

    assert (error.permanent, error.throttled, error.retry_after) == (False, True, None)


def test_5xx_is_transient_and_keeps_twilios_code_in_the_message(adapter, provider, api):
    api.route(
        "POST",
        MESSAGES_PATH,
        json_answer(twilio_error(20500, "Internal Server Error", 500), 500),
    )

    error = refused(adapter, outbound(provider), text="Hola")

    assert (error.code, error.permanent, error.throttled) == (30008, False, False)
    assert "HTTP 500" in error.message and "20500" in error.message


def test_a_5xx_without_a_json_body_is_transient(adapter, provider, api):
    api.route("POST", MESSAGES_PATH, lambda _r: (503, {"Content-Type": "text/html"}, b"<h1>"))

    error = refused(adapter, outbound(provider), text="Hola")

    assert (error.code, error.permanent) == (30008, False)
    assert "HTTP 503" in error.message


def test_a_send_left_unanswered_is_failed_not_retried(adapter, provider, api):
    # Twilio took the request and may have queued the message; without an idempotency key a
    # retry could send it twice.
    def slow(_request):
        time.sleep(1.0)
        return 201, {"Content-Type": "application/json"}, json.dumps(twilio_message()).encode()

    api.route("POST", MESSAGES_PATH, slow)
    started = time.monotonic()

    error = refused(adapter, outbound(provider), text="Hola")

    assert time.monotonic() - started < 0.9  # the 0.2 s timeout applied
    assert (error.code, error.permanent) == (30008, True)
    assert "did not answer (ReadTimeout" in error.message


def test_connection_refused_is_transient_30008(adapter, provider):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    provider.settings = {"api_base_url": f"http://127.0.0.1:{port}"}

    error = refused(adapter, outbound(provider), text="Hola")

    assert (error.code, error.permanent) == (30008, False)
    assert "ConnectionError" in error.message


# ---------------------------------------------------------------- signatures


def signed(token: str, url: str, form: dict[str, list[str]]) -> WebhookRequest:
    """A webhook as Twilio sends it, signed by the `twilio` package's own validator."""
    signature = RequestValidator(token).compute_signature(url, MultiValueDict(form))
    return WebhookRequest(
        method="POST",
        url=url,
        headers={"Content-Type": FORM, "X-Twilio-Signature": signature},
        body=urlencode(form, doseq=True).encode(),
        form=form,
    )


VECTOR_URL = "https://mycompany.com/myapp.php?foo=1&bar=2"
VECTOR_FORM = {
    "CallSid": ["CA1234567890ABCDE"],
    "Caller": ["+14158675309"],
    "Digits": ["1234"],
    "From": ["+14158675309"],
    "To": ["+18005551212"],
}


def with_form(request: WebhookRequest, form: dict[str, list[str]], url=None) -> WebhookRequest:
    return WebhookRequest(
        method=request.method,
        url=url or request.url,
        headers=request.headers,
        body=request.body,
        form=form,
    )


def test_reference_test_vector_validates(adapter, provider):
    provider_credentials_set(provider, {"account_sid": ACCOUNT_SID, "auth_token": "12345"})
    request = WebhookRequest(
        method="POST",
        url=VECTOR_URL,
        headers={"Content-Type": FORM, "X-Twilio-Signature": "RSOYDt4T1cUTdK1PDd93/VVr8B8="},
        body=b"",
        form=VECTOR_FORM,
    )

    assert adapter.verify_request(request) is True
    assert adapter.verify_request(with_form(request, {**VECTOR_FORM, "Digits": ["1235"]})) is False


@pytest.mark.parametrize(
    ("signed_url", "requested_url"),
    [
        ("https://mycompany.com/myapp.php?foo=1", "https://mycompany.com:443/myapp.php?foo=1"),
        ("https://mycompany.com:443/myapp.php?foo=1", "https://mycompany.com/myapp.php?foo=1"),
    ],
)
def test_the_url_validates_with_or_without_the_default_port(adapter, signed_url, requested_url):
    request = signed(AUTH_TOKEN, signed_url, {"Body": ["hi"]})

    assert adapter.verify_request(with_form(request, request.form, url=requested_url)) is True
    other_port = "https://mycompany.com:8443/myapp.php?foo=1"
    assert adapter.verify_request(with_form(request, request.form, url=other_port)) is False


def test_a_tampered_parameter_url_or_extra_parameter_fails(adapter):
    form = {"From": [CUSTOMER], "To": [LONG_CODE], "Body": ["hola"]}
    request = signed(AUTH_TOKEN, WEBHOOK_URL, form)
    assert adapter.verify_request(request) is True

    assert adapter.verify_request(with_form(request, {**form, "Body": ["HOLA"]})) is False
    assert adapter.verify_request(with_form(request, {**form, "NumMedia": ["0"]})) is False
    assert adapter.verify_request(with_form(request, form, url=WEBHOOK_URL + "?x=1")) is False


def test_every_value_of_a_repeated_parameter_is_signed(adapter):
    form = {"From": [CUSTOMER], "Tag": ["b", "a"]}
    request = signed(AUTH_TOKEN, WEBHOOK_URL, form)
    assert adapter.verify_request(request) is True

    assert adapter.verify_request(with_form(request, {**form, "Tag": ["b"]})) is False
    # Values are signed sorted, so their order on the wire does not matter.
    assert adapter.verify_request(with_form(request, {**form, "Tag": ["a", "b"]})) is True


def test_a_raw_form_body_is_verified_when_the_view_did_not_parse_it(adapter):
    request = signed(AUTH_TOKEN, WEBHOOK_URL, {"From": [CUSTOMER], "Body": ["hola"]})

    assert adapter.verify_request(with_form(request, {})) is True
    tampered = WebhookRequest("POST", WEBHOOK_URL, request.headers, b"From=x&Body=hola")
    assert adapter.verify_request(tampered) is False


def test_missing_signature_token_or_wrong_token_fails(adapter, provider):
    form = {"From": [CUSTOMER]}
    good = signed(AUTH_TOKEN, WEBHOOK_URL, form)
    no_header = WebhookRequest("POST", WEBHOOK_URL, {"Content-Type": FORM}, good.body, form=form)

    assert adapter.verify_request(no_header) is False
    assert adapter.verify_request(signed("another-token", WEBHOOK_URL, form)) is False
    provider_credentials_set(provider, {"account_sid": ACCOUNT_SID})
    assert adapter.verify_request(good) is False


def test_webhooks_are_signed_with_the_auth_token_even_with_an_api_key(adapter, provider):
    provider_credentials_set(
        provider,
        {
            "account_sid": ACCOUNT_SID,
            "auth_token": AUTH_TOKEN,
            "api_key_sid": KEY_SID,
            "api_key_secret": KEY_SECRET,
        },
    )
    form = {"From": [CUSTOMER]}

    assert adapter.verify_request(signed(AUTH_TOKEN, WEBHOOK_URL, form)) is True
    assert adapter.verify_request(signed(KEY_SECRET, WEBHOOK_URL, form)) is False


def json_request(body: bytes, signed_body: bytes | None = None) -> WebhookRequest:
    digest = hashlib.sha256(signed_body if signed_body is not None else body).hexdigest()
    url = f"{WEBHOOK_URL}?bodySHA256={digest}"
    signature = RequestValidator(AUTH_TOKEN).compute_signature(url, {})
    return WebhookRequest(
        method="POST",
        url=url,
        headers={"Content-Type": "application/json", "X-Twilio-Signature": signature},
        body=body,
    )


def test_a_json_body_is_covered_by_body_sha256(adapter):
    body = b'{"MessageSid": "SM1"}'

    assert adapter.verify_request(json_request(body)) is True
    assert adapter.verify_request(json_request(b'{"MessageSid": "SM2"}', signed_body=body)) is False


def test_a_json_body_without_body_sha256_fails(adapter):
    signature = RequestValidator(AUTH_TOKEN).compute_signature(WEBHOOK_URL, {})
    request = WebhookRequest(
        "POST",
        WEBHOOK_URL,
        {"Content-Type": "application/json", "X-Twilio-Signature": signature},
        b"{}",
    )

    assert adapter.verify_request(request) is False


# ---------------------------------------------------------------- parsing webhooks


def webhook(form: dict[str, str | list[str]], content_type: str = FORM) -> WebhookRequest:
    lists = {name: value if isinstance(value, list) else [value] for name, value in form.items()}
    return WebhookRequest(
        method="POST",
        url=WEBHOOK_URL,
        headers={"Content-Type": content_type},
        body=b"",
        form=lists,
    )


SMS_WITH_MEDIA = {
    "ToCountry": "US",
    "MediaContentType0": "image/jpeg",
    "MediaUrl0": f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/MM1/Media/ME1",
    "MediaContentType1": "image/png",
    "MediaUrl1": f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/MM1/Media/ME2",
    "NumMedia": "2",
    "SmsMessageSid": "MM" + "1" * 32,
    "SmsSid": "MM" + "1" * 32,
    "MessageSid": "MM" + "1" * 32,
    "SmsStatus": "received",
    "Body": "Mira estas fotos",
    "From": CUSTOMER,
    "To": LONG_CODE,
    "FromCountry": "US",
    "FromCity": "SAN FRANCISCO",
    "NumSegments": "1",
    "AccountSid": ACCOUNT_SID,
    "ApiVersion": "2010-04-01",
    "SomethingTwilioAddsLater": "x",
}


def test_an_inbound_sms_with_two_media(adapter):
    events = adapter.parse_webhook(webhook(SMS_WITH_MEDIA))

    assert events.statuses == ()
    (message,) = events.messages
    assert message.provider_message_id == "MM" + "1" * 32
    assert (message.from_address, message.to_address) == (CUSTOMER, LONG_CODE)
    assert message.body == "Mira estas fotos"
    assert [(m.url, m.content_type) for m in message.media] == [
        (SMS_WITH_MEDIA["MediaUrl0"], "image/jpeg"),
        (SMS_WITH_MEDIA["MediaUrl1"], "image/png"),
    ]
    assert message.profile_name == ""
    assert message.extra == {
        "ToCountry": "US",
        "SmsStatus": "received",
        "FromCountry": "US",
        "FromCity": "SAN FRANCISCO",
        "NumSegments": "1",
        "AccountSid": ACCOUNT_SID,
        "ApiVersion": "2010-04-01",
        "SomethingTwilioAddsLater": "x",
    }


def test_an_inbound_whatsapp_message_with_button_and_location(adapter):
    form = {
        "MessageSid": "SM" + "2" * 32,
        "AccountSid": ACCOUNT_SID,
        "From": "whatsapp:" + CUSTOMER,
        "To": WHATSAPP,
        "Body": "Yes",
        "NumMedia": "0",
        "ProfileName": "Ana López",
        "WaId": "14155550123",
        "ButtonText": "Yes",
        "ButtonPayload": "CONFIRM_42",
        "Latitude": "19.4326",
        "Longitude": "-99.1332",
        "MessageType": "button",
    }

    (message,) = adapter.parse_webhook(webhook(form)).messages

    assert message.provider_message_id == "SM" + "2" * 32
    assert (message.from_address, message.to_address) == ("whatsapp:" + CUSTOMER, WHATSAPP)
    assert message.profile_name == "Ana López"
    assert message.media == ()
    assert message.extra == {
        "AccountSid": ACCOUNT_SID,
        "WaId": "14155550123",
        "ButtonText": "Yes",
        "ButtonPayload": "CONFIRM_42",
        "Latitude": "19.4326",
        "Longitude": "-99.1332",
        "MessageType": "button",
    }


def test_an_inbound_form_is_read_from_the_raw_body_too(adapter):
    request = WebhookRequest(
        "POST",
        WEBHOOK_URL,
        {"Content-Type": FORM + "; charset=utf-8"},
        b"MessageSid=SM9&From=%2B14155550123&To=%2B14155550100&Body=a+b%26c",
    )

    (message,) = adapter.parse_webhook(request).messages

    assert (message.provider_message_id, message.from_address, message.body) == (
        "SM9",
        CUSTOMER,
        "a b&c",
    )


def status_form(status: str, **extra) -> dict[str, str]:
    return {
        "MessageSid": MESSAGE_SID,
        "SmsSid": MESSAGE_SID,
        "MessageStatus": status,
        "SmsStatus": status,
        "AccountSid": ACCOUNT_SID,
        "From": LONG_CODE,
        "To": CUSTOMER,
        "ApiVersion": "2010-04-01",
        **extra,
    }


def test_delivered_and_read_receipts(adapter):
    for status in ("sent", "delivered", "read"):
        (update,) = adapter.parse_webhook(webhook(status_form(status))).statuses
        assert (update.status, update.provider_message_id) == (status, MESSAGE_SID)
        assert (update.error_code, update.error_message) == (None, "")


def test_undelivered_carries_the_error_code(adapter):
    form = status_form("undelivered", ErrorCode="30003", ErrorMessage="Unreachable handset")

    events = adapter.parse_webhook(webhook(form))

    assert events.messages == ()
    (update,) = events.statuses
    assert (update.status, update.provider_message_id) == ("undelivered", MESSAGE_SID)
    assert (update.error_code, update.error_message) == (30003, "Unreachable handset")


def test_failed_with_only_sms_status(adapter):
    form = {"SmsSid": MESSAGE_SID, "SmsStatus": "failed", "ErrorCode": "30008"}

    (update,) = adapter.parse_webhook(webhook(form)).statuses

    assert (update.status, update.provider_message_id, update.error_code) == (
        "failed",
        MESSAGE_SID,
        30008,
    )


@pytest.mark.parametrize("status", ["queued", "sending", "accepted", "scheduled", "future_one"])
def test_statuses_that_are_not_receipts_make_no_event(adapter, status):
    assert adapter.parse_webhook(webhook(status_form(status))) == WebhookEvents()


@pytest.mark.parametrize(
    ("form", "reason"),
    [
        ({**SMS_WITH_MEDIA, "From": ""}, "From is missing"),
        ({k: v for k, v in SMS_WITH_MEDIA.items() if k != "To"}, "To is missing"),
        ({"From": CUSTOMER, "To": LONG_CODE}, "MessageSid is missing"),
        ({k: v for k, v in SMS_WITH_MEDIA.items() if k != "MediaUrl1"}, "MediaUrl1 is missing"),
        ({**SMS_WITH_MEDIA, "NumMedia": "two"}, "NumMedia is not an integer: 'two'"),
        (status_form("delivered", MessageSid="", SmsSid=""), "MessageSid is missing"),
        (status_form("failed", ErrorCode="E30003"), "ErrorCode is not an integer: 'E30003'"),
    ],
)
def test_malformed_webhooks_name_the_field(adapter, form, reason):
    with pytest.raises(WebhookPayloadError) as info:
        adapter.parse_webhook(webhook(form))
    assert info.value.reason.startswith(reason)


def test_a_non_form_body_is_refused(adapter):
    request = WebhookRequest(
        "POST", WEBHOOK_URL, {"Content-Type": "application/json"}, b'{"MessageSid": "SM1"}'
    )

    with pytest.raises(WebhookPayloadError) as info:
        adapter.parse_webhook(request)
    assert "application/x-www-form-urlencoded" in info.value.reason
    assert "application/json" in info.value.reason


def test_the_ack_is_empty_twiml(adapter):
    answer = adapter.webhook_ack(WebhookEvents())

    assert answer.status == 200
    assert answer.content_type == "text/xml"
    assert answer.body == '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'


# ---------------------------------------------------------------- media


@pytest.fixture
def cdn():
    server = fake_server()
    yield server
    server.close()


MEDIA_PATH = f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/MM1/Media/ME1"
JPEG = b"\xff\xd8\xff\xe0" + b"x" * 2000


def test_media_is_fetched_with_auth_and_the_cdn_gets_none(adapter, api, cdn):
    # Another host name (localhost, not 127.0.0.1) and port: a different origin.
    cdn_url = cdn.url.replace("127.0.0.1", "localhost") + "/media/abc.jpg?Signature=s"
    api.route("GET", MEDIA_PATH, lambda _r: (307, {"Location": cdn_url}, b""))
    cdn.route("GET", "/media/abc.jpg", lambda _r: (200, {"Content-Type": "image/jpeg"}, JPEG))

    media = adapter.fetch_media(InboundMedia(url=api.url + MEDIA_PATH, content_type="image/*"))

    assert (media.content, media.content_type) == (JPEG, "image/jpeg")
    (first,) = api.received
    assert header(first, "Authorization") == basic(ACCOUNT_SID, AUTH_TOKEN)
    (second,) = cdn.received
    assert second.path == "/media/abc.jpg?Signature=s"
    assert header(second, "Authorization") is None


def test_media_on_a_host_that_is_not_twilio_gets_no_credentials(adapter, cdn):
    cdn.route("GET", "/m.png", lambda _r: (200, {"Content-Type": "image/png; x=1"}, b"png"))

    elsewhere = cdn.url.replace("127.0.0.1", "localhost") + "/m.png"

    media = adapter.fetch_media(InboundMedia(url=elsewhere))

    assert (media.content, media.content_type) == (b"png", "image/png")
    assert header(cdn.received[0], "Authorization") is None


def test_media_larger_than_the_cap_is_refused(adapter, provider, api):
    provider.settings = {**provider.settings, "max_media_bytes": 1000}
    api.route("GET", MEDIA_PATH, lambda _r: (200, {"Content-Type": "image/jpeg"}, JPEG))

    with pytest.raises(ProviderError) as info:
        adapter.fetch_media(InboundMedia(url=api.url + MEDIA_PATH))

    assert info.value.permanent is True
    assert "max_media_bytes (1000)" in info.value.message


@pytest.mark.parametrize(
    ("status", "code", "permanent"),
    [(401, 20003, True), (404, 20404, True), (500, 30008, False)],
)
def test_media_errors(adapter, api, status, code, permanent):
    api.route("GET", MEDIA_PATH, json_answer({"code": 20404, "message": "nope"}, status))

    with pytest.raises(ProviderError) as info:
        adapter.fetch_media(InboundMedia(url=api.url + MEDIA_PATH))

    assert (info.value.code, info.value.permanent) == (code, permanent)
    assert f"HTTP {status}" in info.value.message
