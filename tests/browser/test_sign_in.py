"""A person signs in, lands on their page, switches language, is kept out of others."""

import pytest

from tests.browser.conftest import ARTIFACTS
from tests.conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def sign_in(page, base_url: str, username: str) -> None:
    page.goto(f"{base_url}/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")


def test_an_agent_signs_in_switches_to_spanish_and_signs_out(live_server, page, screenshot, agent1):
    page.goto(f"{live_server.url}/desk/")
    assert page.url.startswith(f"{live_server.url}/accounts/login/")
    assert page.locator("h1").inner_text() == "Sign in"
    screenshot("login-en")

    sign_in(page, live_server.url, "agent1")
    page.wait_for_url(f"{live_server.url}/desk/")
    assert page.locator("h1").inner_text() == "Agent desktop"
    assert page.locator(".topnav a").all_inner_texts() == ["Agent desktop"]
    # The stylesheet loaded: the top bar is laid out as a flex row.
    assert page.locator(".topbar").evaluate("e => getComputedStyle(e).display") == "flex"

    page.select_option("#language-select", "es")
    page.wait_for_load_state("load")
    page.locator("h1", has_text="Escritorio del agente").wait_for()
    assert page.locator("html").get_attribute("lang") == "es"
    screenshot("desk-es")

    page.click("text=Cerrar sesión")
    page.wait_for_url(f"{live_server.url}/accounts/login/")
    assert page.locator("h1").inner_text() == "Iniciar sesión"
    screenshot("login-es")


def test_a_wrong_password_shows_an_error(live_server, page, screenshot, agent1):
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("#id_username", "agent1")
    page.fill("#id_password", "wrong")
    page.click("button[type=submit]")
    alert = page.locator("[role=alert]")
    alert.wait_for()
    assert "correct username and password" in alert.inner_text()
    screenshot("login-error")


def test_a_supervisor_lands_on_the_console_and_cannot_open_the_desk(
    live_server, page, screenshot, supervisor
):
    sign_in(page, live_server.url, "supervisor")
    page.wait_for_url(f"{live_server.url}/supervisor/")
    assert page.locator("h1").inner_text() == "Supervisor console"
    screenshot("supervisor-en")
    response = page.goto(f"{live_server.url}/desk/")
    assert response.status == 403
    assert page.locator("h1").inner_text() == "You cannot open this page"
    screenshot("forbidden-en")


def test_the_sign_in_page_fits_a_phone(browser, live_server, db):
    context = browser.new_context(viewport={"width": 375, "height": 740}, locale="es-ES")
    page = context.new_page()
    page.goto(f"{live_server.url}/accounts/login/")
    assert page.locator("h1").inner_text() == "Iniciar sesión"
    # Nothing overflows sideways on a narrow screen.
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "login-phone-es.png"), full_page=True)
    context.close()


def test_an_admin_lands_in_the_django_admin_in_spanish(live_server, browser, admin_user):
    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="es-ES")
    page = context.new_page()
    sign_in(page, live_server.url, "admin")
    page.wait_for_url(f"{live_server.url}/admin/")
    assert page.locator("#site-name").inner_text() == "Administración de contactcenter"
    # Django's own admin strings are Spanish too; the groups are listed for the admin.
    assert page.locator("text=Autenticación y autorización").count() == 1
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "admin-es.png"), full_page=True)
    context.close()
