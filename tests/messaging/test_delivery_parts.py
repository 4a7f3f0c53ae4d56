"""The delivery engine's parts, each on its own: the batched SQL (on the suite's database),
the opt-out lookup for many senders, the reservation script (real Redis) and the window of
actual sends."""

import itertools
import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from messaging.delivery import claims, store
from messaging.delivery.dispatcher import SendWindow
from messaging.models import Message, MessageStatusChange, OptOut, Sender
from messaging.services.messages import MessageRequest, message_create

CUSTOMER = "+14155550123"


def queue(world, n: int, *, from_="+14155550100", to=CUSTOMER) -> list[Message]:
    return [
        message_create(
            account=world.account, request=MessageRequest(to=to, from_=from_, body=f"m{i}")
        )
        for i in range(n)
    ]


def worst_window(slots, segments, length) -> int:
    """Most segments whose slots fall in any half-open window (t - length, t]."""
    pairs = list(zip(slots, segments, strict=True))
    return max(sum(k for s, k in pairs if t - length < s <= t) for t, _ in pairs)


# ---------------------------------------------------------------- candidates and claims


def test_candidates_are_each_senders_oldest_ready_messages(world):
    long_code, toll_free = world.senders["long_code"], world.senders["toll_free"]
    first = queue(world, 6)
    second = queue(world, 3, from_="+18885550100")
    now = timezone.now()
    Message.objects.filter(id=first[0].id).update(not_before=now + timedelta(seconds=30))
    Message.objects.filter(id=first[1].id).update(expires_at=now - timedelta(seconds=1))
    Message.objects.filter(id=first[2].id).update(status="sending")

    found = claims.ready_candidates({long_code.id: 2, toll_free.id: 10}, now=now)

    assert [(c.sender_id, c.id) for c in found if c.sender_id == long_code.id] == [
        (long_code.id, first[3].id),
        (long_code.id, first[4].id),
    ]
    assert [c.id for c in found if c.sender_id == toll_free.id] == [m.id for m in second]
    assert {(c.segments, c.to_address) for c in found} == {(1, CUSTOMER)}


def test_candidates_for_more_senders_than_one_statement_holds(world):
    """SQLite caps a compound SELECT at 500 members; the engine splits into statements."""
    sender = world.senders["long_code"]
    messages = queue(world, 3)
    others = {10_000 + i: 1 for i in range(claims.SENDERS_PER_UNION + 5)}  # no such senders
    found = claims.ready_candidates({**others, sender.id: 5}, now=timezone.now())
    assert [c.id for c in found] == [m.id for m in messages]


def test_a_claim_takes_only_what_is_still_queued_and_writes_history(world):
    messages = queue(world, 3)
    Message.objects.filter(id=messages[2].id).update(status="sent")
    now = timezone.now()
    lease_until = now + timedelta(seconds=20)

    claimed = claims.claim([m.id for m in messages], lease_until=lease_until, now=now)

    assert sorted(m.id for m in claimed) == [messages[0].id, messages[1].id]
    assert {(m.status, m.attempts, m.lease_until) for m in claimed} == {("sending", 1, lease_until)}
    assert claims.claim([m.id for m in messages], lease_until=lease_until, now=now) == []
    history = MessageStatusChange.objects.filter(message__in=messages, status="sending")
    assert sorted(history.values_list("message_id", "source")) == [
        (messages[0].id, "system"),
        (messages[1].id, "system"),
    ]


