"""Content templates (`HX…`) end to end: the template rules (each one), rendering and the
variables check, sending with ContentSid + ContentVariables through the Twilio-compatible
API (the rendered text stored as the body; 21655, 21656, 63027 and the Body refusal), the
pump's template content (a TemplateRef for WhatsApp, the text elsewhere; one query per
batch), a WhatsApp Cloud send through the engine to a local server speaking Meta's Graph
format, and sync/submit against Meta's template management API."""

import base64
import json

import pytest
from django.core.exceptions import ValidationError

from messaging import content_templates as rules
from messaging.delivery.content import content_for, media_attach, template_attach
from messaging.errors import MessagingError
from messaging.models import (
    Contact,
    ContentTemplate,
    ContentTemplateTranslation,
    Message,
    ProviderAccount,
    Sender,
    TemplateStatus,
)
from messaging.providers import ProviderError, TemplateRef
from messaging.services import content_templates as services
from messaging.services.messages import MessageRequest, message_create
from messaging.services.providers import provider_credentials_set
from tests.support.delivery import deliver_now
from tests.support.http import FakeApi, json_answer

SMS_CUSTOMER = "+14155550123"
WA_CUSTOMER = "whatsapp:+525512345678"
WA_SENDER = "whatsapp:+14155550199"
REMINDER_BODY = "Hi {{1}}, your appointment is on {{2}} at {{3}}. Reply to confirm."

ACCESS_TOKEN = "EAAG-test-access-token"
VERSION = "v21.0"
WABA_ID = "102290129340398"
PHONE_NUMBER_ID = "106540352242922"
TEMPLATES_PATH = f"/{VERSION}/{WABA_ID}/message_templates"
MESSAGES_PATH = f"/{VERSION}/{PHONE_NUMBER_ID}/messages"


def translation(**fields) -> ContentTemplateTranslation:
    """An unsaved, valid translation, changed by `fields`."""
    values = {
        "language": "en_US",
        "header_type": "none",
        "header_text": "",
        "header_media_url": "",
        "body": "Hello {{1}}, welcome aboard.",
        "footer": "",
        "buttons": [],
        "samples": {},
    }
    values.update(fields)
    return ContentTemplateTranslation(**values)


def problems(**fields) -> dict:
    return dict(rules.translation_problems(translation(**fields)))


def make_template(account, *, name="appointment_reminder", provider=None, **extra):
    return ContentTemplate.objects.create(
        account=account,
        friendly_name=extra.pop("friendly_name", "Appointment reminder"),
        name=name,
        provider=provider,
        default_language=extra.pop("default_language", "en_US"),
        **extra,
    )


def add_translation(template, language="en_US", status=TemplateStatus.APPROVED, **fields):
    values = {"body": REMINDER_BODY, "header_type": "none", "buttons": [], "samples": {}}
    values.update(fields)
    return ContentTemplateTranslation.objects.create(
        template=template, language=language, status=status, **values
    )


