"""The demo's tutorial flow end to end: a customer writes on the simulator page, a real
Celery worker runs the flow, the registered function cancels an appointment through the
demo's appointments API (a live server), and "talk to a person" creates the routing task."""

import time

import pytest
from django.test import Client

from contactcenter.core.demo import demo_seed
from contactcenter.desk.models import Handoff
from contactcenter.flows.models import DemoAppointment, Execution, FlowFunctionConfig
from messaging.models import Direction, Message, Sender
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

WHATSAPP = "whatsapp:+14155550199"
MESSENGER = "messenger:100200300"


class Customer:
    """A customer on the simulator page: writes through the page, reads the bot's replies."""

    def __init__(self, client: Client, sender: str, address: str, name: str):
        self.client = client
        self.sender = Sender.objects.get(address=sender)
        self.address = address
        self.name = name
        self.seen = 0

    def says(self, text: str) -> None:
        response = self.client.post(
            "/simulator/reply",
            {
                "sender": self.sender.sid,
                "customer": self.address,
                "body": text,
                "profile_name": self.name,
            },
            HTTP_ACCEPT="application/json",
        )
        assert response.status_code == 201, response.content

    def replies(self) -> list[str]:
        return list(
            Message.objects.filter(to_address=self.address, direction=Direction.OUTBOUND_REPLY)
            .order_by("id")
            .values_list("body", flat=True)
        )

    def next_replies(self, count: int = 1) -> list[str]:
        assert wait_for(lambda: len(self.replies()) >= self.seen + count), self.replies()
        new = self.replies()[self.seen : self.seen + count]
        self.seen += count
        return new


@pytest.fixture
def demo(live_server, transactional_db):
    from django.contrib.auth import get_user_model

    demo_seed()
    # The function calls the demo's appointments API on this test's live server.
    config = FlowFunctionConfig.objects.get(name="cancel_appointment")
    config.environment = {"APPOINTMENTS_API_URL": f"{live_server.url}/demo/appointments"}
    config.save()
    client = Client()
    client.force_login(get_user_model().objects.get(username="admin"))
    return client


def test_cancel_an_appointment_in_spanish(demo, celery_worker_process):
    ana = Customer(demo, WHATSAPP, "whatsapp:+573001112233", "Ana")
    ana.says("hola")
    assert "Responde 1 para continuar en español" in ana.next_replies()[0]
    ana.says("1")
    assert ana.next_replies()[0].startswith("¿Qué quieres hacer?")
    ana.says("1")
    assert ana.next_replies() == ["Escribe el número de documento con el que pediste la cita."]
    ana.says(" 1002 ")
    assert ana.next_replies() == [
        "Listo, Bruno Díaz: cancelamos tu cita (documento 1002). ¡Gracias!"
    ]
    assert DemoAppointment.objects.get(document="1002").state == "canceled"
    execution = Execution.objects.get(contact_address=ana.address)
    assert execution.status == "ended"
    assert [s.name for s in execution.steps.order_by("index")] == [
        "Trigger", "welcome", "split_language", "set_spanish", "menu", "split_menu",
        "ask_document", "save_document", "cancel_appointment", "canceled",
    ]  # fmt: skip

    # The same document again: the API refuses, the flow says why and shows the menu.
    ana.says("hola")
    ana.next_replies()
    for text in ("1", "1"):
        ana.says(text)
        ana.next_replies()
    ana.says("1002")
    failure, menu = ana.next_replies(2)
    assert failure == (
        "No pudimos cancelar la cita del documento 1002: That appointment was already canceled."
    )
    assert menu.startswith("¿Qué quieres hacer?")


def test_talk_to_a_person_in_english_creates_the_routing_task(demo, celery_worker_process):
    bob = Customer(demo, MESSENGER, "messenger:998877", "Bob")
    bob.says("hi")
    bob.next_replies()
    bob.says("2")
    assert bob.next_replies()[0].startswith("What would you like to do?")
    bob.says("I want a person")
    assert bob.next_replies() == ["Sorry, I didn't get that. Reply 1 or 2."]
    bob.next_replies()  # the menu again
    bob.says("2")
    assert bob.next_replies() == ["Connecting you to a person on our team. One moment, please."]
    assert wait_for(lambda: Handoff.objects.exists())
    task = Handoff.objects.get().task
    assert task.attributes["language"] == "en"
    assert task.attributes["channelType"] == "messenger"
    assert task.attributes["customerAddress"] == bob.address
    assert task.attributes["name"] == "Bob"
    assert task.attributes["topic"] == "appointments"
    assert task.task_channel.unique_name == "messenger"
    assert task.queue.friendly_name == "English support"
    execution = Execution.objects.get(contact_address=bob.address)
    assert execution.status == "ended"
    assert task.sid in execution.ended_reason

    # The conversation is the agents' now: the bot stays quiet.
    bob.says("hello?")
    time.sleep(1.0)
    assert len(bob.replies()) == bob.seen
    assert Execution.objects.filter(contact_address=bob.address).count() == 1


def test_spanish_speakers_go_to_the_spanish_queue_and_a_silent_customer_times_out(demo):
    from datetime import timedelta

    from django.utils import timezone

    from contactcenter.flows.services import flow_inbound_handle, flows_tick

    def say(address, text):
        demo.post(
            "/simulator/reply",
            {"sender": Sender.objects.get(address=WHATSAPP).sid, "customer": address, "body": text},
            HTTP_ACCEPT="application/json",
        )
        flow_inbound_handle(Message.objects.filter(direction="inbound").latest("id").pk)

    for text in ("hola", "1", "2"):
        say("whatsapp:+573009998877", text)
    task = Handoff.objects.get().task
    assert (task.attributes["language"], task.queue.friendly_name) == ("es", "Spanish support")

    say("whatsapp:+573001234567", "hola")
    waiting = Execution.objects.get(contact_address="whatsapp:+573001234567")
    Execution.objects.filter(pk=waiting.pk).update(wait_until=timezone.now() - timedelta(seconds=1))
    flows_tick()
    replies = Message.objects.filter(
        to_address="whatsapp:+573001234567", direction=Direction.OUTBOUND_REPLY
    )
    assert replies.latest("id").body == (
        "We closed this conversation after no reply. Write to us any time."
    )
