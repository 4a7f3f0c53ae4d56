"""An admin reads the demo flow as a diagram, and an execution's path through it, in
English and Spanish."""

import pytest

from contactcenter.flows.demo import demo_flows_seed
from contactcenter.flows.models import Execution, Flow
from tests.browser.conftest import ARTIFACTS
from tests.browser.test_sign_in import sign_in
from tests.flows.conftest import Flows
from tests.messaging.conftest import build_world

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def demo_flow(transactional_db):
    world = build_world()
    senders = [world.senders["whatsapp"], world.senders["messenger"]]
    flow = demo_flows_seed(world.account, service=world.service, senders=senders)
    flows = Flows(world)
    flows.sender = world.senders["whatsapp"]
    for text in ("hola", "1", "1"):
        flows.say(text, customer="whatsapp:+573001112233")
    return flow


def _open(browser, live_server, locale: str):
    context = browser.new_context(viewport={"width": 1400, "height": 900}, locale=locale)
    page = context.new_page()
    page.set_default_timeout(10_000)
    sign_in(page, live_server.url, "admin")
    page.wait_for_url(f"{live_server.url}/admin/")
    return context, page


def test_the_flow_page_draws_the_flow_and_an_execution_its_path(
    live_server, browser, admin_user, demo_flow
):
    context, page = _open(browser, live_server, "en-US")
    page.goto(f"{live_server.url}/admin/flows/flow/{demo_flow.pk}/change/")
    diagram = page.locator("svg[role=img]")
    assert diagram.locator("g.state").count() == len(demo_flow.definition["states"])
    assert (
        "Run function" in diagram.locator("g.state[data-state=cancel_appointment]").text_content()
    )
    assert page.locator("input[name=_publish]").is_visible()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "flow-admin-en.png"), full_page=True)

    execution = Execution.objects.get(flow=demo_flow)
    page.goto(f"{live_server.url}/admin/flows/execution/{execution.pk}/change/")
    path = page.locator("svg[role=img]")
    visited = path.locator("g.state.visited").evaluate_all("els => els.map(e => e.dataset.state)")
    assert visited == [
        "Trigger", "welcome", "split_language", "set_spanish", "menu", "split_menu", "ask_document",
    ]  # fmt: skip
    assert path.locator("g.state.final").get_attribute("data-state") == "ask_document"
    assert path.locator("g.edge.taken").count() == 6
    page.screenshot(path=str(ARTIFACTS / "flow-execution-en.png"), full_page=True)
    context.close()


def test_the_flow_page_in_spanish(live_server, browser, admin_user, demo_flow):
    context, page = _open(browser, live_server, "es-ES")
    page.goto(f"{live_server.url}/admin/flows/flow/{demo_flow.pk}/change/")
    assert "Enviar y esperar respuesta" in page.locator("svg[role=img]").text_content()
    assert page.locator("input[name=_publish]").get_attribute("value") == "Guardar y publicar"
    page.screenshot(path=str(ARTIFACTS / "flow-admin-es.png"), full_page=True)
    assert Flow.objects.count() == 1
    context.close()
