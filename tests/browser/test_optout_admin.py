"""An admin sets up advanced opt-out for a messaging service in the admin: the new
configuration opens with the default English and Spanish sets, a word given two kinds and a
removed STOP are refused with a clear message, a fixed form saves; in English and Spanish."""

import pytest

from messaging.models import KeywordConfig
from messaging.services.keywords import keyword_config_create
from tests.browser.conftest import ARTIFACTS
from tests.browser.test_sign_in import sign_in
from tests.messaging.conftest import build_world

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ADMIN = "/admin/messaging/keywordconfig/"


def _admin_page(browser, live_server, locale: str):
    context = browser.new_context(viewport={"width": 1400, "height": 900}, locale=locale)
    page = context.new_page()
    page.set_default_timeout(10_000)
    sign_in(page, live_server.url, "admin")
    page.wait_for_url(f"{live_server.url}/admin/")
    return context, page


def _row(page, kind: str, language: str):
    """The inline row of one set, found by what its selects say."""
    for row in page.locator("#keyword_sets-group tbody tr.form-row").all():
        if row.locator("select[name$='-kind']").count() == 0:
            continue
        if (
            row.locator("select[name$='-kind']").input_value() == kind
            and row.locator("select[name$='-language']").input_value() == language
        ):
            return row
    raise AssertionError(f"no {kind}/{language} row")


def _screenshot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_an_admin_configures_keywords_and_is_told_what_is_wrong(live_server, browser, admin_user):
    world = build_world()
    context, page = _admin_page(browser, live_server, "en-US")
    page.goto(f"{live_server.url}{ADMIN}add/")
    page.select_option("#id_service", str(world.service.id))
    page.click("input[name=_save]")
    config = KeywordConfig.objects.get()
    page.wait_for_url(f"{live_server.url}{ADMIN}{config.id}/change/")
    assert "default English and Spanish keyword sets" in page.locator(".messagelist").inner_text()
    assert page.locator("#keyword_sets-group tbody tr.form-row.has_original").count() == 6
    stop_words = _row(page, "opt_out", "en").locator("textarea[name$='-keywords']")
    assert stop_words.input_value().startswith("STOP, STOPALL, UNSUBSCRIBE")

    # QUIT as a help word too, and STOP taken out: both refused, nothing saved.
    _row(page, "help", "en").locator("textarea[name$='-keywords']").fill("HELP, INFO, QUIT")
    stop_words.fill("STOPALL, END, QUIT")
    page.click("input[name=_continue]")
    page.locator(".errornote").wait_for()
    errors = page.locator("#keyword_sets-group").inner_text()
    assert "STOP cannot be removed from the English Opt-out set: carriers require it." in errors
    _screenshot(page, "optout-keywords-errors-en")

    # Fixed: QUIT moves from opt-out to help in this one save.
    stop_words = _row(page, "opt_out", "en").locator("textarea[name$='-keywords']")
    stop_words.fill("STOP, STOPALL, END")
    page.click("input[name=_continue]")
    page.locator(".messagelist .success").wait_for()
    help_set = config.keyword_sets.get(kind="help", language="en")
    assert help_set.keywords == "HELP, INFO, QUIT"
    assert config.keyword_sets.get(kind="opt_out", language="en").keywords == "STOP, STOPALL, END"
    _screenshot(page, "optout-keywords-en")
    context.close()


def test_the_conflict_between_kinds_is_named(live_server, browser, admin_user):
    world = build_world()
    config = keyword_config_create(service=world.service)
    context, page = _admin_page(browser, live_server, "en-US")
    page.goto(f"{live_server.url}{ADMIN}{config.id}/change/")
    _row(page, "opt_in", "es").locator("textarea[name$='-keywords']").fill("ALTA, BAJA")
    page.click("input[name=_continue]")
    page.locator(".errornote").wait_for()
    assert (
        "BAJA is in both the Opt-out and Opt-in sets: a word can do one thing only."
        in page.locator("#keyword_sets-group .errorlist.nonform").inner_text()
    )
    context.close()


def test_the_keyword_admin_speaks_spanish(live_server, browser, admin_user):
    world = build_world()
    config = keyword_config_create(service=world.service)
    config.keyword_sets.filter(language="es", kind="help").delete()
    context, page = _admin_page(browser, live_server, "es-ES")
    page.goto(f"{live_server.url}{ADMIN}")
    assert page.locator("h1").inner_text() == (
        "Seleccione configuración de palabras clave de baja a modificar"
    )
    filters = page.locator("#changelist-filter").inner_text()
    assert "Por ámbito" in filters and "Remitente sin servicio" in filters
    assert "en, es" in page.locator("#result_list").inner_text()
    _screenshot(page, "optout-keywords-list-es")

    page.locator(f"#result_list input[value='{config.id}']").check()
    page.select_option("select[name=action]", "reset_to_defaults")
    page.click("button[name=index]")
    page.locator(".messagelist .success").wait_for()
    assert "1 configuración tiene ahora los conjuntos de palabras clave predeterminados." in (
        page.locator(".messagelist").inner_text()
    )
    assert config.keyword_sets.filter(language="es", kind="help").exists()

    page.goto(f"{live_server.url}{ADMIN}{config.id}/change/")
    # The text itself: the admin's style shows these headers in capitals.
    headers = [
        th.text_content().strip() for th in page.locator("#keyword_sets-group thead th").all()
    ]
    assert [h for h in headers if h][:5] == [
        "Tipo",
        "Idioma",
        "País",
        "Palabras clave",
        "Respuesta",
    ]
    kind = _row(page, "opt_out", "es").locator("select[name$='-kind'] option:checked")
    assert kind.inner_text() == "Baja"
    reply = _row(page, "opt_out", "es").locator("textarea[name$='-reply']").input_value()
    assert reply.startswith("Baja confirmada")
    _screenshot(page, "optout-keywords-es")
    context.close()
