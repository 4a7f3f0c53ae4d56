"""The delivery engine: queued messages leave at each sender's pace, once, surviving crashes.

A *pump* (a Celery task; at most DELIVERY_PUMPS run at once) *leases* the senders that are
due (`store.lease_due`) and holds each while it has work. Every PLAN_EVERY seconds it plans,
in one batch, the senders it has just leased and the held ones whose planned sends are
running out:

1. one SELECT finds each sender's next ready messages (`claims.ready_candidates`), one query
   finds the opted-out recipients among them (they fail with 21610 right there, except a
   keyword's own reply: the STOP confirmation);
2. each sender's Lua script in Redis reserves their slots (`store.reserve_many`, one round
   trip): GCRA spacing, a message of k segments takes k slots, and no one-second window ever
   holds more than the sender's rate. Pacing is therefore global across every process;
3. one conditional UPDATE … RETURNING claims them (queued → sending, with a lease), with
   their history and "sending" callbacks in the same transaction.

Then it sends each message at its slot, all senders interleaved in one time-ordered heap, so
a slow sender never holds up a fast one. A send that comes late (the pump was busy) does not
push the sender's later slots back, which would slow it down for good; instead a local
window of the actual send times keeps every one-second window within the limit. Outcomes
are written in batches: sent (provider id), failed (permanent error), or back to queued
with a back-off (transient error, within the validity period).

A worker killed mid-send leaves its messages `sending` with a lease; the tick's sweeper
requeues them when the lease expires, and the provider's idempotency key (the message sid)
makes the second send return the first one's id instead of reaching the handset twice.
"""

import logging
import math
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from messaging import hooks, windows
from messaging.delivery import claims, store
from messaging.delivery.content import media_attach
from messaging.delivery.dispatcher import Dispatcher, Outcome, SendWindow
from messaging.models import Account, Message, MessageStatusChange, MessagingService, Sender
from messaging.providers import ProviderAdapter, ProviderError, adapter_for
from messaging.selectors import last_inbound_times
from messaging.services.callbacks import status_callbacks_enqueue
from messaging.services.optout import optout_blocked_by_sender
from messaging.statuses import Status

log = logging.getLogger(__name__)

# Seconds before attempt 2, 3, …: grows fast, then every 10 minutes until the validity ends.
BACKOFF_SECONDS = (2, 5, 15, 30, 60, 120, 300, 600)
MAX_CANDIDATES = 500  # messages claimed per sender per plan
MAX_SENDERS = 2000  # senders one pump holds at once
PLAN_EVERY = 0.05  # seconds between planning rounds (new leases and refills)
REFILL_AHEAD = 0.5  # refill a held sender when its plan ends within this share of the horizon
FLUSH_EVERY = 0.05  # seconds between batched writes of outcomes
# A sender whose sends stopped for less than this (a pump handing over to the next) may
# catch up: its GCRA time lags now by up to this much. The window still caps every second.
CATCH_UP = 0.1
SENDER_REFRESH = 1.0  # seconds a held sender's row (rate, active) is trusted before re-reading


def backoff_seconds(attempts: int) -> float:
    return float(BACKOFF_SECONDS[min(max(attempts, 1), len(BACKOFF_SECONDS)) - 1])


@dataclass
class SenderPlan:
    sender: Sender
    loaded_at: float  # local seconds when `sender` was read
    window: SendWindow | None = None  # set by the lease's first reservation
    next_free_ms: float | None = None  # Redis clock: the next slot after what is planned
    since_ms: float | None = None  # Redis clock: the first slot this lease reserved
    outstanding: int = 0  # planned sends not yet answered
    more: bool = True  # the queue may hold more ready messages
    paused_until: float = 0.0  # local seconds: the provider throttled this sender
    held_until: float = 0.0  # local seconds: the dispatcher holds later sends behind one
    adapter: ProviderAdapter | None = None
    adapter_error: ProviderError | None = None

    def __post_init__(self) -> None:
        self.use(self.sender, self.loaded_at)

    def use(self, sender: Sender, loaded_at: float) -> None:
        """(Re)read the sender's pacing: its rate may have been edited."""
        self.sender, self.loaded_at = sender, loaded_at
        self.rate = sender.segments_per_second
        # A hair under the configured rate: jitter between our clock and the provider's must
        # not push any one-second window over the limit.
        self.window_ms = 1000.0 * (1.0 + settings.DELIVERY_PACING_MARGIN)
        self.interval_ms = self.window_ms / self.rate
        self.limit = max(1, math.ceil(self.rate - 1e-9))
        if self.window is not None:
            self.window.limit, self.window.length_ms = self.limit, self.window_ms
        try:
            self.adapter, self.adapter_error = adapter_for(sender.provider), None
        except ProviderError as exc:  # no adapter for this provider kind
            self.adapter, self.adapter_error = None, exc


