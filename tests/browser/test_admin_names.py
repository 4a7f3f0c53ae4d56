"""An admin reads the admin's model list in Spanish and in English: every messaging and
routing model is named in the admin's language and pluralised as a person would, not by
Django's default of the singular plus "s"."""

import pytest

from tests.browser.conftest import ARTIFACTS
from tests.browser.test_sign_in import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SPANISH = {
    "Mensajería": [
        "Bajas",
        "Claves de API",
        "Configuraciones de palabras clave de baja",
        "Contactos",
        "Conversaciones",
        "Cuentas",
        "Cuentas de proveedor",
        "Eventos entrantes",
        "Mensajes",
        "Notificaciones de estado",
        "Peticiones de webhook",
        "Plantillas de contenido",
        "Remitentes",
        "Servicios de mensajería",
    ],
    "Enrutamiento": [
        "Actividades",
        "Canales de tareas",
        "Colas de tareas",
        "Espacios de trabajo",
        "Eventos",
        "Flujos de trabajo",
        "Reservas",
        "Tareas",
        "Trabajadores",
    ],
    "Flujos de bot": [
        "Citas de demostración",
        "Ejecuciones",
        "Flujos",
        "Funciones de flujo",
        "Hosts HTTP permitidos",
    ],
    "Escritorio de agentes y consola de supervisión": [
        "Códigos de cierre",
        "Notas privadas",
        "Respuestas predefinidas",
        "Traspasos",
    ],
}
# What the screenshot of the bug showed: English names and Django's "singular + s".
BROKEN = [
    "Messaging",
    "Routing",
    "Accounts",
    "Contacts",
    "Conversations",
    "Messages",
    "Provider accounts",
    "Senders",
    "Status callbacks",
    "Opt-outs",
    "Clave de APIs",
    "Canal de tareass",
    "Cola de tareass",
    "Espacio de trabajos",
    "Flujo de trabajos",
    "Servicio de mensajerías",
]

ENGLISH = {
    "Messaging": [
        "API keys",
        "Accounts",
        "Contacts",
        "Content templates",
        "Conversations",
        "Inbound events",
        "Messages",
        "Messaging services",
        "Opt-out keyword configurations",
        "Opt-outs",
        "Provider accounts",
        "Senders",
        "Status callbacks",
        "Webhook requests",
    ],
    "Routing": [
        "Activities",
        "Events",
        "Reservations",
        "Task channels",
        "Task queues",
        "Tasks",
        "Workers",
        "Workflows",
        "Workspaces",
    ],
    "Bot flows": [
        "Allowed HTTP hosts",
        "Demo appointments",
        "Executions",
        "Flow functions",
        "Flows",
    ],
    "Agent desktop and supervisor console": [
        "Canned responses",
        "Disposition codes",
        "Hand-offs",
        "Private notes",
    ],
}


def _app_list(page, selector: str) -> dict[str, list[str]]:
    """App caption → the model names listed under it, as shown."""
    apps = {}
    for module in page.locator(f"{selector} .module[class*='app-']").all():
        # The text itself: the admin's style shows captions in capitals.
        caption = module.locator("caption").text_content().strip()
        apps[caption] = [name.strip() for name in module.locator("th[scope=row]").all_inner_texts()]
    return apps


def _sign_in_as_admin(browser, live_server, locale: str):
    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale=locale)
    page = context.new_page()
    page.set_default_timeout(10_000)
    sign_in(page, live_server.url, "admin")
    page.wait_for_url(f"{live_server.url}/admin/")
    return context, page


def test_the_admin_names_every_model_in_spanish(live_server, browser, admin_user):
    context, page = _sign_in_as_admin(browser, live_server, "es-ES")
    assert page.locator("html").get_attribute("lang") == "es"
    apps = _app_list(page, "#content-main")
    assert {app: apps.get(app) for app in SPANISH} == SPANISH
    shown = [*apps, *(name for names in apps.values() for name in names)]
    assert [name for name in BROKEN if name in shown] == []
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "admin-names-es.png"), full_page=True)

    # The side bar of a change list lists the same names, and its own page title too.
    page.goto(f"{live_server.url}/admin/messaging/provideraccount/")
    assert page.locator("h1").inner_text() == "Seleccione cuenta de proveedor a modificar"
    sidebar = _app_list(page, "#nav-sidebar")
    assert {app: sidebar.get(app) for app in SPANISH} == SPANISH
    page.screenshot(path=str(ARTIFACTS / "admin-names-sidebar-es.png"), full_page=True)
    context.close()


def test_the_admin_names_every_model_in_english(live_server, browser, admin_user):
    context, page = _sign_in_as_admin(browser, live_server, "en-US")
    apps = _app_list(page, "#content-main")
    assert {app: apps.get(app) for app in ENGLISH} == ENGLISH
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "admin-names-en.png"), full_page=True)
    context.close()
