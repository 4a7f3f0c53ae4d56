"""The whole journey of one conversation, in real browsers on the real servers (daphne for
web and websockets, a Celery worker for the bot and the delivery pipeline):

a customer writes on the simulator page → the demo bot answers → the customer asks for a
person → agent1 (Available, signed in in another browser context) gets the offer, accepts,
reads the bot transcript, replies → the customer sees the reply → the agent wraps up and
completes → the supervisor console shows the numbers move. Then the server restarts under
the agent's feet and nothing the customer wrote meanwhile is lost or shown twice.

Screenshots of each step go to tests/artifacts/ (git-ignored; CI keeps them).
"""

from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import PBKDF2PasswordHasher
from playwright.sync_api import expect

from contactcenter.core.demo import DEMO_PASSWORD, demo_seed
from messaging.models import Conversation, Message, Sender
from messaging.simulator.services import simulator_customer_reply
from routing.models import Task, Worker

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
CUSTOMER = "whatsapp:+14155550123"
WHATSAPP = "whatsapp:+14155550199"
WAIT = 30_000


def _passwords_for_daphne(*usernames: str) -> None:
    """The suite hashes passwords with MD5 (fast); daphne runs the production hashers, which
    do not read MD5. Store PBKDF2 hashes (cheap iterations; daphne upgrades them)."""
    hasher = PBKDF2PasswordHasher()
    for user in get_user_model().objects.filter(username__in=usernames):
        user.password = hasher.encode(DEMO_PASSWORD, hasher.salt(), iterations=1000)
        user.save(update_fields=["password"])


def _context(browser, locale: str = "en-US"):
    context = browser.new_context(viewport={"width": 1366, "height": 860}, locale=locale)
    page = context.new_page()
    page.set_default_timeout(WAIT)
    return context, page


def _sign_in(page, url: str, username: str, next_path: str) -> None:
    page.goto(f"{url}/accounts/login/?next={next_path}")
    page.fill("#id_username", username)
    page.fill("#id_password", DEMO_PASSWORD)
    page.click("button[type=submit]")
    try:
        page.wait_for_url(f"{url}{next_path}*")
    except Exception:
        _shot(page, f"journey-sign-in-failed-{username}")
        raise


def _shot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


class Customer:
    """The customer's phone: the simulator page."""

    def __init__(self, page, url: str, sender: Sender):
        self.page = page
        _sign_in(page, url, "admin", "/simulator/")
        page.select_option("#sim-channel", "whatsapp")
        page.fill("#sim-number", CUSTOMER.removeprefix("whatsapp:"))
        page.select_option("#sim-sender", sender.sid)
        page.fill("#sim-name", "Dave")
        page.click("text=Open thread")
        page.wait_for_url("**/simulator/?*")
        self.business = page.locator(".sim-msg-business .sim-body")

    def say(self, text: str) -> None:
        self.page.fill("#sim-body", text)
        self.page.click("[data-send]")

    def reply(self, n: int) -> str:
        """The n-th message (1-based) the business sent, once it is there."""
        self.business.nth(n - 1).wait_for()
        return self.business.nth(n - 1).inner_text()


def _agent_held(supervisor, worker_sid: str):
    return supervisor.locator(
        f"[data-testid=agent-row][data-worker='{worker_sid}'] [data-testid=agent-held]"
    )


