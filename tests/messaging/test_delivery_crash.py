"""Crash safety on real processes: a Celery worker killed with SIGKILL in the middle of a
batch loses nothing and sends nothing twice."""

import os
import signal
import time

import pytest
from django.db.models import Count

from messaging.delivery import engine
from messaging.models import Message, MessageStatusChange, ProviderAccount, Sender
from messaging.providers import simulator
from messaging.services.messages import MessageRequest, message_create
from tests.messaging.conftest import open_window

pytestmark = pytest.mark.slow

WORKER_ENV = {
    # Short enough for a test to watch the sweeper take the dead worker's claims back.
    "DELIVERY_LEASE_SECONDS": "2",
    "DELIVERY_PUMP_SECONDS": "1",
}


def wait_for(predicate, *, timeout: float, tick: bool = False) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if tick:
            engine.delivery_tick()  # what celery beat does every second
        if predicate():
            return True
        time.sleep(0.3)
    return False


def test_a_worker_killed_mid_batch_loses_nothing_and_sends_nothing_twice(
    live_world, start_celery_worker, settings
):
    world = live_world
    # Each provider call takes 20 ms, so a kill at any moment very likely lands mid-send.
    ProviderAccount.objects.filter(id=world.provider.id).update(
        settings={"receipt_delay_seconds": None, "record_sends": True, "send_delay_seconds": 0.02}
    )
    senders = {"+14155550100": "+14155550123", "whatsapp:+14155550199": "whatsapp:+14155550123"}
    Sender.objects.filter(address__in=senders).update(throughput=25)
    open_window(world.account, "whatsapp:+14155550123", "whatsapp:+14155550199")
    # The worker first: a solo worker busy pumping would not answer the start-up ping.
    first = start_celery_worker(WORKER_ENV)
    messages = [
        message_create(
            account=world.account,
            request=MessageRequest(to=to, from_=from_, body=f"batch {i}"),
        )
        for i in range(100)
        for from_, to in senders.items()
    ]

    engine.delivery_tick()
    ids = [m.id for m in messages]

    def mid_batch() -> bool:
        sent = len(simulator.recorded_sends(world.provider.id))
        return sent >= 20 and Message.objects.filter(id__in=ids, status="sending").exists()

    assert wait_for(mid_batch, timeout=30), (
        len(simulator.recorded_sends(world.provider.id)),
        list(Message.objects.filter(id__in=ids).values_list("status").annotate(n=Count("id"))),
    )
    os.kill(first.pid, signal.SIGKILL)
    first.wait(timeout=10)
    in_flight = Message.objects.filter(id__in=ids, status="sending").count()
    assert in_flight > 0, "the kill should have caught claimed messages"
    assert len(simulator.recorded_sends(world.provider.id)) < len(messages)

    start_celery_worker(WORKER_ENV)
    assert wait_for(
        lambda: (
            set(Message.objects.filter(id__in=ids).values_list("status", flat=True)) == {"sent"}
        ),
        timeout=90,
        tick=True,
    ), Message.objects.filter(id__in=ids).exclude(status="sent").values_list("sid", "status")

    # Every message reached the simulated handset exactly once, whatever the kill interrupted.
    received = [simulator.received_count(world.provider.id, m.sid) for m in messages]
    assert received == [1] * len(messages)
    assert len(simulator.recorded_sends(world.provider.id)) == len(messages)
    recovered = MessageStatusChange.objects.filter(message_id__in=ids, source="recovery")
    assert recovered.count() >= in_flight
