"""The delivery engine against real Redis and the suite's database: pacing, no head-of-line
blocking, validity, queue limits, retries, crash recovery."""

import itertools
import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from messaging.delivery import engine, store
from messaging.delivery.content import content_for
from messaging.errors import MessagingError
from messaging.models import Message, MessageStatusChange, ProviderAccount, Sender, StatusCallback
from messaging.providers import simulator
from messaging.services.messages import MessageRequest, message_create, message_route
from tests.messaging.conftest import open_window
from tests.support.delivery import deliver_now

CUSTOMER = "+14155550123"


def send(world, *, to=CUSTOMER, from_="+14155550100", body="Hello", **extra) -> Message:
    request = MessageRequest(to=to, from_=from_, body=body, **extra)
    return message_create(account=world.account, request=request)


def simulate(world, **config) -> None:
    ProviderAccount.objects.filter(id=world.provider.id).update(
        settings={"receipt_delay_seconds": None, "record_sends": True, **config}
    )
    world.provider.refresh_from_db()


def set_rate(sender: Sender, rate: float) -> None:
    Sender.objects.filter(id=sender.id).update(throughput=rate)


def sends_of(world, from_address: str) -> list[dict]:
    return [s for s in simulator.recorded_sends(world.provider.id) if s["from"] == from_address]


def worst_window(sends: list[dict]) -> int:
    """The most segments sent within any half-open one-second window."""
    times = sorted((s["at"], s["segments"]) for s in sends)
    worst = 0
    for i, (start, _) in enumerate(times):
        worst = max(worst, sum(k for at, k in times[i:] if at < start + 1000))
    return worst


def history(message) -> list[tuple[str, int | None, str]]:
    return list(
        MessageStatusChange.objects.filter(message=message)
        .order_by("id")
        .values_list("status", "error_code", "source")
    )


# ---------------------------------------------------------------- the GCRA script


def test_reserve_spaces_slots_by_segments_and_stops_at_the_horizon(db):
    first = store.reserve(7, interval_ms=100, horizon_ms=450, segments=[1, 2, 1, 1, 1, 1])
    gaps = [b - a for a, b in zip(first.slots_ms, first.slots_ms[1:], strict=False)]
    assert gaps == pytest.approx([100, 200, 100])  # 2 segments hold 2 slots
    assert len(first.slots_ms) == 4  # the fifth would start at now + 500 ms, past 450
    assert first.next_free_ms == pytest.approx(first.slots_ms[-1] + 100)
    # The next reservation continues from there: the sender's pace is shared state.
    second = store.reserve(7, interval_ms=100, horizon_ms=10_000, segments=[1])
    assert second.slots_ms[0] == pytest.approx(first.next_free_ms)


