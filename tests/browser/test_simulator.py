"""An admin opens the customer phone, replies as a customer and watches the business's
messages arrive with their delivery ticks, in English and in Spanish."""

import pytest

from contactcenter.core.demo import DEMO_PASSWORD, demo_seed
from messaging import tasks
from messaging.models import Sender
from messaging.services.accounts import account_get_or_create_default
from messaging.services.messages import MessageRequest, message_create
from tests.support.delivery import deliver_now

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
]

CUSTOMER = "+14155550142"
LONG_CODE = "+14155550100"


@pytest.fixture
def carrier():
    """Drive a send and its delivery receipt in-process, where the test can wait for them.

    The real Celery enqueues still go to the broker (no worker consumes them here; the
    worker fixture purges the queue before it starts)."""

    def deliver(message) -> None:
        assert deliver_now().sent == 1
        message.refresh_from_db()
        tasks.simulator_receipt(
            message.sender.provider_id, message.provider_message_id, message.to_address
        )

    return deliver


def business_sends(to: str, body: str):
    account = account_get_or_create_default()
    return message_create(
        account=account, request=MessageRequest(to=to, from_=LONG_CODE, body=body)
    )


def test_an_admin_replies_as_a_customer_and_sees_the_business_messages(
    live_server, page, screenshot, carrier
):
    demo_seed()
    long_code = Sender.objects.get(address=LONG_CODE)
    # Some earlier traffic, so the thread list has more than one entry.
    carrier(business_sends("+14155550003", "Your appointment is tomorrow at 10:00."))

    page.goto(f"{live_server.url}/accounts/login/?next=/simulator/")
    page.fill("#id_username", "admin")
    page.fill("#id_password", DEMO_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/simulator/")
    assert page.locator("h1").inner_text() == "Customer phone"
    assert page.locator(".topnav a[aria-current=page]").inner_text() == "Simulator"
    assert page.locator("[data-testid=simulator-empty]").is_visible()
    # The earlier thread is listed; the rules panel says which numbers fail, and how.
    assert page.locator(".sim-thread-customer").all_inner_texts() == ["+14155550003"]
    assert page.locator(".sim-rule-list li").count() == 5
    assert "Unreachable destination handset" in page.locator(".sim-rule-list").inner_text()

    page.select_option("#sim-channel", "sms")
    page.fill("#sim-number", CUSTOMER)
    page.select_option("#sim-sender", long_code.sid)
    page.fill("#sim-name", "Eva")
    page.click("text=Open thread")
    page.wait_for_url("**/simulator/?*")
    page.locator(".sim-messages-empty").wait_for()
    assert page.locator(".sim-phone-head h2").inner_text() == LONG_CODE

    page.fill("#sim-body", "Hi! Where is my order #1042?")
    page.click("[data-send]")
    mine = page.locator(".sim-msg-customer", has_text="Where is my order #1042?")
    mine.wait_for()
    assert mine.locator(".sim-status-label").inner_text() == "Received"
    assert page.locator("#sim-body").input_value() == ""

    # The business answers (an agent, a flow, the API: all end in message_create).
    message = business_sends(CUSTOMER, "Hello Eva, your order left our warehouse today.")
    theirs = page.locator(f".sim-msg-business[data-sid='{message.sid}']")
    theirs.wait_for()
    assert theirs.locator(".sim-status-label").inner_text() == "Queued"

    carrier(message)  # sent, then the carrier's delivery receipt
    page.locator(f".sim-msg-business[data-sid='{message.sid}'][data-status=delivered]").wait_for()
    assert theirs.locator(".sim-tick").inner_text() == "✓✓"
    assert theirs.locator(".sim-status-label").inner_text() == "Delivered"
    # Customer's message first, then the business's, in a thread of two.
    assert page.locator(".sim-msg").count() == 2

    page.fill("#sim-body", "Great, thanks!")
    page.keyboard.press("Enter")
    page.locator(".sim-msg-customer", has_text="Great, thanks!").wait_for()
    assert page.locator(".sim-msg").count() == 3
    page.locator(".sim-thread.is-current").wait_for()
    screenshot("simulator")

    page.select_option("#language-select", "es")
    page.wait_for_load_state("load")
    page.locator("h1", has_text="Teléfono del cliente").wait_for()
    assert page.locator(".topnav a[aria-current=page]").inner_text() == "Simulador"
    delivered = page.locator(f".sim-msg-business[data-sid='{message.sid}'] .sim-status-label")
    assert delivered.inner_text() == "Entregado"
    assert page.locator("[data-send]").inner_text() == "Enviar"
    screenshot("simulator-es")


def test_a_failed_delivery_shows_the_carrier_error(live_server, page, screenshot, carrier):
    demo_seed()
    long_code = Sender.objects.get(address=LONG_CODE)
    carrier(business_sends("+14155550003", "Your code is 4242"))

    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("#id_username", "admin")
    page.fill("#id_password", DEMO_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/admin/")
    page.goto(f"{live_server.url}/simulator/?customer=%2B14155550003&sender={long_code.sid}")
    failed = page.locator(".sim-msg-business[data-status=undelivered]")
    failed.wait_for()
    assert "30003" in failed.locator(".sim-error").inner_text()
    assert "Unreachable destination handset" in failed.locator(".sim-error").inner_text()
    assert failed.locator(".sim-tick").inner_text() == "!"
    screenshot("simulator-failed")