def basic(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


# ---------------------------------------------------------------- validation


def test_a_full_translation_is_valid():
    full = translation(
        header_type="text",
        header_text="Order {{3}}",
        body="Hi {{1}}, your order arrives {{2}}.",
        footer="Reply STOP to opt out",
        buttons=[
            {"type": "QUICK_REPLY", "text": "Change the date"},
            {"type": "QUICK_REPLY", "text": "Talk to a person"},
            {"type": "URL", "text": "Track it", "url": "https://shop.example.com/t/{{4}}"},
        ],
        samples={"1": "Ana", "2": "tomorrow", "3": "#42", "4": "42"},
    )
    assert dict(rules.translation_problems(full)) == {}
    named = translation(body="Hola {{first_name}}, tu cita es el {{day}}.")
    assert dict(rules.translation_problems(named)) == {}


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"body": ""}, "body", "The body is required."),
        ({"body": "   "}, "body", "The body is required."),
        (
            {"body": "x" * 1025},
            "body",
            "The body has 1025 characters; WhatsApp allows at most 1024.",
        ),
        (
            {"body": "{{1}}, your order is ready."},
            "body",
            "may not start with a placeholder ({{1}})",
        ),
        ({"body": "Your code is {{1}}"}, "body", "may not end with a placeholder ({{1}})"),
        ({"body": "Dear {{1}} {{2}}, welcome."}, "body", "Placeholders side by side ({{1}} {{2}})"),
        ({"body": "Hi {{1}}, see you {{3}}."}, "body", "from {{1}} to {{3}} without gaps: {{2}}"),
        (
            {"body": "Hi {{1}}, see you {{day}}."},
            "body",
            "not both: found {{1}} and {{day}}",
        ),
        ({"body": "Hi {{ 1 }}, welcome."}, "body", "{{ 1 }} is not a placeholder"),
        ({"body": "Hi {{First}}, welcome."}, "body", "{{First}} is not a placeholder"),
        ({"body": "Hi {{1}, welcome."}, "body", "is not a placeholder"),
        (
            {"header_type": "text", "header_text": "x" * 61},
            "header_text",
            "The header text has 61 characters; at most 60.",
        ),
        (
            {"header_type": "text", "header_text": "{{2}} and {{3}}", "body": "Hi {{1}}, ok."},
            "header_text",
            "may hold one placeholder; it has {{2}}, {{3}}",
        ),
        ({"header_type": "text", "header_text": ""}, "header_text", "Write the header text"),
        ({"header_type": "text", "header_text": "Two\nlines"}, "header_text", "must be one line"),
        ({"header_text": "Orphan"}, "header_text", "needs the header type Text"),
        ({"header_type": "image"}, "header_media_url", "needs the URL of the media"),
        (
            {"header_type": "video", "header_media_url": "ftp://cdn.example.com/v.mp4"},
            "header_media_url",
            "ftp://cdn.example.com/v.mp4 is not an http:// or https:// URL.",
        ),
        (
            {"header_media_url": "https://cdn.example.com/a.png"},
            "header_media_url",
            "Only image, video and document headers",
        ),
        ({"footer": "x" * 61}, "footer", "The footer has 61 characters; at most 60."),
        ({"footer": "Bye {{1}}"}, "footer", "The footer may not hold placeholders."),
        (
            {"buttons": [{"type": "QUICK_REPLY", "text": f"Option {i}"} for i in range(11)]},
            "buttons",
            "At most 10 buttons; there are 11.",
        ),
        (
            {"buttons": [{"type": "QUICK_REPLY", "text": "x" * 26}]},
            "buttons",
            "buttons[0].text has 26 characters; at most 25.",
        ),
        (
            {"buttons": [{"type": "URL", "text": "y" * 26, "url": "https://e.com"}]},
            "buttons",
            "buttons[0].text has 26 characters; at most 25.",
        ),
        (
            {
                "buttons": [
                    {"type": "URL", "text": f"Link {i}", "url": "https://e.com"} for i in "abc"
                ]
            },
            "buttons",
            "At most 2 URL buttons; there are 3.",
        ),
        (
            {"buttons": [{"type": "URL", "text": "Go", "url": "https://e.com/" + "a" * 1987}]},
            "buttons",
            "buttons[0].url has 2001 characters; at most 2000.",
        ),
        (
            {"buttons": [{"type": "URL", "text": "Go", "url": "javascript:alert(1)"}]},
            "buttons",
            "buttons[0].url javascript:alert(1) is not an http:// or https:// URL.",
        ),
        (
            {"buttons": [{"type": "URL", "text": "Go", "url": "https://e.com/{{1}}/x"}]},
            "buttons",
            "buttons[0].url may end in one placeholder ({{1}}) and hold no other.",
        ),
        (
            {"buttons": [{"type": "URL", "text": "Go", "url": "https://e.com/{{1}}{{2}}"}]},
            "buttons",
            "buttons[0].url may end in one placeholder",
        ),
        (
            {"buttons": [{"type": "QUICK_REPLY", "text": "Hi {{1}}"}]},
            "buttons",
            "buttons[0].text may not hold placeholders.",
        ),
        ({"buttons": [{"type": "URL", "text": "Go"}]}, "buttons", "buttons[0].url is missing."),
        ({"buttons": [{"type": "QUICK_REPLY"}]}, "buttons", "buttons[0].text is missing."),
        (
            {"buttons": [{"type": "PHONE_NUMBER", "text": "Call"}]},
            "buttons",
            "buttons[0].type must be QUICK_REPLY or URL, not 'PHONE_NUMBER'.",
        ),
        ({"buttons": ["Yes"]}, "buttons", "buttons[0] must be an object"),
        ({"buttons": {"type": "URL"}}, "buttons", "Buttons must be a JSON list of objects."),
        (
            {
                "buttons": [
                    {"type": "QUICK_REPLY", "text": "Yes"},
                    {"type": "URL", "text": "Site", "url": "https://e.com"},
                    {"type": "QUICK_REPLY", "text": "No"},
                ]
            },
            "buttons",
            "Keep the quick replies together",
        ),
        ({"language": "spanish"}, "language", "Use a language code like en, en_US or es_MX"),
        ({"samples": {"1": "two\nlines"}}, "samples", "The sample for {{1}} holds a new line"),
        ({"samples": {"1": ""}}, "samples", "The sample for {{1}} is empty."),
        ({"samples": ["Ana"]}, "samples", "Samples must be a JSON object"),
    ],
)
def test_each_rule_names_its_field_and_says_what_is_wrong(fields, field, message):
    found = problems(**fields)
    assert field in found, found
    assert any(message in text for text in found[field]), found[field]
    assert set(found) == {field}, found  # nothing else is blamed


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("", "The WhatsApp name is required."),
        ("Appointment", "lower-case letters, digits and underscores only"),
        ("appointment reminder", "lower-case letters, digits and underscores only"),
        ("cita-médica", "lower-case letters, digits and underscores only"),
        ("a" * 513, "The WhatsApp name has 513 characters; at most 512."),
    ],
)
def test_template_names_follow_metas_rules(name, message):
    assert any(message in text for text in rules.name_problems(name))


def test_a_good_name_passes():
    assert rules.name_problems("appointment_reminder_2") == []
    assert rules.name_problems("a" * 512) == []


def test_clean_normalises_the_language_drops_stale_samples_and_raises_by_field(account):
    template = make_template(account)
    item = ContentTemplateTranslation(
        template=template,
        language="es-mx",
        body="Hola {{1}}, gracias.",
        samples={"1": "Ana", "7": "left over from an older body"},
    )
    item.full_clean()
    assert (item.language, item.samples) == ("es_MX", {"1": "Ana"})

    item.body = "{{1}} gracias."
    item.footer = "x" * 61
    with pytest.raises(ValidationError) as refused:
        item.full_clean()
    assert set(refused.value.message_dict) == {"body", "footer"}