def test_concurrent_claims_of_the_same_messages_share_nothing(live_world):
    if connection.vendor != "postgresql":
        pytest.skip("concurrent writers need PostgreSQL (SQLite serialises them)")
    ids = [m.id for m in queue(live_world, 60)]
    results: list[list[int]] = []
    lock = threading.Lock()
    barrier = threading.Barrier(4)

    def claim_all():
        from django.db import transaction

        try:
            barrier.wait()
            with transaction.atomic():
                now = timezone.now()
                got = claims.claim(ids, lease_until=now + timedelta(seconds=20), now=now)
            with lock:
                results.append([m.id for m in got])
        finally:
            connection.close()

    threads = [threading.Thread(target=claim_all) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    taken = list(itertools.chain.from_iterable(results))
    assert sorted(taken) == sorted(ids)  # every message claimed, none twice
    assert MessageStatusChange.objects.filter(message_id__in=ids, status="sending").count() == 60


def test_mark_sent_moves_only_rows_still_sending(world):
    messages = queue(world, 3)
    Message.objects.filter(id__in=[m.id for m in messages[:2]]).update(status="sending")
    now = timezone.now()
    updated = claims.mark_sent([(m.id, f"SS{i}") for i, m in enumerate(messages)], now=now)
    assert updated == {messages[0].id, messages[1].id}
    rows = dict(Message.objects.filter(id__in=updated).values_list("id", "provider_message_id"))
    assert rows == {messages[0].id: "SS0", messages[1].id: "SS1"}
    assert Message.objects.get(id=messages[2].id).status == "queued"
    sent_history = MessageStatusChange.objects.filter(message__in=messages, status="sent")
    assert sorted(sent_history.values_list("message_id", "source")) == [
        (messages[0].id, "provider"),
        (messages[1].id, "provider"),
    ]


# ---------------------------------------------------------------- opt-out for many senders


def test_opt_outs_for_many_senders_follow_each_senders_scope(world):
    from messaging.services.optout import optout_blocked_by_sender

    pooled = world.senders["long_code"]
    loner = world.senders["toll_free"]
    Sender.objects.filter(id=loner.id).update(service=None)
    loner.refresh_from_db()
    OptOut.objects.create(account=world.account, service=world.service, address="+100")
    OptOut.objects.create(account=world.account, sender=loner, address="+200")
    # A sender-only row for a pooled sender is not its list: the service's is.
    OptOut.objects.create(account=world.account, sender=pooled, address="+300")

    pairs = [(s, a) for s in (pooled, loner) for a in ("+100", "+200", "+300", "+400")]
    assert optout_blocked_by_sender(pairs) == {(pooled.id, "+100"), (loner.id, "+200")}
    assert optout_blocked_by_sender([]) == set()


# ---------------------------------------------------------------- the reservation script


def test_long_messages_never_push_a_window_over_the_limit(db):
    segments = [1, 1, 2, 2, 1, 2, 1, 1, 1, 2] * 3
    got = store.reserve(
        21,
        interval_ms=1000 / 3,
        limit=3,
        window_ms=1000,
        horizon_ms=120_000,
        segments=segments,
    )
    assert len(got.slots_ms) == len(segments)
    assert worst_window(got.slots_ms, segments, 1000) == 3
    # The third message (2 segments) would make 4 in the first second: it waits until
    # the first message has left the window.
    assert got.slots_ms[2] == pytest.approx(got.slots_ms[0] + 1000)


def test_long_messages_cost_no_throughput_in_the_long_run(db):
    """GCRA spaced from a delayed slot would lose a slot per long message (6 in 7)."""
    segments = [2, 1, 1, 1, 1] * 40  # 240 segments
    got = store.reserve(
        22, interval_ms=100, limit=10, window_ms=1000, horizon_ms=600_000, segments=segments
    )
    assert worst_window(got.slots_ms, segments, 1000) <= 10
    span_s = (got.slots_ms[-1] - got.slots_ms[0]) / 1000
    assert (sum(segments) - segments[-1]) / span_s >= 9.8  # within 2 % of 10/s


def test_catch_up_after_a_pause_stays_within_the_window(db):
    got = store.reserve(
        23,
        interval_ms=50,
        limit=2,
        window_ms=100,
        horizon_ms=10_000,
        segments=[1, 1, 1, 1],
        tolerance_ms=100,
    )
    first = got.slots_ms[0]
    # The tolerance lets a second message go at once, but never a third within 100 ms.
    assert got.slots_ms[1] == pytest.approx(first)
    assert got.slots_ms[2] == pytest.approx(first + 100)
    assert worst_window(got.slots_ms, [1, 1, 1, 1], 100) == 2


def test_released_send_times_are_what_the_next_reservation_counts(db):
    """A pump writes its actual send times back over its planned slots; the next
    reservation (by any pump) counts those."""
    planned = store.reserve(
        24, interval_ms=10, limit=2, window_ms=1000, horizon_ms=100, segments=[1]
    )
    now = store.redis_now_ms()
    actual = [(now - 200, 1), (now - 100, 1)]
    store.release_many([store.Release(24, None, planned.slots_ms[0], actual)])
    later = store.reserve(
        24, interval_ms=10, limit=2, window_ms=1000, horizon_ms=2000, segments=[1]
    )
    # The planned slot is gone: only the two actual sends fill the window ...
    assert [k for _, k in later.earlier] == [1, 1]
    assert [t for t, _ in later.earlier] == pytest.approx([t for t, _ in actual], abs=0.01)
    # ... and the next send waits for the first of them to leave it.
    assert later.slots_ms == (pytest.approx(actual[0][0] + 1000, abs=0.01),)


# ---------------------------------------------------------------- the window of actual sends


def test_the_send_window_waits_for_enough_segments_to_leave():
    window = SendWindow(limit=3, length_ms=1000, earlier=[(0, 1), (100, 2)])
    assert window.earliest(200, 1) == 1000  # the first send must leave
    assert window.earliest(200, 2) == 1100  # both must leave
    assert window.earliest(1100, 3) == 1100
    window.add(1100, 1)
    assert window.sends_since(50, 1100) == [(1100, 1)]  # (0, 1) and (100, 2) have left


def test_a_send_counts_until_its_provider_call_returns():
    from messaging.delivery.dispatcher import RECHECK_SECONDS

    window = SendWindow(limit=1, length_ms=1000)
    first = window.begin(1)
    # Long after it started, a call still in flight holds its place: look again shortly.
    assert window.earliest(5000, 1) == 5000 + RECHECK_SECONDS * 1000
    # Once it returns, it counts from its return, not from its start.
    SendWindow.finished(first, 4800)
    assert window.earliest(5000, 1) == 5800
    assert window.earliest(5800, 1) == 5800
    window.add(5800, 1)
    assert window.sends_since(0, 5801) == [(5800, 1)]  # 4800 has left the window


def test_a_message_longer_than_the_limit_goes_alone():
    window = SendWindow(limit=1, length_ms=1000)
    assert window.earliest(0, 2) == 0
    window.add(0, 2)
    assert window.earliest(10, 1) == 1000


# ---------------------------------------------------------------- the dispatcher


def test_a_short_message_never_overtakes_a_long_one_waiting_for_the_window(world):
    """FIFO per sender: the second message fits the window before the first does, but it
    must not go first (a customer would read them out of order)."""
    import time
    from types import SimpleNamespace

    from messaging.delivery.dispatcher import Dispatcher
    from messaging.models import ProviderAccount
    from messaging.providers import simulator

    ProviderAccount.objects.filter(id=world.provider.id).update(
        settings={"receipt_delay_seconds": None, "record_sends": True}
    )
    world.provider.refresh_from_db()
    long_one = message_create(
        account=world.account,
        request=MessageRequest(to=CUSTOMER, from_="+14155550100", body="x" * 200),
    )
    short_one = message_create(
        account=world.account, request=MessageRequest(to=CUSTOMER, from_="+14155550100", body="hi")
    )
    now_ms = time.time() * 1000
    lane = SimpleNamespace(
        # 2 of 3 segments already used in this window: the long message waits ~300 ms,
        # the short one would fit at once.
        window=SendWindow(limit=3, length_ms=1000, earlier=[(now_ms - 700, 2)]),
        paused_until=0.0,
        held_until=0.0,
        adapter=simulator.SimulatorAdapter(world.provider),
        adapter_error=None,
    )
    dispatcher = Dispatcher(threads=1)
    try:
        start = time.time()
        dispatcher.schedule([(start, long_one, lane), (start + 0.001, short_one, lane)])
        outcomes = []
        while len(outcomes) < 2 and time.time() - start < 5:
            outcomes += dispatcher.collect()
            time.sleep(0.01)
    finally:
        dispatcher.stop()
    assert [o.message.sid for o in outcomes] == [long_one.sid, short_one.sid]
    sends = simulator.recorded_sends(world.provider.id)
    assert [s["segments"] for s in sends] == [2, 1]
    assert sends[0]["at"] >= now_ms + 300 - 5  # the long one waited for the window