@dataclass
class PumpStats:
    planned: int = 0
    sent: int = 0
    failed: int = 0
    retried: int = 0
    opted_out: int = 0
    senders: int = 0
    plans: int = 0


@dataclass
class Pump:
    seconds: float = field(default_factory=lambda: settings.DELIVERY_PUMP_SECONDS)
    horizon: float = field(default_factory=lambda: settings.DELIVERY_HORIZON_SECONDS)
    lease: float = field(default_factory=lambda: settings.DELIVERY_LEASE_SECONDS)
    max_senders: int = MAX_SENDERS
    stats: PumpStats = field(default_factory=PumpStats)

    def __post_init__(self) -> None:
        self._plans: dict[int, SenderPlan] = {}
        self._outcomes: list[Outcome] = []
        self._dispatcher: Dispatcher | None = None
        self._accounts: dict[int, Account] = {}
        self._services: dict[int, MessagingService] = {}
        self._offset_ms = 0.0  # Redis clock minus local clock
        self._deadline = 0.0

    # ------------------------------------------------------------------ loop

    def run(self) -> PumpStats:
        self._offset_ms = _clock_offset_ms()
        self._deadline = time.time() + self.seconds
        self._dispatcher = Dispatcher(threads=settings.DELIVERY_SEND_THREADS)
        next_plan = 0.0
        last_flush = time.time()
        try:
            while True:
                now = time.time()
                planning = now < self._deadline
                if planning and now >= next_plan:
                    self._plan_round(now)
                    next_plan = now + PLAN_EVERY
                self._collect()
                if self._outcomes and (
                    len(self._outcomes) >= 200 or time.time() - last_flush >= FLUSH_EVERY
                ):
                    self._flush()
                    last_flush = time.time()
                self._release_finished(planning=time.time() < self._deadline)
                idle = not (self._plans or self._outcomes)
                if idle and (not planning or not self._work_soon()):
                    break
                wake = min(next_plan, last_flush + FLUSH_EVERY if self._outcomes else next_plan)
                time.sleep(min(max(wake - time.time(), 0.002), PLAN_EVERY))
        finally:
            self._drain()
        return self.stats

    def _work_soon(self) -> bool:
        """Is a sender due within a second? Then stay: leaving would cost a beat tick."""
        return store.due_count(within_ms=1000) > 0

    def _drain(self) -> None:
        # Messages claimed but not sent (an exception above): give them back now rather than
        # after their lease.
        unsent = self._dispatcher.stop()
        self._collect()
        if self._outcomes:
            self._flush()
        for message in unsent:
            requeue_claimed(
                message, not_before=None, error_code=None, source="system", attempted=False
            )
        self._release(list(self._plans))

    # ------------------------------------------------------------------ planning

    def _plan_round(self, now: float) -> None:
        horizon = min(self.horizon, self._deadline - now)
        batch = [
            plan
            for plan in self._plans.values()
            if plan.more
            and plan.paused_until <= now
            and self._local(plan.next_free_ms) - now <= self.horizon * REFILL_AHEAD
        ]
        room = self.max_senders - len(self._plans)
        if room > 0:
            # Long enough for this pump's run; a crashed pump blocks its senders only this long.
            lease_ms = int((self.seconds + self.horizon + 5) * 1000)
            _, sender_ids = store.lease_due(lease_ms=lease_ms, limit=room)
            batch += self._adopt(sender_ids, now)
        if batch:
            try:
                self._plan_batch(batch, horizon, now)
            except Exception:
                log.exception("delivery: planning %d senders failed", len(batch))
                for plan in batch:
                    plan.more = False  # released below; the tick makes them due again
                self._release([p.sender.id for p in batch if p.outstanding == 0])

    def _adopt(self, sender_ids: list[int], now: float) -> list[SenderPlan]:
        senders = self._load_senders(sender_ids)
        missing = [i for i in sender_ids if i not in senders]
        if missing:  # deleted or deactivated: nothing to send from it
            store.release_many(store.Release(i, None) for i in missing)
        plans = [SenderPlan(sender=s, loaded_at=now) for s in senders.values()]
        for plan in plans:
            self._plans[plan.sender.id] = plan
        self.stats.senders += len(plans)
        return plans

    def _load_senders(self, sender_ids) -> dict[int, Sender]:
        if not sender_ids:
            return {}
        return (
            Sender.objects.select_related("provider", "service")
            .filter(active=True)
            .in_bulk(list(sender_ids))
        )

    def _refresh(self, plans: list[SenderPlan], now: float) -> list[SenderPlan]:
        """Re-read senders held for a while; a deactivated one plans nothing more."""
        stale = [p for p in plans if now - p.loaded_at >= SENDER_REFRESH]
        fresh = self._load_senders(p.sender.id for p in stale)
        for plan in stale:
            if plan.sender.id in fresh:
                plan.use(fresh[plan.sender.id], now)
            else:
                plan.more = False
        return [p for p in plans if p.more]

    def _wanted(self, plan: SenderPlan, horizon: float, now: float) -> int:
        """How many messages could start within the horizon (one segment each)."""
        start = max(now, self._local(plan.next_free_ms))
        room = now + horizon - start
        if room < 0:
            return 0
        return min(MAX_CANDIDATES, int(room * 1000 / plan.interval_ms) + 1)

    def _plan_batch(self, batch: list[SenderPlan], horizon: float, now: float) -> None:
        plans = {p.sender.id: p for p in self._refresh(batch, now)}
        wanted = {sid: n for sid, p in plans.items() if (n := self._wanted(p, horizon, now))}
        if not wanted:
            return
        self.stats.plans += len(wanted)
        db_now = timezone.now()
        candidates = claims.ready_candidates(wanted, now=db_now)
        # A keyword's answer (the STOP confirmation) is the one send a block lets through.
        blocked = optout_blocked_by_sender(
            (plans[c.sender_id].sender, c.to_address) for c in candidates if not c.keyword_reply
        )
        by_sender: dict[int, list[claims.Candidate]] = {sid: [] for sid in wanted}
        opted_out = []
        found = Counter(c.sender_id for c in candidates)
        for candidate in candidates:
            pair = (candidate.sender_id, candidate.to_address)
            if pair in blocked and not candidate.keyword_reply:
                opted_out.append(candidate.id)
            else:
                by_sender[candidate.sender_id].append(candidate)
        for sender_id, limit in wanted.items():
            plans[sender_id].more = found[sender_id] >= limit  # a full page: maybe more
        slots = self._reserve(plans, by_sender, horizon)
        if slots:
            self._claim(plans, slots, horizon)
        self._fail_opted_out(opted_out)

    def _reserve(
        self, plans: dict[int, SenderPlan], by_sender: dict[int, list], horizon: float
    ) -> dict[int, float]:
        """Reserve slots for the ready messages; returns message id → slot (Redis ms)."""
        order = [sid for sid, found in by_sender.items() if found]
        requests = [
            store.ReserveRequest(
                sender_id=sid,
                interval_ms=plans[sid].interval_ms,
                limit=plans[sid].limit,
                window_ms=plans[sid].window_ms,
                horizon_ms=horizon * 1000,
                segments=[max(c.segments, 1) for c in by_sender[sid]],
                tolerance_ms=CATCH_UP * 1000,
            )
            for sid in order
        ]
        slots: dict[int, float] = {}
        for sid, reservation in zip(order, store.reserve_many(requests), strict=True):
            plan = plans[sid]
            plan.next_free_ms = reservation.next_free_ms
            if plan.window is None:  # the lease's first: seed with the sends before it
                earlier = [(t - self._offset_ms, k) for t, k in reservation.earlier]
                plan.window = SendWindow(
                    limit=plan.limit, length_ms=plan.window_ms, earlier=earlier
                )
            if reservation.slots_ms and plan.since_ms is None:
                plan.since_ms = reservation.slots_ms[0]
            found = by_sender[sid]
            if len(reservation.slots_ms) < len(found):
                plan.more = True
            for candidate, slot in zip(found, reservation.slots_ms, strict=False):
                slots[candidate.id] = slot
        return slots

    def _claim(self, plans: dict[int, SenderPlan], slots: dict[int, float], horizon: float):
        now = timezone.now()
        lease_until = now + timedelta(seconds=horizon + self.lease)
        with transaction.atomic():
            messages = claims.claim(list(slots), lease_until=lease_until, now=now)
            self._attach(messages, plans)
            media_attach(messages)
            status_callbacks_enqueue(messages)  # "sending"
            _status_hooks_on_commit([m.id for m in messages], Status.SENDING)
        taken: Counter[int] = Counter()
        for message in messages:
            plans[message.sender_id].outstanding += 1
            taken[message.sender_id] += max(message.num_segments, 1)
        closed = outside_window(messages, now)
        for message in closed:  # the window closed while it waited: fail, do not send
            self._record(Outcome(message=message, error=closed[message]))
        self._dispatcher.schedule(
            (self._local(slots[m.id]), m, plans[m.sender_id]) for m in messages if m not in closed
        )
        self.stats.planned += len(messages)
        store.depth_add((sid, -segments) for sid, segments in taken.items())

    def _attach(self, messages: list[Message], plans: dict[int, SenderPlan]) -> None:
        """Give each claimed message its sender, account and service from the pump's cache,
        for the send and the callbacks, instead of a join per row."""
        for model, cache, attr in (
            (Account, self._accounts, "account_id"),
            (MessagingService, self._services, "service_id"),
        ):
            missing = {getattr(m, attr) for m in messages} - set(cache) - {None}
            if missing:
                cache.update(model.objects.in_bulk(list(missing)))
        for message in messages:
            message.sender = plans[message.sender_id].sender
            message.account = self._accounts[message.account_id]
            if message.service_id is not None:
                message.service = self._services[message.service_id]

    def _fail_opted_out(self, message_ids: list[int]) -> None:
        from messaging.services.messages import message_fail_undispatched

        for message_id in message_ids:
            if message_fail_undispatched(message_id=message_id, error_code=21610, source="system"):
                self.stats.opted_out += 1

    def _local(self, redis_ms: float | None) -> float:
        """A Redis-clock time in ms as local epoch seconds (-inf when unknown)."""
        return -math.inf if redis_ms is None else (redis_ms - self._offset_ms) / 1000

    # ------------------------------------------------------------------ outcomes

    def _collect(self) -> None:
        for outcome in self._dispatcher.collect():
            self._record(outcome)

    def _record(self, outcome: Outcome) -> None:
        plan = self._plans[outcome.message.sender_id]
        plan.outstanding -= 1
        self._outcomes.append(outcome)
        if outcome.error is not None and outcome.error.throttled:
            self._throttle(plan, outcome.error)

    def _throttle(self, plan: SenderPlan, error: ProviderError) -> None:
        """The provider asked us to slow down: pause the sender everywhere (its pace key) and
        give its planned messages back to the queue until the pause ends, so that none waits
        here, claimed, for longer than its lease."""
        until = time.time() + (error.retry_after or 1.0)
        plan.paused_until = max(plan.paused_until, until)
        plan.next_free_ms = store.pace_floor(plan.sender.id, until * 1000 + self._offset_ms)
        given_back = self._dispatcher.withdraw(plan)
        not_before = timezone.now() + timedelta(seconds=until - time.time())
        for message in given_back:
            requeue_claimed(
                message, not_before=not_before, error_code=None, source="system", attempted=False
            )
        plan.outstanding -= len(given_back)

    def _release_finished(self, *, planning: bool) -> None:
        done = []
        for sender_id, plan in self._plans.items():
            if plan.outstanding > 0:
                continue
            next_plan = max(self._local(plan.next_free_ms), plan.paused_until)
            if planning and plan.more and next_plan - self.horizon < self._deadline:
                continue  # held: the next round refills it
            done.append(sender_id)
        if done:
            self._release(done)

    def _release(self, sender_ids: list[int]) -> None:
        now_ms = time.time() * 1000
        releases = []
        for sender_id in sender_ids:
            plan = self._plans.pop(sender_id)
            next_ms = None
            if plan.more:
                next_ms = (plan.next_free_ms or store.redis_now_ms()) - self.horizon * 1000
            sends = ()
            if plan.since_ms is not None and plan.window is not None:
                since_local = plan.since_ms - self._offset_ms
                sends = [
                    (at + self._offset_ms, k)
                    for at, k in plan.window.sends_since(since_local, now_ms)
                ]
            releases.append(store.Release(sender_id, next_ms, plan.since_ms, sends))
        store.release_many(releases)

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