def test_a_conversation_from_the_bot_to_an_agent_and_back(
    daphne_server, browser, celery_worker_process
):
    demo_seed()
    _passwords_for_daphne("admin", "supervisor", "agent1")
    url = daphne_server.url
    sender = Sender.objects.get(address=WHATSAPP)
    agent1 = Worker.objects.get(friendly_name="agent1")

    supervisor_context, supervisor = _context(browser)
    _sign_in(supervisor, url, "supervisor", "/supervisor/")
    supervisor.get_by_test_id("connection-status").filter(has_text="Live").wait_for()
    held = _agent_held(supervisor, agent1.sid)
    held.wait_for()
    assert held.inner_text().startswith("0")
    _shot(supervisor, "journey-01-supervisor-before")

    agent_context, agent = _context(browser)
    _sign_in(agent, url, "agent1", "/desk/")
    agent.get_by_test_id("connection-status").filter(has_text="Live").wait_for()
    agent.select_option("[data-testid=activity-select]", label="Available")
    _shot(agent, "journey-02-agent-available")

    customer_context, phone = _context(browser)
    customer = Customer(phone, url, sender)
    customer.say("Hello")
    assert "Reply 2 for English." in customer.reply(1)
    customer.say("2")
    assert customer.reply(2).startswith("What would you like to do?")
    customer.say("2")
    assert customer.reply(3).startswith("Connecting you to a person")
    _shot(phone, "journey-03-customer-asks-for-a-person")

    offer = agent.get_by_test_id("offer")
    offer.wait_for()
    assert "Dave" in offer.inner_text()
    _shot(agent, "journey-04-agent-offer")
    offer.get_by_test_id("offer-accept").click()

    conversation = Conversation.objects.get(contact__address=CUSTOMER, state="open")
    item = agent.locator(f"[data-testid=conversation-item][data-conversation='{conversation.sid}']")
    item.wait_for()
    bot_lines = agent.locator("[data-testid=message][data-author=bot]")
    bot_lines.nth(2).wait_for()
    transcript = agent.locator("[data-testid=message]").all_inner_texts()
    assert any("What would you like to do?" in line for line in transcript)
    assert any("Connecting you to a person" in line for line in transcript)
    customer_panel = agent.get_by_test_id("customer-panel").inner_text()
    assert "Dave" in customer_panel and CUSTOMER.removeprefix("whatsapp:") in customer_panel
    _shot(agent, "journey-05-agent-reads-the-transcript")

    held.filter(has_text="1").wait_for()
    _shot(supervisor, "journey-06-supervisor-agent-holds-one")

    agent.get_by_test_id("composer").fill("Hi Dave, this is your agent. How can I help?")
    agent.get_by_test_id("segments").filter(has_text="1").wait_for()
    agent.get_by_test_id("send").click()
    mine = agent.locator("[data-testid=message][data-author=agent]")
    mine.first.wait_for()
    assert customer.reply(4) == "Hi Dave, this is your agent. How can I help?"
    _shot(phone, "journey-07-customer-sees-the-reply")
    # The simulated carrier reports delivered, then read: the ticks follow live.
    agent.locator("[data-testid=message][data-author=agent][data-status=read]").wait_for()
    _shot(agent, "journey-08-agent-sees-read")

    # The server goes down; the customer writes meanwhile (stored, its live event reaches
    # nobody); the server comes back: the desk reconnects, resyncs, loses and doubles nothing.
    daphne_server.stop()
    agent.get_by_test_id("connection-status").filter(has_not_text="Live").wait_for()
    while_down = simulator_customer_reply(
        sender=sender, customer=CUSTOMER, body="Are you still there?"
    )
    assert while_down.status == 200
    daphne_server.start()
    agent.locator("[data-testid=message]", has_text="Are you still there?").wait_for()
    agent.get_by_test_id("connection-status").filter(has_text="Live").wait_for()
    customer.say("I need to move my appointment")
    agent.locator("[data-testid=message]", has_text="I need to move my appointment").wait_for()
    texts = agent.locator("[data-testid=message][data-author=customer]").all_inner_texts()
    assert sum("Are you still there?" in t for t in texts) == 1
    assert sum("I need to move my appointment" in t for t in texts) == 1
    _shot(agent, "journey-09-agent-after-a-server-restart")

    agent.get_by_test_id("wrapup-open").click()
    agent.select_option("[data-testid=disposition-select]", "resolved")
    agent.get_by_test_id("wrapup-notes").fill("Moved the appointment to Tuesday.")
    agent.get_by_test_id("wrapup-submit").click()
    agent.get_by_test_id("complete").click()
    item.wait_for(state="detached")
    _shot(agent, "journey-10-agent-completed")

    task = Task.objects.get(handoff__conversation=conversation)
    assert task.assignment_status == "completed"
    assert task.handoff.disposition.code == "resolved"
    assert Message.objects.filter(conversation=conversation, tags__desk_agent="agent1").count() == 1

    held.filter(has_text="0").wait_for()
    answered = supervisor.get_by_test_id("queue-row").filter(has_text="English support")
    assert answered.count() == 1
    # Messaging analytics count the bot's and the agent's messages.
    supervisor.select_option("[data-testid=analytics-period]", "1")
    services = supervisor.get_by_test_id("analytics-services")
    expect(services).not_to_contain_text("No messages in this period.", timeout=WAIT)
    expect(services.locator("tbody tr").first).to_be_visible()
    _shot(supervisor, "journey-11-supervisor-after")
    for context in (agent_context, supervisor_context, customer_context):
        context.close()
