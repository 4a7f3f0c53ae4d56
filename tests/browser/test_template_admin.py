"""An admin writes a WhatsApp template in the admin: the preview beside the translation draws
the WhatsApp bubble as they type (header, body with the sample values, footer, buttons), a
body Meta would reject is refused on save with a message saying why, and the fixed template
saves; in English and in Spanish."""

import pytest

from messaging.models import ContentTemplate, ContentTemplateTranslation
from tests.browser.conftest import ARTIFACTS
from tests.browser.test_sign_in import sign_in
from tests.messaging.conftest import build_world

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ADMIN = "/admin/messaging/contenttemplate/"
ROW = "#translations-0"


def _admin_page(browser, live_server, locale: str):
    context = browser.new_context(viewport={"width": 1440, "height": 1000}, locale=locale)
    page = context.new_page()
    page.set_default_timeout(10_000)
    sign_in(page, live_server.url, "admin")
    page.wait_for_url(f"{live_server.url}/admin/")
    return context, page


def _screenshot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def _field(page, name: str):
    return page.locator(f"#id_translations-0-{name}")


def _preview(page, part: str):
    return page.locator(f"{ROW} .wa-preview .wa-{part}")


def _fill_template(page, world, *, body: str) -> None:
    page.select_option("#id_account", str(world.account.id))
    page.fill("#id_friendly_name", "Table ready")
    page.fill("#id_name", "table_ready")
    _field(page, "language").fill("en_US")
    _field(page, "status").select_option("APPROVED")
    _field(page, "samples").fill('{"1": "Ana", "2": "4"}')
    _field(page, "header_type").select_option("text")
    _field(page, "header_text").fill("Table for {{2}}")
    _field(page, "body").fill(body)
    _field(page, "footer").fill("Casa Lupe")
    _field(page, "buttons").fill(
        '[{"type": "QUICK_REPLY", "text": "On my way"},'
        ' {"type": "URL", "text": "Menu", "url": "https://lupe.example.com/menu"}]'
    )


def test_the_preview_follows_the_typing_and_a_bad_body_is_refused(live_server, browser, admin_user):
    world = build_world()
    context, page = _admin_page(browser, live_server, "en-US")
    page.goto(f"{live_server.url}{ADMIN}add/")
    assert page.locator(f"{ROW} .wa-preview-title").inner_text() == "WhatsApp preview"
    assert _preview(page, "body").inner_text() == "Type a body to see the message."

    _fill_template(page, world, body="Hi {{1}}, your table is ready.")
    assert page.locator(f"{ROW} .wa-preview-title").inner_text() == "WhatsApp preview · en_US"
    assert _preview(page, "header").inner_text() == "Table for 4"
    assert _preview(page, "body").inner_text() == "Hi Ana, your table is ready."
    assert _preview(page, "footer").inner_text() == "Casa Lupe"
    assert page.locator(f"{ROW} .wa-button-text").all_inner_texts() == ["On my way", "Menu"]

    # Typing changes the bubble at once; a placeholder without a sample stays visible.
    _field(page, "body").press_sequentially(" See you at {{3}}, *thanks*!")
    assert _preview(page, "body").inner_text() == (
        "Hi Ana, your table is ready. See you at {{3}}, thanks!"
    )
    assert _preview(page, "body").locator("strong").inner_text() == "thanks"
    assert _preview(page, "body").locator(".wa-placeholder").inner_text() == "{{3}}"
    notes = page.locator(f"{ROW} .wa-notes").inner_text()
    assert "Body: 58/1024 characters" in notes
    assert "No sample for {{3}}: it shows as a placeholder." in notes
    _screenshot(page, "template-preview-en")

    # A body that starts with a placeholder: Meta would reject it, so the admin does.
    _field(page, "body").fill("{{1}}, your table is ready.")
    assert _preview(page, "body").inner_text() == "Ana, your table is ready."
    page.click("input[name=_continue]")
    page.locator(".errornote").wait_for()
    errors = page.locator(f"{ROW} .errorlist").all_inner_texts()
    assert errors == [
        "The body may not start with a placeholder ({{1}}): WhatsApp rejects such templates. "
        "Put words before it."
    ]
    assert not ContentTemplate.objects.exists()
    # The page came back with what was typed, and its preview.
    assert _preview(page, "body").inner_text() == "Ana, your table is ready."
    _screenshot(page, "template-preview-error-en")

    _field(page, "body").fill("Hi {{1}}, your table is ready.")
    page.click("input[name=_continue]")
    page.locator(".messagelist .success").wait_for()
    template = ContentTemplate.objects.get()
    translation = ContentTemplateTranslation.objects.get(template=template)
    assert (template.name, template.sid[:2]) == ("table_ready", "HX")
    assert (translation.language, translation.status) == ("en_US", "APPROVED")
    assert translation.header_text == "Table for {{2}}"
    assert translation.samples == {"1": "Ana", "2": "4"}
    assert page.locator(f"{ROW} .wa-body").inner_text() == "Hi Ana, your table is ready."

    # Another language: the added block gets its own preview.
    page.click("#translations-group .add-row a")
    page.fill("#id_translations-1-language", "es_MX")
    page.fill("#id_translations-1-samples", '{"1": "Ana"}')
    page.fill("#id_translations-1-body", "Hola {{1}}, su mesa está lista.")
    second = page.locator("#translations-1 .wa-preview")
    assert second.locator(".wa-body").inner_text() == "Hola Ana, su mesa está lista."
    assert second.locator(".wa-preview-title").inner_text() == "WhatsApp preview · es_MX"
    assert page.locator(f"{ROW} .wa-body").inner_text() == "Hi Ana, your table is ready."
    context.close()