def outside_window(messages: list[Message], now) -> dict[Message, ProviderError]:
    """The claimed WhatsApp/Messenger messages whose customer-service window has closed
    (one query for the batch), each with its 63016 error."""
    windowed = [m for m in messages if windows.has_window(m.channel)]
    if not windowed:
        return {}
    last: dict = {}
    for account_id in {m.account_id for m in windowed}:
        pairs = [(m.to_address, m.sender.address) for m in windowed if m.account_id == account_id]
        last.update(last_inbound_times(account_id, pairs))
    closed = {}
    for message in windowed:
        seen = last.get((message.to_address, message.sender.address))
        tag = (message.tags or {}).get(windows.TAG_KEY, "")
        if not windows.may_send(
            message.channel, seen, now, template=bool(message.content_sid), tag=tag
        ):
            error = windows.outside_window_error(message.channel, seen)
            closed[message] = ProviderError(error.code, error.message, permanent=True)
    return closed


def _clock_offset_ms() -> float:
    """Redis clock minus local clock, read once per pump: every slot converts the same way."""
    before = time.time()
    redis_ms = store.redis_now_ms()
    after = time.time()
    return redis_ms - (before + after) / 2 * 1000


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
        updated = claims.mark_sent([(m.id, m.provider_message_id) for m in messages], now=now)
        mine = [m for m in messages if m.id in updated]
        status_callbacks_enqueue(mine)
        _status_hooks_on_commit([m.id for m in mine], Status.SENT)
    return len(mine)


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


