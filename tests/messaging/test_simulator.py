"""The customer phone page: staff only, shows one thread with live statuses, and a customer's
reply goes through the signed webhook path like any provider's."""

import pytest

from messaging import hooks, tasks
from messaging.models import Message, MessagingService, Sender
from messaging.services.messages import MessageRequest, message_create
from messaging.services.providers import provider_credentials_set
from tests.messaging.conftest import WEBHOOK_SECRET
from tests.support.delivery import deliver_now

SECRET = WEBHOOK_SECRET
LONG_CODE = "+14155550100"
CUSTOMER = "+14155550142"


@pytest.fixture
def senders(account, provider):
    service = MessagingService.objects.create(account=account, friendly_name="Demo")
    made = {}
    for kind, address, country in [
        ("long_code", LONG_CODE, ""),
        ("alphanumeric", "ACME", "ES"),
        ("whatsapp", "whatsapp:+14155550199", ""),
    ]:
        sender = Sender(
            account=account,
            provider=provider,
            service=service,
            kind=kind,
            address=address,
            country=country,
        )
        sender.full_clean()
        sender.save()
        made[kind] = sender
    return made


@pytest.fixture
def staff(admin_user, client_for):
    return client_for(admin_user)


def send(account, to: str, body: str, from_: str = LONG_CODE) -> Message:
    return message_create(account=account, request=MessageRequest(to=to, from_=from_, body=body))


def thread(client, sender: Sender, customer: str) -> list[dict]:
    response = client.get("/simulator/api/thread", {"customer": customer, "sender": sender.sid})
    assert response.status_code == 200
    return response.json()["messages"]


def reply(client, sender: Sender, customer: str, body: str, **extra):
    return client.post(
        "/simulator/reply",
        {"sender": sender.sid, "customer": customer, "body": body, **extra},
        headers={"Accept": "application/json"},
    )


# ---------------------------------------------------------------- access


