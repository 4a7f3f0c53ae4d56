"""The delivery engine: queued messages leave at each sender's pace, once, surviving crashes.

A *pump* (a Celery task; at most DELIVERY_PUMPS run at once) leases the senders that are due
(`store.lease_due`), and for each one:

1. claims, in one transaction, the queued messages whose slots fall within the planning
   horizon: `SELECT … FOR UPDATE SKIP LOCKED`, then queued → sending with a lease
   (`lease_until`) and one more attempt. Opted-out recipients fail with 21610 right there;
2. reserves their slots with the sender's GCRA script in Redis (a message of k segments takes
   k slots), so pacing is global across every process;
3. sends each at its slot, interleaved with every other leased sender in one time-ordered
   heap: a slow sender never holds up a fast one;
4. records the outcomes in batches: sent (provider id), failed (permanent error), or back to
   queued with a back-off (transient error, within the validity period).

A worker killed mid-send leaves its messages `sending` with a lease; the tick's sweeper
requeues them when the lease expires, and the provider's idempotency key (the message sid)
makes the second send return the first one's id instead of reaching the handset twice.
"""

import heapq
import itertools
import logging
import math
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from messaging import encoding, hooks
from messaging.delivery import store
from messaging.models import Message, MessageStatusChange, Sender
from messaging.providers import ProviderError, adapter_for
from messaging.services.callbacks import status_callbacks_enqueue
from messaging.services.optout import optout_blocked_among
from messaging.statuses import Status

log = logging.getLogger(__name__)

# Seconds before attempt 2, 3, …: grows fast, then every 10 minutes until the validity ends.
BACKOFF_SECONDS = (2, 5, 15, 30, 60, 120, 300, 600)
MAX_CANDIDATES = 500  # messages claimed per sender per plan
FLUSH_EVERY = 0.05  # seconds between batched writes of outcomes
LEASE_POLL = 0.02  # seconds between looks for newly due senders


def backoff_seconds(attempts: int) -> float:
    return float(BACKOFF_SECONDS[min(max(attempts, 1), len(BACKOFF_SECONDS)) - 1])


@dataclass
class Outcome:
    message: Message
    provider_message_id: str = ""
    error: ProviderError | None = None


@dataclass
class SenderPlan:
    sender: Sender
    interval: float  # seconds per segment
    outstanding: int = 0  # planned sends not yet made
    floor: float = 0.0  # local epoch seconds: the earliest next send (last send + its slots)
    next_free_ms: float = 0.0  # Redis clock: the sender's next free slot
    offset_ms: float = 0.0  # Redis clock minus local clock
    more: bool = False  # the queue held more than this plan took


@dataclass
class PumpStats:
    planned: int = 0
    sent: int = 0
    failed: int = 0
    retried: int = 0
    opted_out: int = 0
    senders: int = 0


