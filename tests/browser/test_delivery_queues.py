"""An admin watches the delivery queues in the admin: a campaign waiting on a slow sender,
with its segments, age and drain estimate, per sender and per service; in English and in
Spanish."""

from datetime import timedelta

import pytest
from django.utils import timezone

from messaging.delivery import engine
from messaging.models import Message, Sender
from messaging.services.messages import MessageRequest, message_create
from tests.browser.conftest import ARTIFACTS
from tests.browser.test_sign_in import sign_in
from tests.messaging.conftest import build_world

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _campaign_waiting():
    """12 messages (3 of 2 segments, so 15 segments) queued on a 1/s long code, the oldest
    queued 2 minutes ago; nothing is sending them (no pump runs here)."""
    world = build_world()
    sender = world.senders["long_code"]
    Sender.objects.filter(id=sender.id).update(throughput=1)
    for i in range(12):
        body = "x" * 200 if i < 3 else f"Offer {i}"
        message_create(
            account=world.account,
            request=MessageRequest(to=f"+1415555{i:04d}", from_=sender.address, body=body),
        )
    oldest = Message.objects.filter(sender=sender).order_by("id").first()
    Message.objects.filter(id=oldest.id).update(date_created=timezone.now() - timedelta(minutes=2))
    engine.reconcile_depths()
    return world, sender


def _figures(row) -> dict[str, str]:
    cells = row.locator("td[data-figure]")
    return {
        cells.nth(i).get_attribute("data-figure"): cells.nth(i).inner_text().strip()
        for i in range(cells.count())
    }


@pytest.mark.parametrize(
    ("locale", "heading", "drain"),
    [("en-US", "Delivery queues", "15 s"), ("es-ES", "Colas de envío", "15 s")],
)
def test_an_admin_sees_what_waits_for_each_sender_and_service(
    live_server, browser, admin_user, locale, heading, drain
):
    world, sender = _campaign_waiting()
    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale=locale)
    page = context.new_page()
    sign_in(page, live_server.url, "admin")
    page.wait_for_url(f"{live_server.url}/admin/")
    page.goto(f"{live_server.url}/admin/messaging/messagingservice/queues/")
    assert page.locator("h1").inner_text() == heading

    sender_row = page.locator(f"[data-testid=senders] tr[data-sid='{sender.sid}']")
    figures = _figures(sender_row)
    assert figures["queued_messages"] == "12"
    assert figures["queued_segments"] == "15"
    assert figures["sending"] == "0"
    assert figures["oldest"].startswith("2 min")
    assert figures["drain"] == drain  # 15 segments at 1 segment/s
    service_row = page.locator(f"[data-testid=services] tr[data-sid='{world.service.sid}']")
    assert _figures(service_row)["queued_segments"] == "15"
    # Only senders with something waiting are listed.
    assert page.locator("[data-testid=senders] tbody tr").count() == 1

    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"delivery-queues-{locale[:2]}.png"), full_page=True)
    context.close()