def test_the_preview_and_the_errors_speak_spanish(live_server, browser, admin_user):
    world = build_world()
    context, page = _admin_page(browser, live_server, "es-ES")
    page.goto(f"{live_server.url}{ADMIN}add/")
    assert page.locator("h1").inner_text() == "Añadir plantilla de contenido"
    assert page.locator(f"{ROW} .wa-preview-title").inner_text() == "Vista previa de WhatsApp"
    assert _preview(page, "body").inner_text() == "Escriba un cuerpo para ver el mensaje."

    _fill_template(page, world, body="Hola {{1}}, su mesa está lista.")
    _field(page, "footer").fill("x" * 61)
    assert _preview(page, "body").inner_text() == "Hola Ana, su mesa está lista."
    notes = page.locator(f"{ROW} .wa-notes").inner_text()
    assert "Pie: 61/60 caracteres" in notes
    page.click("input[name=_continue]")
    page.locator(".errornote").wait_for()
    errors = page.locator(f"{ROW} .errorlist").all_inner_texts()
    assert errors == ["El pie tiene 61 caracteres; como máximo 60."]
    _screenshot(page, "template-preview-error-es")

    _field(page, "footer").fill("Casa Lupe")
    page.click("input[name=_continue]")
    page.locator(".messagelist .success").wait_for()
    assert ContentTemplateTranslation.objects.get().footer == "Casa Lupe"
    _screenshot(page, "template-preview-es")
    context.close()


def test_a_synced_translation_shows_metas_status_and_its_media_header(
    live_server, browser, admin_user
):
    world = build_world()
    provider = world.provider
    provider.kind = "whatsapp_cloud"
    provider.save(update_fields=["kind"])
    template = ContentTemplate.objects.create(
        account=world.account,
        friendly_name="Invoice",
        name="invoice_ready",
        provider=provider,
    )
    ContentTemplateTranslation.objects.create(
        template=template,
        language="en_US",
        status="REJECTED",
        rejection_reason="INVALID_FORMAT",
        header_type="document",
        header_media_url="https://files.example.com/invoices/INV-42.pdf",
        body="Hi {{1}}, your invoice {{2}} is attached.",
        buttons=[{"type": "URL", "text": "Pay now", "url": "https://pay.example.com/{{3}}"}],
        samples={"1": "Ana", "2": "INV-42", "3": "42"},
    )
    context, page = _admin_page(browser, live_server, "en-US")
    page.goto(f"{live_server.url}{ADMIN}{template.id}/change/")
    row = page.locator(ROW)
    assert row.locator("[name$='-status']").count() == 0  # Meta's, shown, not editable
    assert "Rejected" in row.locator(".fieldBox.field-status").inner_text()
    assert "INVALID_FORMAT" in row.locator(".field-rejection_reason").inner_text()
    assert _preview(page, "media").inner_text().split() == ["PDF", "INV-42.pdf"]
    assert _preview(page, "body").inner_text() == "Hi Ana, your invoice INV-42 is attached."
    assert page.locator(f"{ROW} .wa-button-url").get_attribute("title") == (
        "https://pay.example.com/42"
    )
    _screenshot(page, "template-preview-synced-en")
    context.close()