def test_template_clean_checks_the_name_and_the_default_language(account):
    template = ContentTemplate(
        account=account, friendly_name="Bad", name="Bad Name", default_language="english"
    )
    with pytest.raises(ValidationError) as refused:
        template.full_clean()
    assert set(refused.value.message_dict) == {"name", "default_language"}


# ---------------------------------------------------------------- rendering and variables


ORDER = dict(
    header_type="text",
    header_text="Order {{3}}",
    body="Hi {{1}}, your order arrives {{2}}.",
    footer="Acme Shop",
    buttons=[
        {"type": "QUICK_REPLY", "text": "Change date"},
        {"type": "URL", "text": "Track it", "url": "https://shop.example.com/t/{{4}}"},
    ],
)
ORDER_VALUES = {"1": "Ana", "2": "tomorrow", "3": "#42", "4": "42"}


def test_render_text_is_header_body_footer_and_the_buttons_as_a_list():
    text = rules.render_text(translation(**ORDER), ORDER_VALUES)
    assert text == (
        "Order #42\n\n"
        "Hi Ana, your order arrives tomorrow.\n\n"
        "Acme Shop\n\n"
        "- Change date\n"
        "- Track it: https://shop.example.com/t/42"
    )
    assert rules.render_text(translation(body="Plain text, no placeholders."), None) == (
        "Plain text, no placeholders."
    )


def test_template_ref_sends_each_component_in_metas_own_numbering():
    template = ContentTemplate(name="order_update")
    ref = rules.template_ref(template, translation(language="es_MX", **ORDER), ORDER_VALUES)
    assert ref == TemplateRef(
        name="order_update",
        language="es_MX",
        body_params=("Ana", "tomorrow"),
        header_params=("#42",),
        button_url_params={1: "42"},
    )
    assert rules.meta_text("Order {{3}}") == ("Order {{1}}", ["3"])
    assert rules.meta_text("See you {{2}}, {{1}}.") == ("See you {{2}}, {{1}}.", ["1", "2"])


def test_named_placeholders_go_in_order_of_appearance():
    named = translation(body="Hola {{first_name}}, tu cita es el {{day}} con {{first_name}}.")
    ref = rules.template_ref(
        ContentTemplate(name="cita"), named, {"day": "martes", "first_name": "Ana"}
    )
    assert ref.body_params == ("Ana", "martes")
    assert rules.render_text(named, {"day": "martes", "first_name": "Ana"}) == (
        "Hola Ana, tu cita es el martes con Ana."
    )


def test_a_media_header_goes_as_its_link():
    item = translation(header_type="image", header_media_url="https://cdn.example.com/p.jpg")
    ref = rules.template_ref(ContentTemplate(name="promo"), item, {"1": "Ana"})
    assert (ref.header_media_url, ref.header_media_type, ref.header_params) == (
        "https://cdn.example.com/p.jpg",
        "image",
        (),
    )


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        ({"1": "Ana", "2": "tomorrow", "3": "#42"}, "no value for {{4}}"),
        ({}, "no value for {{1}}, {{2}}, {{3}}, {{4}}"),
        (
            {**ORDER_VALUES, "5": "extra", "name": "x"},
            "the template has no placeholder {{5}}, {{name}}",
        ),
        ({**ORDER_VALUES, "1": ""}, "{{1}} is empty"),
        ({**ORDER_VALUES, "1": "   "}, "{{1}} is empty"),
        ({**ORDER_VALUES, "2": "next\nweek"}, "{{2}} holds a new line or a tab"),
        ({**ORDER_VALUES, "2": "next\tweek"}, "{{2}} holds a new line or a tab"),
        ({**ORDER_VALUES, "3": "#     42"}, "{{3}} holds more than 4 spaces in a row"),
    ],
)
def test_variables_that_do_not_fit_are_refused_by_name(variables, message):
    with pytest.raises(rules.VariablesError) as refused:
        rules.render_text(translation(**ORDER), variables)
    assert message in str(refused.value)


def test_four_spaces_and_numbers_are_fine_values():
    values = {**ORDER_VALUES, "3": "#    42", "4": 42}
    assert rules.variables_check(translation(**ORDER), values)["4"] == "42"


@pytest.mark.parametrize(
    ("available", "wanted", "picked"),
    [
        (["en_US", "es_MX"], "es_MX", "es_MX"),
        (["en_US", "es_MX"], "es-mx", "es_MX"),
        (["en_US", "es_MX"], "es", "es_MX"),
        (["en_US", "es"], "es_AR", "es"),
        (["en_US", "es_ES", "es_MX"], "es_AR", "es_ES"),
        (["en_US"], "fr_FR", None),
        (["en_US"], "", None),
    ],
)
def test_language_pick(available, wanted, picked):
    assert rules.language_pick(available, wanted) == picked


# ---------------------------------------------------------------- sending through the API


@pytest.fixture
def reminder(world):
    template = make_template(world.account)
    add_translation(template, "en_US")
    add_translation(
        template,
        "es_MX",
        body="Hola {{1}}, tu cita es el {{2}} a las {{3}}. Responde para confirmar.",
    )
    return template