def test_concurrent_reservations_never_share_a_slot(db):
    slots: list[float] = []
    lock = threading.Lock()

    def reserve_many():
        for _ in range(100):
            got = store.reserve(9, interval_ms=10, horizon_ms=60_000, segments=[1]).slots_ms
            with lock:
                slots.extend(got)

    threads = [threading.Thread(target=reserve_many) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    slots.sort()
    assert len(slots) == 400
    assert min(b - a for a, b in itertools.pairwise(slots)) == pytest.approx(10)


# ---------------------------------------------------------------- pacing


def test_a_sender_never_exceeds_its_rate_in_any_second(world):
    simulate(world)
    set_rate(world.senders["long_code"], 4)
    messages = [send(world, body=f"burst {i}") for i in range(10)]
    deliver_now(seconds=10)
    assert set(
        Message.objects.filter(id__in=[m.id for m in messages]).values_list("status", flat=True)
    ) == {"sent"}
    sent = sends_of(world, "+14155550100")
    assert len(sent) == 10
    assert worst_window(sent) <= 4
    span = max(s["at"] for s in sent) - min(s["at"] for s in sent)
    # Nine gaps of a quarter second, less the catch-up an idle sender starts with.
    assert span >= 9 * 250 - engine.CATCH_UP * 1000 - 5


def test_a_long_message_takes_one_slot_per_segment(world):
    simulate(world)
    set_rate(world.senders["long_code"], 2)
    long = send(world, body="x" * 200)  # GSM-7, 2 segments
    send(world, body="short")
    assert long.num_segments == 2
    deliver_now(seconds=5)
    first, second = sends_of(world, "+14155550100")
    assert first["segments"] == 2
    assert second["at"] - first["at"] >= 1000 - 5  # 2 segments at 2/s hold a whole second


def test_a_slow_sender_does_not_hold_up_a_fast_one(world):
    simulate(world)
    set_rate(world.senders["long_code"], 1)
    for i in range(3):
        send(world, body=f"slow {i}")
    open_window(world.account, "whatsapp:+14155550123", "whatsapp:+14155550199")
    for i in range(30):
        send(world, from_="whatsapp:+14155550199", to="whatsapp:+14155550123", body=f"fast {i}")
    deliver_now(seconds=5)
    slow = sends_of(world, "+14155550100")
    fast = sends_of(world, "whatsapp:+14155550199")
    assert len(fast) == 30 and len(slow) == 3
    # 30 at 80/s take under half a second, all before the slow sender's second slot.
    assert max(s["at"] for s in fast) < sorted(s["at"] for s in slow)[1]
    assert worst_window(fast) <= 80


def test_long_messages_keep_every_second_within_the_limit_across_pumps(world):
    """2-segment messages among short ones, sent by a chain of short pumps: each hand-over
    must carry the sender's recent sends to the next pump."""
    simulate(world)
    set_rate(world.senders["long_code"], 6)
    for i in range(12):
        send(world, body="x" * 200 if i % 3 != 1 else f"short {i}")  # 2, 1, 2, 2, 1, ...
    engine.reseed_due()
    for _ in range(20):
        engine.Pump(seconds=0.7).run()
        if not Message.objects.filter(status__in=["queued", "sending"]).exists():
            break
        engine.reseed_due()  # what the beat tick does between pumps
    sent = sends_of(world, "+14155550100")
    assert sum(s["segments"] for s in sent) == 20
    assert worst_window(sent) <= 6


def test_a_burst_on_one_service_does_not_starve_another(world):
    from messaging.models import MessagingService

    simulate(world)
    busy = world.senders["long_code"]
    set_rate(busy, 50)
    other_service = MessagingService.objects.create(account=world.account, friendly_name="B")
    quiet = Sender.objects.create(
        account=world.account,
        provider=world.provider,
        service=other_service,
        kind="long_code",
        address="+14155550177",
    )
    for i in range(100):  # two seconds of work for the busy service
        send(world, body=f"campaign {i}")
    late = send(world, from_=None, messaging_service_sid=other_service.sid, body="Your code")
    assert message_route(message_id=late.id)
    deliver_now(seconds=5)
    campaign = sends_of(world, busy.address)
    code = sends_of(world, quiet.address)
    assert len(campaign) == 100 and len(code) == 1
    first = min(s["at"] for s in campaign)
    assert max(s["at"] for s in campaign) - first > 1500
    assert code[0]["at"] - first < 500  # not behind the campaign


def test_a_throttled_sender_gives_its_planned_messages_back(world):
    simulate(
        world,
        transient_failures=[{"suffix": "0429", "times": 1, "error_code": 20429, "retry_after": 10}],
    )
    set_rate(world.senders["long_code"], 4)
    throttled = send(world, to="+14155550429")
    others = [send(world, body=f"after {i}") for i in range(4)]
    before = timezone.now()
    deliver_now()
    rows = {m.id: m for m in Message.objects.filter(id__in=[m.id for m in others])}
    assert {m.status for m in rows.values()} == {"queued"}
    # Claimed ones went back without a provider call, so without an attempt, and none may
    # go before the pause ends.
    assert {m.attempts for m in rows.values()} == {0}
    given_back = [m for m in rows.values() if m.not_before is not None]
    assert given_back, "the plan held messages behind the throttled one"
    assert all(m.not_before >= before + timedelta(seconds=9.5) for m in given_back)
    assert ("queued", None, "system") in history(given_back[0])
    assert all(simulator.received_count(world.provider.id, m.sid) == 0 for m in others)
    throttled.refresh_from_db()
    assert (throttled.status, throttled.attempts) == ("queued", 1)


def test_throughput_edits_take_effect_on_the_next_plan(world):
    simulate(world)
    sender = world.senders["long_code"]
    set_rate(sender, 20)
    for i in range(10):
        send(world, body=f"m{i}")
    deliver_now(seconds=5)
    sent = sends_of(world, "+14155550100")
    assert len(sent) == 10
    assert max(s["at"] for s in sent) - min(s["at"] for s in sent) < 1000  # 20/s, not 1/s


# ---------------------------------------------------------------- validity & queue limits


def test_an_expired_queued_message_fails_with_30036_and_calls_back(world):
    message = send(world, validity_period=5, status_callback="https://app.example/cb")
    Message.objects.filter(id=message.id).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert engine.delivery_tick()["expired"] == 1
    message.refresh_from_db()
    assert (message.status, message.error_code) == ("failed", 30036)
    callback = StatusCallback.objects.get(message=message)
    assert callback.params["MessageStatus"] == "failed"
    assert callback.params["ErrorCode"] == "30036"
    assert deliver_now().planned == 0


def test_validity_counts_from_send_at_for_a_scheduled_message(world):
    send_at = timezone.now() + timedelta(hours=2)
    message = send(
        world,
        from_=None,
        messaging_service_sid=world.service.sid,
        schedule_type="fixed",
        send_at=send_at,
        validity_period=600,
    )
    assert message.expires_at == send_at + timedelta(seconds=600)


def test_a_full_sender_queue_refuses_with_21611(world):
    sender = world.senders["long_code"]  # 1 segment/s: 10 segments fill a 10 s validity
    for i in range(10):
        send(world, body=f"m{i}", validity_period=10)
    engine.reconcile_depths()
    assert store.depth(sender.id) == 10
    with pytest.raises(MessagingError) as info:
        send(world, body="one too many", validity_period=10)
    assert info.value.code == 21611
    assert Message.objects.filter(body="one too many").count() == 0
    # A longer validity period holds more: the same queue still has room.
    assert send(world, body="patient", validity_period=3600).status == "queued"


def test_a_full_queue_fails_a_service_message_with_30001(world):
    sender = world.senders["long_code"]
    for s in world.senders.values():
        if s.id != sender.id:
            Sender.objects.filter(id=s.id).update(active=False)
    store.depth_add([(sender.id, 36_000)])  # 10 h at 1 segment/s
    message = send(world, from_=None, messaging_service_sid=world.service.sid)
    assert message_route(message_id=message.id) is False
    message.refresh_from_db()
    assert (message.status, message.error_code) == ("failed", 30001)


def test_sending_drains_the_depth_counter(world):
    simulate(world)
    set_rate(world.senders["long_code"], 50)
    for i in range(5):
        send(world, body="x" * 170 if i == 0 else f"m{i}")  # 2 + 4 segments
    engine.reconcile_depths()
    assert store.depth(world.senders["long_code"].id) == 6
    deliver_now()
    assert store.depth(world.senders["long_code"].id) == 0


# ---------------------------------------------------------------- opt-out at send time


def test_an_opt_out_recorded_after_queueing_is_honoured_at_send_time(world):
    from messaging.models import OptOut

    simulate(world)
    message = send(world)
    # Written straight to the table, as a concurrent process would, without failing the
    # queued message: the send-time check must catch it.
    OptOut.objects.create(account=world.account, service=world.service, address=CUSTOMER)
    assert deliver_now().opted_out == 1
    message.refresh_from_db()
    assert (message.status, message.error_code) == ("failed", 21610)
    assert simulator.received_count(world.provider.id, message.sid) == 0


# ---------------------------------------------------------------- retries


def test_transient_errors_retry_with_back_off_then_send(world):
    simulate(world, transient_failures=[{"suffix": "0429", "times": 2, "error_code": 20429}])
    message = send(world, to="+14155550429")
    before = timezone.now()
    assert deliver_now().retried == 1
    message.refresh_from_db()
    assert (message.status, message.attempts) == ("queued", 1)
    assert message.not_before >= before + timedelta(seconds=engine.BACKOFF_SECONDS[0])
    assert deliver_now().planned == 0  # not before its back-off
    for _ in range(2):
        Message.objects.filter(id=message.id).update(not_before=timezone.now())
        deliver_now()
    message.refresh_from_db()
    assert (message.status, message.attempts) == ("sent", 3)
    assert [(s, e) for s, e, _ in history(message)] == [
        ("queued", None),
        ("sending", None),
        ("queued", 20429),
        ("sending", None),
        ("queued", 20429),
        ("sending", None),
        ("sent", None),
    ]
    assert simulator.received_count(world.provider.id, message.sid) == 1


def test_a_transient_error_past_the_validity_period_fails(world):
    simulate(world, transient_failures=[{"suffix": "0429", "times": 5, "error_code": 20429}])
    message = send(world, to="+14155550429", validity_period=1)
    deliver_now()
    message.refresh_from_db()
    assert (message.status, message.error_code) == ("failed", 20429)


def test_a_permanent_provider_error_fails_at_once(world):
    simulate(world, send_rejections=[{"suffix": "0400", "error_code": 30007}])
    message = send(world, to="+14155550400")
    assert deliver_now().failed == 1
    message.refresh_from_db()
    assert (message.status, message.error_code, message.attempts) == ("failed", 30007, 1)


def test_throttling_pauses_the_sender(world):
    simulate(
        world,
        transient_failures=[{"suffix": "0429", "times": 1, "error_code": 20429, "retry_after": 3}],
    )
    set_rate(world.senders["long_code"], 100)
    send(world, to="+14155550429")
    before = store.redis_now_ms()
    deliver_now()
    # The sender's next free slot moved at least 3 s ahead.
    assert store.pace_floor(world.senders["long_code"].id, 0) >= before + 3000 - 50


# ---------------------------------------------------------------- crash recovery


def _abandon_claim(message: Message, *, provider_saw_it: bool, world) -> None:
    """What a worker killed mid-send leaves: `sending`, lease expired; maybe the provider
    already has it."""
    Message.objects.filter(id=message.id).update(
        status="sending", lease_until=timezone.now() - timedelta(seconds=1), attempts=1
    )
    if provider_saw_it:
        adapter = simulator.SimulatorAdapter(world.provider)
        adapter.send(message, content=content_for(message), idempotency_key=message.sid)


@pytest.mark.parametrize("provider_saw_it", [False, True])
def test_an_abandoned_claim_is_recovered_and_reaches_the_handset_once(world, provider_saw_it):
    simulate(world)
    message = send(world)
    _abandon_claim(message, provider_saw_it=provider_saw_it, world=world)
    assert engine.recover_expired_leases() == {"requeued": 1, "failed": 0}
    assert deliver_now().sent == 1
    message.refresh_from_db()
    assert message.status == "sent"
    assert simulator.received_count(world.provider.id, message.sid) == 1
    assert simulator.duplicates_refused(world.provider.id) == int(provider_saw_it)


def test_a_live_claim_is_left_alone(world):
    message = send(world)
    Message.objects.filter(id=message.id).update(
        status="sending", lease_until=timezone.now() + timedelta(seconds=30)
    )
    assert engine.recover_expired_leases() == {"requeued": 0, "failed": 0}


def test_an_abandoned_claim_without_provider_idempotency_fails_rather_than_risk_a_duplicate(
    world,
):
    ProviderAccount.objects.filter(id=world.provider.id).update(kind="twilio")
    message = send(world)
    _abandon_claim(message, provider_saw_it=False, world=world)
    assert engine.recover_expired_leases() == {"requeued": 0, "failed": 1}
    message.refresh_from_db()
    assert (message.status, message.error_code) == ("failed", 30008)
    assert "not sent again" in message.error_message


# ---------------------------------------------------------------- concurrency


def test_concurrent_pumps_send_each_message_exactly_once(live_world, settings):
    if connection.vendor != "postgresql":
        pytest.skip("concurrent writers need PostgreSQL (SQLite serialises them)")
    world = live_world
    simulate(world)
    settings.DELIVERY_PUMPS = 3
    for s in world.senders.values():
        Sender.objects.filter(id=s.id).update(throughput=200)
    targets = [
        ("+14155550100", CUSTOMER),
        ("+18885550100", CUSTOMER),
        ("whatsapp:+14155550199", "whatsapp:+14155550123"),
    ]
    open_window(world.account, "whatsapp:+14155550123", "whatsapp:+14155550199")
    messages = [
        send(world, from_=from_, to=to, body=f"m{i}") for i in range(60) for from_, to in targets
    ]
    engine.reseed_due()

    def pump():
        try:
            engine.Pump(seconds=3).run()
        finally:
            connection.close()

    threads = [threading.Thread(target=pump) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    statuses = set(
        Message.objects.filter(id__in=[m.id for m in messages]).values_list("status", flat=True)
    )
    assert statuses == {"sent"}
    counts = [simulator.received_count(world.provider.id, m.sid) for m in messages]
    assert counts == [1] * len(messages)
    assert simulator.duplicates_refused(world.provider.id) == 0