def test_staff_open_the_page(staff, senders):
    response = staff.get("/simulator/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "Customer phone" in html
    assert senders["long_code"].sid in html
    assert "30003" in html  # the failure rules panel
    assert 'href="/simulator/"' in html  # the nav link, shown to staff


@pytest.mark.parametrize("member", ["agent1", "supervisor", "outsider"])
def test_other_members_are_refused(request, client_for, member, senders):
    client = client_for(request.getfixturevalue(member))
    assert client.get("/simulator/").status_code == 403
    assert client.get("/simulator/api/threads").status_code == 403
    assert reply(client, senders["long_code"], CUSTOMER, "hi").status_code == 403
    assert not Message.objects.exists()


def test_a_non_staff_member_sees_no_simulator_link(client_for, agent1):
    html = client_for(agent1).get("/desk/").content.decode()
    assert "/simulator/" not in html


def test_anonymous_visitors_go_to_sign_in(client, db):
    response = client.get("/simulator/?customer=%2B14155550142")
    assert response.status_code == 302
    assert response.url.startswith("/accounts/login/?next=/simulator/")
    assert client.get("/simulator/api/thread").status_code == 302


# ---------------------------------------------------------------- the thread


def test_the_thread_json_shows_outbound_messages_and_their_statuses(staff, account, senders):
    message = send(account, CUSTOMER, "Your order has shipped")
    send(account, "+14155550143", "Someone else's message")

    [item] = thread(staff, senders["long_code"], CUSTOMER)
    assert item["sid"] == message.sid
    assert item["direction"] == "outbound-api"
    assert item["from_customer"] is False
    assert item["body"] == "Your order has shipped"
    assert item["status"] == "queued"
    assert item["status_label"] == "Queued"
    assert item["error_code"] is None
    assert item["date"].startswith(str(message.date_created.date()))


def test_a_failure_rule_shows_its_error_code(staff, account, senders):
    failing = "+14155550003"  # ends in 0003: the simulated carrier says 30003
    message = send(account, failing, "Are you there?")
    assert deliver_now().sent == 1
    assert thread(staff, senders["long_code"], failing)[0]["status"] == "sent"

    message.refresh_from_db()  # the carrier's receipt arrives (run here, not on a worker)
    tasks.simulator_receipt(
        message.sender.provider_id, message.provider_message_id, message.to_address
    )

    [item] = thread(staff, senders["long_code"], failing)
    assert item["status"] == "undelivered"
    assert item["error_code"] == 30003
    assert item["error_message"] == "Unreachable destination handset"


def test_the_thread_api_needs_a_sender_and_a_customer(staff, senders):
    response = staff.get("/simulator/api/thread", {"customer": CUSTOMER})
    assert response.status_code == 400
    response = staff.get(
        "/simulator/api/thread", {"customer": "nonsense", "sender": senders["long_code"].sid}
    )
    assert response.status_code == 400
    assert "Not a valid customer address" in response.json()["message"]


def test_the_page_renders_the_thread_and_lists_it(staff, account, senders):
    send(account, CUSTOMER, "Your code is 1234")
    html = staff.get(
        "/simulator/",
        {"channel": "sms", "number": "+1 415 555 0142", "sender": senders["long_code"].sid},
    ).content.decode()
    assert "Your code is 1234" in html
    assert 'data-customer="+14155550142"' in html
    assert "sim-thread is-current" in html

    threads = staff.get("/simulator/api/threads").json()["threads"]
    assert [(t["customer"], t["sender"], t["count"]) for t in threads] == [
        (CUSTOMER, senders["long_code"].sid, 1)
    ]


def test_an_unknown_sender_is_explained(staff, senders):
    html = staff.get("/simulator/", {"number": CUSTOMER, "sender": "PNnope"}).content.decode()
    assert "Pick a simulator sender and a customer." in html
    assert "data-composer" not in html


def test_a_customer_of_another_channel_is_explained(staff, senders):
    html = staff.get(
        "/simulator/",
        {"channel": "whatsapp", "number": CUSTOMER, "sender": senders["long_code"].sid},
    ).content.decode()
    assert "sends on SMS; whatsapp:+14155550142 is on WhatsApp" in html
    assert "data-composer" not in html


def test_the_page_speaks_spanish(staff, senders):
    html = staff.get("/simulator/", HTTP_ACCEPT_LANGUAGE="es").content.decode()
    assert "Teléfono del cliente" in html
    assert "Operador simulado" in html


# ---------------------------------------------------------------- replying as the customer


def test_a_customer_reply_goes_through_the_inbound_path_and_appears(
    staff, account, senders, monkeypatch, django_capture_on_commit_callbacks
):
    handled: list[int] = []
    monkeypatch.setattr(hooks, "_inbound_handlers", [])
    hooks.register_inbound_handler(handled.append)
    outbound = send(account, CUSTOMER, "How can we help?")

    with django_capture_on_commit_callbacks(execute=True):
        response = reply(
            staff, senders["long_code"], CUSTOMER, "My parcel is late", profile_name="Eva"
        )

    assert response.status_code == 201
    inbound = Message.objects.get(sid=response.json()["sid"])
    assert (inbound.direction, inbound.status) == ("inbound", "received")
    assert (inbound.from_address, inbound.to_address) == (CUSTOMER, LONG_CODE)
    assert inbound.provider_message_id.startswith("SS")
    assert inbound.conversation_id == outbound.conversation_id
    assert inbound.contact.name == "Eva"
    assert handled == [inbound.id]  # the product heard about it, after commit

    items = thread(staff, senders["long_code"], CUSTOMER)
    assert [(i["body"], i["from_customer"]) for i in items] == [
        ("How can we help?", False),
        ("My parcel is late", True),
    ]
    assert items[1]["status_label"] == "Received"


def test_a_reply_is_verified_like_any_webhook(staff, senders, monkeypatch):
    import messaging.simulator.services

    # The page signs what it sends; a wrong signature must be refused by the webhook's check.
    monkeypatch.setattr(messaging.simulator.services, "signature", lambda secret, body: "0" * 64)
    response = reply(staff, senders["long_code"], CUSTOMER, "hello")
    assert response.status_code == 400
    assert response.json()["code"] == 20403
    assert not Message.objects.exists()


def test_a_reply_without_a_provider_secret_says_what_to_do(staff, senders, provider):
    provider_credentials_set(provider, {})
    response = reply(staff, senders["long_code"], CUSTOMER, "hello")
    assert response.status_code == 400
    assert "no webhook secret" in response.json()["message"]
    assert not Message.objects.exists()


def test_a_whatsapp_customer_replies_to_the_whatsapp_sender(staff, senders):
    response = reply(staff, senders["whatsapp"], "+14155550142", "hola", channel="whatsapp")
    assert response.status_code == 201
    message = Message.objects.get()
    assert message.from_address == "whatsapp:+14155550142"
    assert message.channel == "whatsapp"


@pytest.mark.parametrize(
    ("kind", "customer", "body", "message"),
    [
        ("alphanumeric", "+34600000001", "hola", "alphanumeric sender ID"),
        ("long_code", CUSTOMER, "   ", "Type a message first"),
        ("long_code", CUSTOMER, "x" * 1601, "longer than 1600"),
        ("long_code", "whatsapp:+14155550142", "hi", "is on WhatsApp"),
        ("long_code", "12", "hi", "Not a valid customer address"),
    ],
)
def test_replies_that_cannot_be_sent_are_explained(staff, senders, kind, customer, body, message):
    response = reply(staff, senders[kind], customer, body)
    assert response.status_code == 400
    assert message in response.json()["message"]
    assert not Message.objects.exists()


def test_without_script_a_reply_returns_to_the_thread(staff, senders):
    response = staff.post(
        "/simulator/reply",
        {"sender": senders["long_code"].sid, "customer": CUSTOMER, "body": "no js here"},
    )
    assert response.status_code == 302
    assert response.url == f"/simulator/?sender={senders['long_code'].sid}&customer=%2B14155550142"
    assert Message.objects.get().body == "no js here"
    page = staff.get(response.url).content.decode()
    assert "no js here" in page