def api_send(client, world, **data):
    url = f"/2010-04-01/Accounts/{world.account.sid}/Messages.json"
    return client.post(url, data, HTTP_AUTHORIZATION=basic(world.account.sid, world.token))


VARIABLES = json.dumps({"1": "Ana", "2": "May 4", "3": "10:30"})


def test_the_api_sends_a_template_and_stores_its_text_as_the_body(world, client, reminder):
    response = api_send(
        client,
        world,
        To=WA_CUSTOMER,
        From=WA_SENDER,
        ContentSid=reminder.sid,
        ContentVariables=VARIABLES,
    )
    assert response.status_code == 201, response.json()
    answer = response.json()
    expected = "Hi Ana, your appointment is on May 4 at 10:30. Reply to confirm."
    assert (answer["body"], answer["status"]) == (expected, "queued")
    message = Message.objects.get(sid=answer["sid"])
    assert message.content_sid == reminder.sid
    assert message.content_variables == {"1": "Ana", "2": "May 4", "3": "10:30"}
    assert message.content_language == "en_US"
    assert message.num_segments == 1


def test_the_contacts_language_picks_the_translation(world, client, reminder):
    Contact.objects.create(
        account=world.account,
        channel="whatsapp",
        address=WA_CUSTOMER,
        attributes={"language": "es"},
    )
    response = api_send(
        client,
        world,
        To=WA_CUSTOMER,
        From=WA_SENDER,
        ContentSid=reminder.sid,
        ContentVariables=VARIABLES,
    )
    assert response.status_code == 201
    assert response.json()["body"].startswith("Hola Ana, tu cita es el May 4")
    assert Message.objects.get().content_language == "es_MX"


def test_an_explicit_language_wins_and_a_missing_one_is_63027(world, reminder):
    request = MessageRequest(
        to=SMS_CUSTOMER,
        from_="+14155550100",
        content_sid=reminder.sid,
        content_variables={"1": "Ana", "2": "4 de mayo", "3": "10:30"},
        content_language="es_MX",
    )
    assert message_create(account=world.account, request=request).content_language == "es_MX"
    request.content_language = "fr_FR"
    with pytest.raises(MessagingError) as refused:
        message_create(account=world.account, request=request)
    assert refused.value.code == 63027
    assert "has no fr_FR translation (it has en_US, es_MX)" in refused.value.message


def test_whatsapp_needs_an_approved_translation(world, client, reminder):
    reminder.translations.filter(language="en_US").update(
        status=TemplateStatus.REJECTED, rejection_reason="INVALID_FORMAT"
    )
    response = api_send(
        client,
        world,
        To=WA_CUSTOMER,
        From=WA_SENDER,
        ContentSid=reminder.sid,
        ContentVariables=VARIABLES,
    )
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == 63027
    assert "en_US translation of template" in body["message"]
    assert "is REJECTED: INVALID_FORMAT; WhatsApp sends approved templates only" in body["message"]
    assert not Message.objects.exists()


def test_an_unapproved_translation_is_fine_for_sms(world, client, reminder):
    reminder.translations.update(status=TemplateStatus.DRAFT)
    response = api_send(
        client,
        world,
        To=SMS_CUSTOMER,
        From="+14155550100",
        ContentSid=reminder.sid,
        ContentVariables=VARIABLES,
    )
    assert response.status_code == 201
    assert response.json()["body"].startswith("Hi Ana, your appointment")


def test_a_contact_language_without_approval_falls_back_to_the_approved_default(world, reminder):
    reminder.translations.filter(language="es_MX").update(status=TemplateStatus.PENDING)
    Contact.objects.create(
        account=world.account,
        channel="whatsapp",
        address=WA_CUSTOMER,
        attributes={"language": "es_MX"},
    )
    request = MessageRequest(
        to=WA_CUSTOMER,
        from_=WA_SENDER,
        content_sid=reminder.sid,
        content_variables={"1": "Ana", "2": "May 4", "3": "10:30"},
    )
    assert message_create(account=world.account, request=request).content_language == "en_US"


def test_an_unknown_content_sid_is_21655(world, client, reminder):
    unknown = "HX" + "a" * 32
    response = api_send(client, world, To=SMS_CUSTOMER, From="+14155550100", ContentSid=unknown)
    assert response.status_code == 400
    assert response.json()["code"] == 21655
    assert (
        f"The ContentSid {unknown} is not a content template of this account."
        == (response.json()["message"])
    )


def test_variables_that_do_not_fit_are_21656(world, client, reminder):
    response = api_send(
        client,
        world,
        To=SMS_CUSTOMER,
        From="+14155550100",
        ContentSid=reminder.sid,
        ContentVariables=json.dumps({"1": "Ana", "2": "May\n4", "9": "x"}),
    )
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == 21656
    assert body["message"] == (
        "ContentVariables do not fit the template: no value for {{3}}; the template has no "
        "placeholder {{9}}; {{2}} holds a new line or a tab (WhatsApp refuses those)."
    )


def test_body_and_content_sid_together_are_refused(world, client, reminder):
    response = api_send(
        client,
        world,
        To=SMS_CUSTOMER,
        From="+14155550100",
        Body="Hello",
        ContentSid=reminder.sid,
        ContentVariables=VARIABLES,
    )
    assert (response.status_code, response.json()["code"]) == (400, 20422)
    assert "not both" in response.json()["message"]
    assert not Message.objects.exists()