@dataclass
class Pump:
    seconds: float = field(default_factory=lambda: settings.DELIVERY_PUMP_SECONDS)
    horizon: float = field(default_factory=lambda: settings.DELIVERY_HORIZON_SECONDS)
    lease: float = field(default_factory=lambda: settings.DELIVERY_LEASE_SECONDS)
    max_senders: int = 500
    stats: PumpStats = field(default_factory=PumpStats)

    def __post_init__(self) -> None:
        self._plans: dict[int, SenderPlan] = {}
        self._messages: dict[int, Message] = {}
        self._heap: list[tuple[float, int, int]] = []  # (local slot, seq, message id)
        self._seq = itertools.count()
        self._outcomes: list[Outcome] = []
        self._inflight: list[tuple[Future, Message]] = []
        self._executor: ThreadPoolExecutor | None = None

    # ------------------------------------------------------------------ loop

    def run(self) -> PumpStats:
        deadline = time.time() + self.seconds
        next_lease = 0.0
        last_flush = time.time()
        try:
            while True:
                now = time.time()
                if now < deadline and now >= next_lease:
                    self._lease_and_plan()
                    next_lease = now + LEASE_POLL
                self._send_due(time.time())
                self._collect_inflight()
                if self._outcomes and (
                    len(self._outcomes) >= 200 or time.time() - last_flush >= FLUSH_EVERY
                ):
                    self._flush()
                    last_flush = time.time()
                self._release_done()
                busy = self._heap or self._inflight or self._plans
                if not busy and (now >= deadline or not self._work_soon()):
                    break
                self._sleep_until(next_lease if now < deadline else now + LEASE_POLL)
        finally:
            self._drain()
        return self.stats

    def _sleep_until(self, next_lease: float) -> None:
        wake = next_lease
        if self._heap:
            wake = min(wake, self._heap[0][0])
        if self._inflight:
            wake = min(wake, time.time() + 0.005)
        pause = wake - time.time()
        if pause > 0:
            time.sleep(min(pause, LEASE_POLL))

    def _work_soon(self) -> bool:
        """Is a sender due within a second? Then stay: leaving would cost a beat tick."""
        head = store.client().zrange(store.key("due"), 0, 0, withscores=True)
        return bool(head) and head[0][1] <= store.redis_now_ms() + 1000

    def _drain(self) -> None:
        while self._inflight:
            self._collect_inflight(wait=True)
        if self._outcomes:
            self._flush()
        # Messages claimed but not sent (an exception above): give them back now rather than
        # after their lease.
        for _, _, message_id in self._heap:
            message = self._messages[message_id]
            requeue_claimed(message, not_before=None, error_code=None, source="system")
        self._heap.clear()
        for sender_id in list(self._plans):
            self._release(sender_id)
        if self._executor is not None:
            self._executor.shutdown(wait=True)

    # ------------------------------------------------------------------ planning

    def _lease_and_plan(self) -> None:
        room = self.max_senders - len(self._plans)
        if room <= 0:
            return
        # Long enough for this pump's run; a crashed pump blocks its senders only this long.
        lease_ms = int((self.seconds + self.horizon + 5) * 1000)
        _, sender_ids = store.lease_due(lease_ms=lease_ms, limit=room)
        for sender_id in sender_ids:
            try:
                self._plan(sender_id)
            except Exception:
                log.exception("delivery: planning sender %s failed", sender_id)
                store.release(sender_id, next_ms=store.redis_now_ms() + 5000)

    def _plan(self, sender_id: int) -> None:
        sender = (
            Sender.objects.select_related("provider", "service")
            .filter(id=sender_id, active=True)
            .first()
        )
        if sender is None:
            store.release(sender_id, next_ms=None)
            return
        self.stats.senders += 1
        rate = sender.segments_per_second
        # A hair under the configured rate: a few ms of jitter between our clock and the
        # provider's must not push any one-second window over the limit.
        plan = SenderPlan(sender=sender, interval=(1.0 + settings.DELIVERY_PACING_MARGIN) / rate)
        self._plans[sender_id] = plan
        wanted = min(MAX_CANDIDATES, max(1, math.ceil(self.horizon * rate) + 1))
        claimed = self._claim(plan, wanted)
        if not claimed:
            return
        messages = Message.objects.select_related("account", "service").in_bulk(
            [m for m, _ in claimed]
        )
        for message_id, slot_local in claimed:
            message = messages[message_id]
            message.sender = sender
            self._messages[message_id] = message
            heapq.heappush(self._heap, (slot_local, next(self._seq), message_id))
        with transaction.atomic():
            status_callbacks_enqueue(list(messages.values()))  # "sending"
        plan.outstanding = len(claimed)
        self.stats.planned += len(claimed)

    def _claim(self, plan: SenderPlan, wanted: int) -> list[tuple[int, float]]:
        """Claim the messages that fit the horizon; returns (id, local slot time) pairs."""
        sender = plan.sender
        now = timezone.now()
        with transaction.atomic():
            rows = list(
                Message.objects.filter(sender_id=sender.id, status=Status.QUEUED)
                .filter(Q(not_before__isnull=True) | Q(not_before__lte=now))
                .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))
                .order_by("id")
                .select_for_update(skip_locked=True)
                .values_list("id", "num_segments", "to_address")[:wanted]
            )
            blocked = optout_blocked_among(
                {to for _, _, to in rows}, service=sender.service, sender=sender
            )
            if blocked:
                self._fail_opted_out([(i, to) for i, _, to in rows if to in blocked])
            ready = [(i, max(k, 1)) for i, k, to in rows if to not in blocked]
            plan.more = len(rows) == wanted
            if not ready:
                return []
            reservation = store.reserve(
                sender.id,
                interval_ms=plan.interval * 1000,
                horizon_ms=self.horizon * 1000,
                segments=[k for _, k in ready],
            )
            local_now_ms = time.time() * 1000
            plan.offset_ms = reservation.now_ms - local_now_ms
            plan.next_free_ms = reservation.next_free_ms
            taken = ready[: len(reservation.slots_ms)]
            plan.more = plan.more or len(taken) < len(ready)
            ids = [i for i, _ in taken]
            Message.objects.filter(id__in=ids).update(
                status=Status.SENDING,
                lease_until=now + timedelta(seconds=self.seconds + self.horizon + self.lease),
                attempts=F("attempts") + 1,
                date_updated=now,
            )
            MessageStatusChange.objects.bulk_create(
                MessageStatusChange(message_id=i, status=Status.SENDING, source="system")
                for i in ids
            )
            _status_hooks_on_commit(ids, Status.SENDING)
        store.depth_add([(sender.id, -sum(k for _, k in taken))])
        return [
            (i, (slot - plan.offset_ms) / 1000)
            for (i, _), slot in zip(taken, reservation.slots_ms, strict=False)
        ]

    def _fail_opted_out(self, rows: list[tuple[int, str]]) -> None:
        from messaging.services.messages import message_fail_undispatched

        for message_id, _ in rows:
            if message_fail_undispatched(message_id=message_id, error_code=21610, source="system"):
                self.stats.opted_out += 1

    # ------------------------------------------------------------------ sending

    def _send_due(self, now: float) -> None:
        while self._heap and self._heap[0][0] <= now:
            _, _, message_id = heapq.heappop(self._heap)
            message = self._messages[message_id]
            plan = self._plans[message.sender_id]
            if now < plan.floor:
                # An earlier send of this sender went late: keep the spacing, not the slot.
                heapq.heappush(self._heap, (plan.floor, next(self._seq), message_id))
                continue
            plan.floor = now + max(message.num_segments, 1) * plan.interval
            try:
                adapter = adapter_for(plan.sender.provider)
            except ProviderError as exc:  # no adapter for this provider kind
                self._record(Outcome(message=message, error=exc))
                continue
            if adapter.network:
                future = self._pool().submit(_send_one, adapter, message)
                self._inflight.append((future, message))
            else:
                self._record(_send_one(adapter, message))
            now = time.time()

    def _pool(self) -> ThreadPoolExecutor:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(
                max_workers=settings.DELIVERY_SEND_THREADS, thread_name_prefix="delivery-send"
            )
        return self._executor

    def _collect_inflight(self, *, wait: bool = False) -> None:
        still = []
        for future, message in self._inflight:
            if wait or future.done():
                self._record(future.result())
            else:
                still.append((future, message))
        self._inflight = still

    def _record(self, outcome: Outcome) -> None:
        plan = self._plans[outcome.message.sender_id]
        plan.outstanding -= 1
        error = outcome.error
        if error is not None and error.throttled:
            pause = error.retry_after or 1.0
            plan.floor = max(plan.floor, time.time() + pause)
            store.pace_floor(plan.sender.id, (time.time() + pause) * 1000 + plan.offset_ms)
        self._outcomes.append(outcome)

    def _release_done(self) -> None:
        for sender_id, plan in list(self._plans.items()):
            if plan.outstanding <= 0:
                self._release(sender_id)

    def _release(self, sender_id: int) -> None:
        plan = self._plans.pop(sender_id)
        if plan.floor:
            # The actual last send (plus its slots) bounds the next reservation too.
            plan.next_free_ms = store.pace_floor(sender_id, plan.floor * 1000 + plan.offset_ms)
        next_ms = plan.next_free_ms - self.horizon * 1000 if plan.more else None
        store.release(sender_id, next_ms=next_ms)

    # ------------------------------------------------------------------ recording

    def _flush(self) -> None:
        outcomes, self._outcomes = self._outcomes, []
        sent = [o for o in outcomes if o.error is None]
        if sent:
            record_sent(sent)
            self.stats.sent += len(sent)
        for outcome in outcomes:
            if outcome.error is not None:
                if record_error(outcome.message, outcome.error) == "retry":
                    self.stats.retried += 1
                else:
                    self.stats.failed += 1
        for outcome in outcomes:
            self._messages.pop(outcome.message.id, None)


