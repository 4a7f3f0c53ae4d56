"""A customer chats with the demo's bot on the simulator page: the flow runs on a real
Celery worker and its replies appear in the thread as they are sent."""

import pytest

from contactcenter.core.demo import DEMO_PASSWORD, demo_seed
from contactcenter.flows.models import DemoAppointment, FlowFunctionConfig
from messaging.models import Sender

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

CUSTOMER = "whatsapp:+573001112244"


def test_a_customer_cancels_an_appointment_with_the_bot(
    live_server, page, screenshot, celery_worker_process
):
    demo_seed()
    config = FlowFunctionConfig.objects.get(name="cancel_appointment")
    config.environment = {"APPOINTMENTS_API_URL": f"{live_server.url}/demo/appointments"}
    config.save()
    whatsapp = Sender.objects.get(address="whatsapp:+14155550199")

    page.goto(f"{live_server.url}/accounts/login/?next=/simulator/")
    page.fill("#id_username", "admin")
    page.fill("#id_password", DEMO_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/simulator/")
    page.select_option("#sim-channel", "whatsapp")
    page.fill("#sim-number", CUSTOMER.removeprefix("whatsapp:"))
    page.select_option("#sim-sender", whatsapp.sid)
    page.fill("#sim-name", "Dave")
    page.click("text=Open thread")
    page.wait_for_url("**/simulator/?*")
    bot = page.locator(".sim-msg-business .sim-body")

    def say(text: str, replies: int) -> str:
        page.fill("#sim-body", text)
        page.click("[data-send]")
        page.locator(".sim-msg-business").nth(replies - 1).wait_for(timeout=20_000)
        return bot.nth(replies - 1).inner_text()

    assert "Reply 2 for English." in say("Hello", 1)
    assert say("2", 2).startswith("What would you like to do?")
    assert say("1", 3) == "Please type the document number you booked the appointment with."
    assert say("2001", 4) == (
        "Done, Dave Miller: your appointment (document 2001) is canceled. Thank you!"
    )
    assert DemoAppointment.objects.get(document="2001").state == "canceled"
    screenshot("simulator-bot")