def test_a_service_message_resolves_the_template_at_once(world, reminder):
    request = MessageRequest(
        to=WA_CUSTOMER,
        messaging_service_sid=world.service.sid,
        content_sid=reminder.sid,
        content_variables={"1": "Ana", "2": "May 4", "3": "10:30"},
    )
    message = message_create(account=world.account, request=request)
    assert (message.status, message.content_language) == ("accepted", "en_US")
    assert message.body.startswith("Hi Ana")


# ---------------------------------------------------------------- the pump's content


def create(world, to, from_, template, variables=None):
    request = MessageRequest(
        to=to,
        from_=from_,
        content_sid=template.sid,
        content_variables=variables or {"1": "Ana", "2": "May 4", "3": "10:30"},
    )
    return message_create(account=world.account, request=request)


def test_whatsapp_gets_a_template_ref_and_sms_the_text_with_one_query(
    world, reminder, django_assert_num_queries
):
    whatsapp = create(world, WA_CUSTOMER, WA_SENDER, reminder)
    sms = create(world, SMS_CUSTOMER, "+14155550100", reminder)
    plain = message_create(
        account=world.account,
        request=MessageRequest(to=SMS_CUSTOMER, from_="+14155550100", body="no template"),
    )
    claimed = list(Message.objects.filter(id__in=[whatsapp.id, sms.id, plain.id]).order_by("id"))
    with django_assert_num_queries(1):  # media: none to load; templates: one query
        media_attach(claimed)
    with django_assert_num_queries(0):
        contents = [content_for(m) for m in claimed]

    text = "Hi Ana, your appointment is on May 4 at 10:30. Reply to confirm."
    assert contents[0].template == TemplateRef(
        name="appointment_reminder", language="en_US", body_params=("Ana", "May 4", "10:30")
    )
    assert contents[0].text == text
    assert (contents[1].template, contents[1].text) == (None, text)
    assert (contents[2].template, contents[2].text) == (None, "no template")


def test_a_template_paused_before_the_send_fails_without_a_provider_call(world, reminder):
    message = create(world, WA_CUSTOMER, WA_SENDER, reminder)
    reminder.translations.filter(language="en_US").update(status=TemplateStatus.PAUSED)
    claimed = Message.objects.get(id=message.id)
    template_attach([claimed])
    with pytest.raises(ProviderError) as failed:
        content_for(claimed)
    assert (failed.value.code, failed.value.permanent) == (63027, True)
    assert "is PAUSED" in failed.value.message


def test_a_template_deleted_before_the_send_fails_too(world, reminder):
    message = create(world, WA_CUSTOMER, WA_SENDER, reminder)
    reminder.delete()
    with pytest.raises(ProviderError, match="no longer exists"):
        content_for(Message.objects.get(id=message.id))


# ---------------------------------------------------------------- Meta's Graph API


@pytest.fixture(scope="module")
def graph_server():
    server = FakeApi()
    yield server
    server.close()


@pytest.fixture
def graph(graph_server):
    graph_server.routes.clear()
    graph_server.received.clear()
    return graph_server


def whatsapp_provider(account, graph) -> ProviderAccount:
    provider = ProviderAccount.objects.create(
        account=account,
        name="WhatsApp Cloud",
        kind="whatsapp_cloud",
        settings={
            "graph_base_url": graph.url,
            "api_version": VERSION,
            "waba_id": WABA_ID,
            "timeout_seconds": 2,
        },
    )
    provider_credentials_set(provider, {"access_token": ACCESS_TOKEN, "app_secret": "s"})
    return provider


def headers_of(request) -> dict:
    return {k.lower(): v for k, v in request.headers.items()}


def test_the_engine_sends_metas_template_json(graph, world):
    provider = whatsapp_provider(world.account, graph)
    sender = Sender(
        account=world.account,
        provider=provider,
        kind="whatsapp",
        address="whatsapp:+14155550777",
        provider_ref=PHONE_NUMBER_ID,
    )
    sender.full_clean()
    sender.save()
    template = make_template(
        world.account, name="order_update", provider=provider, default_language="es_MX"
    )
    add_translation(
        template,
        "es_MX",
        **{**ORDER, "body": "Hola {{1}}, tu pedido llega {{2}}.", "header_text": "Pedido {{3}}"},
    )
    graph.route("POST", MESSAGES_PATH, json_answer({"messages": [{"id": "wamid.HBgL123"}]}))

    message = create(
        world,
        WA_CUSTOMER,
        sender.address,
        template,
        {"1": "Ana", "2": "mañana", "3": "#42", "4": "42"},
    )
    deliver_now(seconds=3)

    message.refresh_from_db()
    assert (message.status, message.provider_message_id) == ("sent", "wamid.HBgL123")
    assert message.body.startswith("Pedido #42\n\nHola Ana, tu pedido llega mañana.")
    [request] = graph.received
    assert (request.method, request.path) == ("POST", MESSAGES_PATH)
    assert headers_of(request)["authorization"] == f"Bearer {ACCESS_TOKEN}"
    assert json.loads(request.body) == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": "525512345678",
        "type": "template",
        "template": {
            "name": "order_update",
            "language": {"code": "es_MX"},
            "components": [
                {"type": "header", "parameters": [{"type": "text", "text": "#42"}]},
                {
                    "type": "body",
                    "parameters": [
                        {"type": "text", "text": "Ana"},
                        {"type": "text", "text": "mañana"},
                    ],
                },
                {
                    "type": "button",
                    "sub_type": "url",
                    "index": "1",
                    "parameters": [{"type": "text", "text": "42"}],
                },
            ],
        },
    }