def _send_one(adapter, message: Message) -> Outcome:
    text = encoding.analyze(message.body, smart_encoding=message.smart_encoded).text
    try:
        result = adapter.send(message, text=text, idempotency_key=message.sid)
    except ProviderError as exc:
        return Outcome(message=message, error=exc)
    except Exception as exc:  # an adapter bug or an unexpected network failure: retry
        log.exception("delivery: %s raised while sending %s", type(adapter).__name__, message.sid)
        return Outcome(message=message, error=ProviderError(30008, str(exc), permanent=False))
    return Outcome(message=message, provider_message_id=result.provider_message_id)


def _status_hooks_on_commit(message_ids: list[int], status: Status) -> None:
    for handler in hooks.status_handlers():
        for message_id in message_ids:
            transaction.on_commit(lambda h=handler, m=message_id: h(m, status))


# ---------------------------------------------------------------------- outcomes


def record_sent(outcomes: list[Outcome]) -> int:
    """Sending → sent for a batch, with the provider ids: a few statements, not per message."""
    now = timezone.now()
    messages = []
    for outcome in outcomes:
        message = outcome.message
        message.status = Status.SENT
        message.provider_message_id = outcome.provider_message_id
        message.date_sent = message.date_sent or now
        message.date_updated = now
        message.lease_until = None
        messages.append(message)
    with transaction.atomic():
        # Only rows still `sending`: a row the sweeper took back is sent again (same key).
        updated = _mark_sent(messages, now)
        mine = [m for m in messages if m.id in updated]
        MessageStatusChange.objects.bulk_create(
            MessageStatusChange(message_id=m.id, status=Status.SENT, source="provider")
            for m in mine
        )
        status_callbacks_enqueue(mine)
        _status_hooks_on_commit([m.id for m in mine], Status.SENT)
    return len(mine)