def requeue_claimed(
    message: Message,
    *,
    not_before,
    error_code: int | None,
    source: str,
    attempted: bool = True,
) -> bool:
    """Sending → queued (a retry, or a claim given back). Not a status callback: to the app
    the message is still on its way, as with Twilio's own retries. A claim given back before
    any provider call (`attempted=False`) does not count as an attempt."""
    changes: dict = {
        "status": Status.QUEUED,
        "not_before": not_before,
        "lease_until": None,
        "date_updated": timezone.now(),
    }
    if not attempted:
        changes["attempts"] = F("attempts") - 1
    with transaction.atomic():
        moved = Message.objects.filter(id=message.id, status=Status.SENDING).update(**changes)
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
    ).order_by("expires_at")
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
        .order_by()  # not Message's default ordering: DISTINCT would count its columns too
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
        .order_by()
        .values("sender_id")
        .annotate(segments=Sum("num_segments"))
    )
    store.depth_reset({row["sender_id"]: int(row["segments"] or 0) for row in rows})


# How far ahead a pump looks for due senders when deciding whether one should run: a sender
# due within this long would otherwise wait for the next beat tick.
DUE_SOON_MS = 1500


def start_pumps() -> int:
    """Enqueue as many pumps as there is room for, when senders are due."""
    from messaging import tasks

    if store.due_count(within_ms=DUE_SOON_MS) == 0:
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
    ttl_ms = int((pump.seconds + pump.horizon + 5) * 1000)
    if not store.pump_acquire(token, ttl_ms=ttl_ms, max_pumps=settings.DELIVERY_PUMPS):
        return None
    try:
        return pump.run()
    finally:
        store.pump_release(token)