META_LIST = {
    "data": [
        {
            "name": "order_update",
            "language": "es_MX",
            "status": "APPROVED",
            "category": "UTILITY",
            "id": "594425479261596",
            "parameter_format": "POSITIONAL",
            "components": [
                {
                    "type": "HEADER",
                    "format": "TEXT",
                    "text": "Pedido {{1}}",
                    "example": {"header_text": ["#42"]},
                },
                {
                    "type": "BODY",
                    "text": "Hola {{1}}, tu pedido llega {{2}}.",
                    "example": {"body_text": [["Ana", "mañana"]]},
                },
                {"type": "FOOTER", "text": "Tienda Acme"},
                {
                    "type": "BUTTONS",
                    "buttons": [
                        {"type": "QUICK_REPLY", "text": "Cambiar fecha"},
                        {
                            "type": "URL",
                            "text": "Seguir pedido",
                            "url": "https://shop.example.com/t/{{1}}",
                            "example": ["https://shop.example.com/t/42"],
                        },
                    ],
                },
            ],
        },
        {
            "name": "order_update",
            "language": "en_US",
            "status": "REJECTED",
            "rejected_reason": "INVALID_FORMAT",
            "category": "UTILITY",
            "id": "594425479261597",
            "components": [{"type": "BODY", "text": "Hi {{1}}, your order arrives {{2}}."}],
            "sub_category": "ORDER_DETAILS",
        },
        {
            "name": "call_us",
            "language": "en_US",
            "status": "APPROVED",
            "category": "MARKETING",
            "id": "3",
            "components": [
                {"type": "BODY", "text": "Questions? Call us."},
                {
                    "type": "BUTTONS",
                    "buttons": [
                        {"type": "PHONE_NUMBER", "text": "Call", "phone_number": "+15550100"}
                    ],
                },
            ],
        },
        {"language": "en_US", "status": "APPROVED", "components": []},
        {
            "name": "welcome_named",
            "language": "en_US",
            "status": "APPROVED",
            "category": "MARKETING",
            "parameter_format": "NAMED",
            "id": "5",
            "components": [{"type": "BODY", "text": "Hi {{first_name}}, welcome."}],
        },
    ],
    "paging": {"cursors": {"before": "b", "after": "a"}},
}


def test_sync_upserts_templates_in_our_numbering_and_names_what_it_skips(graph, account):
    provider = whatsapp_provider(account, graph)
    graph.route("GET", TEMPLATES_PATH, json_answer(META_LIST))

    result = services.templates_sync(provider)

    assert (result.created, result.updated) == (2, 0)
    assert result.skipped == [
        "call_us [en_US]: data[2].components[1].buttons[0].type PHONE_NUMBER is not supported",
        "data[3].name is missing",
        "welcome_named [en_US]: data[4].parameter_format NAMED is not supported yet",
    ]
    [request] = graph.received
    assert (request.method, request.path) == ("GET", f"{TEMPLATES_PATH}?limit=100")
    assert headers_of(request)["authorization"] == f"Bearer {ACCESS_TOKEN}"
    template = ContentTemplate.objects.get(name="order_update")
    assert (template.provider, template.category, template.default_language) == (
        provider,
        "UTILITY",
        "es_MX",
    )
    es = template.translations.get(language="es_MX")
    assert (es.status, es.provider_template_id) == ("APPROVED", "594425479261596")
    assert (es.header_type, es.header_text) == ("text", "Pedido {{3}}")
    assert es.body == "Hola {{1}}, tu pedido llega {{2}}."
    assert es.footer == "Tienda Acme"
    assert es.buttons == [
        {"type": "QUICK_REPLY", "text": "Cambiar fecha"},
        {"type": "URL", "text": "Seguir pedido", "url": "https://shop.example.com/t/{{4}}"},
    ]
    assert es.samples == {"1": "Ana", "2": "mañana", "3": "#42", "4": "42"}
    es.full_clean()  # what Meta approved passes our rules
    en = template.translations.get(language="en_US")
    assert (en.status, en.rejection_reason) == ("REJECTED", "INVALID_FORMAT")
    assert not ContentTemplate.objects.filter(name="call_us").exists()

    # Meta approves the English one: the next sync updates, never duplicates.
    approved = {**META_LIST["data"][1], "status": "APPROVED", "rejected_reason": "NONE"}
    graph.route("GET", TEMPLATES_PATH, json_answer({"data": [META_LIST["data"][0], approved]}))
    again = services.templates_sync(provider)
    assert (again.created, again.updated) == (0, 2)
    en.refresh_from_db()
    assert (en.status, en.rejection_reason) == ("APPROVED", "")
    assert ContentTemplateTranslation.objects.count() == 2


def test_sync_is_refused_clearly_when_meta_refuses_the_token(graph, account):
    provider = whatsapp_provider(account, graph)
    error = {
        "error": {"message": "Invalid OAuth access token.", "type": "OAuthException", "code": 190}
    }
    graph.route("GET", TEMPLATES_PATH, json_answer(error, 401))
    with pytest.raises(ProviderError) as refused:
        services.templates_sync(provider)
    assert (refused.value.code, refused.value.permanent) == (20003, True)
    assert "Invalid OAuth access token." in refused.value.message
    assert not ContentTemplate.objects.exists()