def _mark_sent(messages: list[Message], now) -> set[int]:
    """One UPDATE … FROM (VALUES …) RETURNING for the whole batch (PostgreSQL, SQLite ≥ 3.35):
    Django's bulk_update builds a CASE per row and costs more than the sends themselves."""
    table = Message._meta.db_table
    values = ", ".join(["(%s, %s)"] * len(messages))
    stamp = connection.ops.adapt_datetimefield_value(now)
    params: list = [stamp, stamp]
    for m in messages:
        params += [m.id, m.provider_message_id]
    sql = (
        f"UPDATE {table} SET status = 'sent', provider_message_id = v.column2, "
        "date_sent = COALESCE(date_sent, %s), date_updated = %s, lease_until = NULL "
        f"FROM (VALUES {values}) AS v WHERE {table}.id = CAST(v.column1 AS BIGINT) "
        f"AND {table}.status = 'sending' RETURNING {table}.id"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return {row[0] for row in cursor.fetchall()}


def record_error(message: Message, error: ProviderError) -> str:
    """A refused send: fail it, or put it back in the queue with a back-off."""
    from messaging.services.messages import message_status_apply

    now = timezone.now()
    if not error.permanent:
        wait = max(backoff_seconds(message.attempts), error.retry_after or 0)
        retry_at = now + timedelta(seconds=wait)
        in_time = message.expires_at is None or retry_at < message.expires_at
        if in_time and message.attempts < len(BACKOFF_SECONDS) + 1:
            if requeue_claimed(
                message, not_before=retry_at, error_code=error.code, source="provider"
            ):
                return "retry"
            return "stale"
    message_status_apply(
        message_id=message.id,
        status=Status.FAILED,
        error_code=error.code,
        error_text=error.message,
        source="provider",
        only_from={Status.SENDING},
    )
    return "failed"


def requeue_claimed(message: Message, *, not_before, error_code: int | None, source: str) -> bool:
    """Sending → queued (a retry, or a claim given back). Not a status callback: to the app
    the message is still on its way, as with Twilio's own retries."""
    with transaction.atomic():
        moved = Message.objects.filter(id=message.id, status=Status.SENDING).update(
            status=Status.QUEUED,
            not_before=not_before,
            lease_until=None,
            date_updated=timezone.now(),
        )
        if not moved:
            return False
        MessageStatusChange.objects.create(
            message_id=message.id, status=Status.QUEUED, error_code=error_code, source=source
        )
        queued_on_commit(message.sender_id, max(message.num_segments, 1))
    return True


# ---------------------------------------------------------------------- queueing & the tick


def queued_on_commit(sender_id: int, segments: int) -> None:
    """After the transaction that queued a message: make its sender due and start a pump."""
    transaction.on_commit(lambda: queued(sender_id, segments))


def queued(sender_id: int, segments: int) -> None:
    store.mark_queued(sender_id, segments=segments)
    if store.kick_debounced(100):
        from messaging import tasks

        tasks.delivery_pump.delay()


def expire_queued(*, limit: int = 500) -> int:
    """Waiting messages whose validity period has ended fail with 30036 (and call back)."""
    from messaging.services.messages import message_fail_undispatched

    now = timezone.now()
    waiting = Message.objects.filter(
        status__in=[Status.QUEUED, Status.ACCEPTED], expires_at__lte=now
    )
    expired = 0
    for message_id in waiting.values_list("id", flat=True)[:limit]:
        expired += message_fail_undispatched(
            message_id=message_id, error_code=30036, source="system"
        )
    return expired


def recover_expired_leases(*, limit: int = 500) -> dict[str, int]:
    """Claims whose worker died: requeue them where the provider de-duplicates, else fail."""
    from messaging.services.messages import message_status_apply

    counts = {"requeued": 0, "failed": 0}
    stale = (
        Message.objects.filter(status=Status.SENDING, lease_until__lt=timezone.now())
        .select_related("sender__provider")
        .order_by("lease_until")[:limit]
    )
    for message in stale:
        if message.sender is None or _idempotent(message.sender.provider):
            if requeue_claimed(message, not_before=None, error_code=None, source="recovery"):
                counts["requeued"] += 1
        elif message_status_apply(
            message_id=message.id,
            status=Status.FAILED,
            error_code=30008,
            error_text=(
                "The worker sending this message stopped before the provider answered; "
                "it was not sent again, to avoid a duplicate."
            ),
            source="recovery",
            only_from={Status.SENDING},
        ):
            counts["failed"] += 1
    if counts["requeued"] or counts["failed"]:
        log.warning("delivery: recovered abandoned claims %s", counts)
    return counts


def _idempotent(provider) -> bool:
    try:
        return adapter_for(provider).idempotent
    except ProviderError:
        return False


def reseed_due() -> int:
    """Make due every sender with ready queued messages (a lost mark costs one tick)."""
    now = timezone.now()
    sender_ids = (
        Message.objects.filter(status=Status.QUEUED, sender__active=True)
        .filter(Q(not_before__isnull=True) | Q(not_before__lte=now))
        .values_list("sender_id", flat=True)
        .distinct()
    )
    count = 0
    for sender_id in sender_ids:
        store.mark_queued(sender_id)
        count += 1
    return count


def reconcile_depths() -> None:
    from django.db.models import Sum

    rows = (
        Message.objects.filter(status=Status.QUEUED, sender__isnull=False)
        .values("sender_id")
        .annotate(segments=Sum("num_segments"))
    )
    store.depth_reset({row["sender_id"]: int(row["segments"] or 0) for row in rows})


def start_pumps() -> int:
    """Enqueue as many pumps as there is room for, when senders are due."""
    from messaging import tasks

    if store.due_count() == 0:
        return 0
    room = max(0, settings.DELIVERY_PUMPS - store.pumps_running())
    for _ in range(room):
        tasks.delivery_pump.delay()
    return room


def delivery_tick(*, reconcile: bool = False) -> dict:
    """The beat's safety net: expiry, crash recovery, lost marks, pumps."""
    result = {
        "expired": expire_queued(),
        **recover_expired_leases(),
        "due": reseed_due(),
    }
    if reconcile:
        reconcile_depths()
    result["pumps_started"] = start_pumps()
    return result


def pump_run(token: str) -> PumpStats | None:
    """One pump, if fewer than DELIVERY_PUMPS are running."""
    pump = Pump()
    ttl_ms = int((pump.seconds + 5) * 1000)
    if not store.pump_acquire(token, ttl_ms=ttl_ms, max_pumps=settings.DELIVERY_PUMPS):
        return None
    try:
        return pump.run()
    finally:
        store.pump_release(token)