def submittable(account, provider, **fields):
    template = make_template(account, name="order_update", provider=provider)
    values = {
        **ORDER,
        "samples": {"1": "Ana", "2": "mañana", "3": "#42", "4": "42"},
        "body": "Hola {{1}}, tu pedido llega {{2}}.",
        "header_text": "Pedido {{3}}",
        **fields,
    }
    return add_translation(template, "es_MX", status=TemplateStatus.DRAFT, **values)


def test_submit_posts_metas_create_shape_with_examples(graph, account):
    provider = whatsapp_provider(account, graph)
    item = submittable(account, provider)
    graph.route(
        "POST",
        TEMPLATES_PATH,
        json_answer({"id": "594425479261596", "status": "PENDING", "category": "MARKETING"}),
    )

    services.translation_submit(item)

    [request] = graph.received
    assert (request.method, request.path) == ("POST", TEMPLATES_PATH)
    assert headers_of(request)["authorization"] == f"Bearer {ACCESS_TOKEN}"
    assert json.loads(request.body) == {
        "name": "order_update",
        "language": "es_MX",
        "category": "UTILITY",
        "components": [
            {
                "type": "HEADER",
                "format": "TEXT",
                "text": "Pedido {{1}}",
                "example": {"header_text": ["#42"]},
            },
            {
                "type": "BODY",
                "text": "Hola {{1}}, tu pedido llega {{2}}.",
                "example": {"body_text": [["Ana", "mañana"]]},
            },
            {"type": "FOOTER", "text": "Acme Shop"},
            {
                "type": "BUTTONS",
                "buttons": [
                    {"type": "QUICK_REPLY", "text": "Change date"},
                    {
                        "type": "URL",
                        "text": "Track it",
                        "url": "https://shop.example.com/t/{{1}}",
                        "example": ["https://shop.example.com/t/42"],
                    },
                ],
            },
        ],
    }
    item.refresh_from_db()
    assert (item.status, item.provider_template_id) == ("PENDING", "594425479261596")
    item.template.refresh_from_db()
    assert item.template.category == "MARKETING"  # Meta filed it elsewhere


def test_named_placeholders_are_submitted_as_metas_positional_ones(graph, account):
    provider = whatsapp_provider(account, graph)
    item = submittable(
        account,
        provider,
        header_type="none",
        header_text="",
        buttons=[],
        body="Hola {{first_name}}, su cita es el {{day}}. Hasta el {{day}}.",
        samples={"day": "martes", "first_name": "Ana"},
    )
    graph.route("POST", TEMPLATES_PATH, json_answer({"id": "9", "status": "PENDING"}))

    services.translation_submit(item)

    [request] = graph.received
    assert json.loads(request.body)["components"][0] == {
        "type": "BODY",
        "text": "Hola {{1}}, su cita es el {{2}}. Hasta el {{2}}.",
        "example": {"body_text": [["Ana", "martes"]]},
    }


def test_a_translation_meta_has_already_is_edited_in_place(graph, account):
    provider = whatsapp_provider(account, graph)
    item = submittable(account, provider, buttons=[], header_type="none", header_text="")
    item.status, item.provider_template_id = TemplateStatus.REJECTED, "777"
    item.rejection_reason = "INVALID_FORMAT"
    item.save()
    graph.route("POST", f"/{VERSION}/777", json_answer({"success": True}))

    services.translation_submit(item)

    [request] = graph.received
    assert request.path == f"/{VERSION}/777"
    assert json.loads(request.body) == {
        "category": "UTILITY",
        "components": [
            {
                "type": "BODY",
                "text": "Hola {{1}}, tu pedido llega {{2}}.",
                "example": {"body_text": [["Ana", "mañana"]]},
            },
            {"type": "FOOTER", "text": "Acme Shop"},
        ],
    }
    item.refresh_from_db()
    assert (item.status, item.provider_template_id, item.rejection_reason) == ("PENDING", "777", "")


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"samples": {"1": "Ana"}}, "needs a sample value for {{2}}, {{3}}, {{4}}"),
        ({"body": "{{1}} llega {{2}}."}, "is not valid: The body may not start"),
        (
            {
                "header_type": "image",
                "header_text": "",
                "header_media_url": "https://e.com/a.jpg",
                "buttons": [],
            },
            "has a media header",
        ),
    ],
)
def test_submit_refuses_before_asking_meta(graph, account, fields, message):
    provider = whatsapp_provider(account, graph)
    item = submittable(account, provider, **fields)
    with pytest.raises(services.TemplateSubmitError) as refused:
        services.translation_submit(item)
    assert message in str(refused.value)
    assert graph.received == []
    item.refresh_from_db()
    assert item.status == TemplateStatus.DRAFT


def test_submit_needs_a_provider(account):
    template = make_template(account)
    item = add_translation(
        template, status=TemplateStatus.DRAFT, samples={"1": "a", "2": "b", "3": "c"}
    )
    with pytest.raises(services.TemplateSubmitError, match="no WhatsApp provider account"):
        services.translation_submit(item)


def test_meta_refusing_a_submission_keeps_the_draft(graph, account):
    provider = whatsapp_provider(account, graph)
    item = submittable(account, provider)
    error = {
        "error": {
            "message": "Invalid parameter",
            "type": "OAuthException",
            "code": 100,
            "error_subcode": 2388024,
            "error_data": {"details": "Content in this language already exists"},
        }
    }
    graph.route("POST", TEMPLATES_PATH, json_answer(error, 400))
    with pytest.raises(ProviderError) as refused:
        services.translation_submit(item)
    assert "Content in this language already exists" in refused.value.message
    item.refresh_from_db()
    assert (item.status, item.provider_template_id) == ("DRAFT", "")


# ---------------------------------------------------------------- admin actions


def test_the_admin_submits_and_syncs_with_actions(graph, account, client, admin_user):
    provider = whatsapp_provider(account, graph)
    item = submittable(account, provider)
    graph.route("POST", TEMPLATES_PATH, json_answer({"id": "55", "status": "PENDING"}))
    graph.route("GET", TEMPLATES_PATH, json_answer({"data": META_LIST["data"][:1]}))
    client.force_login(admin_user)
    url = "/admin/messaging/contenttemplate/"

    response = client.post(
        url,
        {"action": "submit_for_approval", "_selected_action": [item.template_id]},
        follow=True,
    )
    shown = [str(m) for m in response.context["messages"]]
    assert shown == ["order_update [es_MX] submitted: Pending review."]
    item.refresh_from_db()
    assert (item.status, item.provider_template_id) == ("PENDING", "55")
    listing = client.get(url).content.decode()
    assert "es_MX (Pending review)" in listing

    response = client.post(
        url, {"action": "sync_with_whatsapp", "_selected_action": [item.template_id]}, follow=True
    )
    shown = [str(m) for m in response.context["messages"]]
    assert shown == ["WhatsApp Cloud (WhatsApp Cloud API): 0 new and 1 updated translations."]
    item.refresh_from_db()
    assert item.status == "APPROVED"


def test_the_demo_seeds_an_approved_reminder_that_opens_a_whatsapp_conversation(db):
    from contactcenter.core.demo import DEMO_TEMPLATE, demo_seed

    demo_seed()
    demo_seed()  # idempotent
    template = ContentTemplate.objects.get(name=DEMO_TEMPLATE)
    translations = list(template.translations.all())
    assert [(t.language, t.status) for t in translations] == [
        ("en_US", "APPROVED"),
        ("es_MX", "APPROVED"),
    ]
    for item in translations:
        item.full_clean()
    request = MessageRequest(
        to=WA_CUSTOMER,  # never wrote: only a template may go
        from_=WA_SENDER,
        content_sid=template.sid,
        content_variables={"1": "Ana", "2": "4 de mayo", "3": "10:30"},
        content_language="es",
    )
    message = message_create(account=template.account, request=request)
    assert message.body.startswith("Hola Ana, le recordamos su cita del 4 de mayo a las 10:30.")
    assert message.body.endswith("Demo clinic\n\n- Confirmar\n- Cambiar la hora")


def test_editing_a_synced_translation_in_the_admin_asks_for_a_new_review(
    graph, account, client, admin_user
):
    provider = whatsapp_provider(account, graph)
    item = submittable(account, provider)
    item.status, item.provider_template_id = TemplateStatus.APPROVED, "594"
    item.save()
    template = item.template
    client.force_login(admin_user)
    url = f"/admin/messaging/contenttemplate/{template.id}/change/"
    page = client.get(url).content.decode()
    assert 'name="translations-0-status"' not in page  # Meta's status, not ours to set
    assert 'id="template-preview-i18n"' in page and "js/template_preview.js" in page

    data = {
        "account": account.id,
        "friendly_name": template.friendly_name,
        "name": template.name,
        "category": template.category,
        "provider": provider.id,
        "default_language": "es_MX",
        "translations-TOTAL_FORMS": 1,
        "translations-INITIAL_FORMS": 1,
        "translations-MIN_NUM_FORMS": 0,
        "translations-MAX_NUM_FORMS": 1000,
        "translations-0-id": item.id,
        "translations-0-template": template.id,
        "translations-0-language": "es_MX",
        "translations-0-header_type": item.header_type,
        "translations-0-header_text": item.header_text,
        "translations-0-header_media_url": "",
        "translations-0-body": "Hola {{1}}, su pedido llega {{2}}.",
        "translations-0-footer": item.footer,
        "translations-0-buttons": json.dumps(item.buttons),
        "translations-0-samples": json.dumps(item.samples),
        # What the page sends for fields with a callable default (show_hidden_initial).
        "initial-translations-0-buttons": json.dumps(item.buttons),
        "initial-translations-0-samples": json.dumps(item.samples),
        "_continue": "1",
    }
    response = client.post(url, data, follow=True)

    shown = [str(m) for m in response.context["messages"]]
    assert "Edited translations need Meta's review again: submit es_MX." in shown
    item.refresh_from_db()
    assert (item.status, item.body) == ("DRAFT", "Hola {{1}}, su pedido llega {{2}}.")

    # Meta approves the edit; saving the page again without changes keeps that status.
    ContentTemplateTranslation.objects.filter(id=item.id).update(status=TemplateStatus.APPROVED)
    client.post(url, data, follow=True)
    item.refresh_from_db()
    assert item.status == "APPROVED"
