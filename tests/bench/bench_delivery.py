"""Benchmark: the delivery engine (REFERENCE.md 1) on PostgreSQL and Redis, one pump process,
against the simulator provider (receipts off, every accepted send recorded with its time).

1. Pacing accuracy: 200 senders (120 at 1, 50 at 3, 25 at 10, 5 at 80 segments/s; sum 920/s),
   each handed BENCH_PACING_SECONDS (default 20) worth of segments at once (a burst; one in
   five messages of senders at 3/s and more has 2 segments). Figures: the worst one-second
   window per sender against its limit, and the aggregate rate against the sum of limits.
2. Throughput: 50 senders at 80/s (4,000/s of limits) with 20,000 queued messages. Figure:
   segments dispatched per second (and that no window passed a limit on the way).
3. Drain: 10,000 messages on 10 senders at 100/s. Figure: drain time against N/MPS = 10 s.

Pumps run one after another with the product's settings (DELIVERY_PUMP_SECONDS), so the
runs include hand-overs between pumps, as in production.

Messages are inserted queued with bulk_create (the API's own cost is in bench_messages_api).
Prints figures; asserts nothing. Skips when PostgreSQL or Redis is not reachable.

    .venv/bin/python tests/bench/bench_delivery.py
"""

import os
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
PG_ADMIN = os.environ.get("BENCH_PG_ADMIN_URL", "postgres://postgres@127.0.0.1:5432/postgres")
DB = "cc_bench_delivery"


def setup() -> bool:
    import psycopg

    try:
        with psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=3) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {DB}")
            conn.execute(f"CREATE DATABASE {DB}")
    except psycopg.Error as exc:
        print(f"skipped: PostgreSQL not reachable ({exc})")
        return False
    os.environ["DATABASE_URL"] = PG_ADMIN.rsplit("/", 1)[0] + f"/{DB}"
    os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/7")
    os.environ.setdefault("SECRET_KEY", "bench")
    os.environ.setdefault("ALLOWED_HOSTS", "localhost")
    os.environ["DELIVERY_KEY_PREFIX"] = f"bench:{uuid.uuid4().hex[:8]}"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "contactcenter.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    return True


def world(rates: list[float]):
    from messaging.models import ProviderAccount, Sender
    from messaging.services.accounts import account_get_or_create_default

    account = account_get_or_create_default()
    provider = ProviderAccount.objects.create(
        account=account,
        name=f"sim-{uuid.uuid4().hex[:6]}",
        kind="simulator",
        settings={"receipt_delay_seconds": None, "record_sends": True},
    )
    base = Sender.objects.count()
    senders = Sender.objects.bulk_create(
        Sender(
            account=account,
            provider=provider,
            kind="long_code",
            channel="sms",
            address=f"+1415{(base + i):07d}",
            throughput=rate,
        )
        for i, rate in enumerate(rates)
    )
    return account, provider, senders


def enqueue(account, sender, count: int, *, long_every: int = 0) -> int:
    from django.utils import timezone

    from messaging.models import Message
    from messaging.sids import new_sid

    now = timezone.now()
    rows, segments = [], 0
    for i in range(count):
        k = 2 if long_every and i % long_every == 0 else 1
        segments += k
        rows.append(
            Message(
                sid=new_sid("SM"),
                account=account,
                sender=sender,
                channel="sms",
                direction="outbound-api",
                from_address=sender.address,
                to_address="+14155550123",
                body="x" * (200 if k == 2 else 20),
                status="queued",
                encoding="GSM",
                num_segments=k,
                expires_at=now + timedelta(hours=10),
            )
        )
    Message.objects.bulk_create(rows, batch_size=2000)
    return segments


def pump_until_drained(seconds_cap: float) -> float:
    from messaging.delivery import engine
    from messaging.models import Message

    engine.reseed_due()
    start = time.time()
    while time.time() - start < seconds_cap:
        # One pump after another, as the Celery task chains them, with the product's
        # settings (DELIVERY_PUMP_SECONDS: a run includes hand-overs between pumps).
        engine.Pump().run()
        if not Message.objects.filter(status__in=["queued", "sending"]).exists():
            break
    return time.time() - start


def sends(provider) -> list[dict]:
    from messaging.providers import simulator

    return simulator.recorded_sends(provider.id)


def worst_window(times: list[tuple[float, int]]) -> int:
    times.sort()
    worst, j, total = 0, 0, 0
    for i in range(len(times)):
        total += times[i][1]
        while times[j][0] <= times[i][0] - 1000:
            total -= times[j][1]
            j += 1
        worst = max(worst, total)
    return worst


def windows_over(log: list[dict], senders, rates) -> tuple[int, float]:
    """Senders with some one-second window over their limit, and the worst window / limit."""
    by_sender: dict[str, list[tuple[float, int]]] = {}
    for entry in log:
        by_sender.setdefault(entry["from"], []).append((entry["at"], entry["segments"]))
    over = 0
    worst_ratio = 0.0
    for sender, rate in zip(senders, rates, strict=True):
        worst = worst_window(by_sender.get(sender.address, []))
        worst_ratio = max(worst_ratio, worst / rate)
        over += worst > rate
    return over, worst_ratio


def bench_pacing(seconds: float) -> None:
    rates = [1] * 120 + [3] * 50 + [10] * 25 + [80] * 5
    account, provider, senders = world(rates)
    for sender, rate in zip(senders, rates, strict=True):
        enqueue(account, sender, int(rate * seconds), long_every=5 if rate >= 3 else 0)
    elapsed = pump_until_drained(seconds * 4)
    log = sends(provider)
    over, worst_ratio = windows_over(log, senders, rates)
    # The aggregate over the steady part: while every sender still had work (the first
    # `seconds`), compare segments sent with the sum of limits.
    start = min(e["at"] for e in log)
    window = [e for e in log if e["at"] < start + seconds * 1000 * 0.9]
    aggregate = sum(e["segments"] for e in window) / (seconds * 0.9)
    print(
        f"pacing: {len(log)} messages, {len(senders)} senders, drained in {elapsed:.1f} s; "
        f"senders over their limit in some 1 s window: {over}; worst window / limit: "
        f"{worst_ratio:.2f}; aggregate {aggregate:.0f} segments/s vs sum of limits "
        f"{sum(rates)} ({100 * aggregate / sum(rates):.1f} %)"
    )


def bench_throughput(count: int) -> None:
    account, provider, senders = world([80] * 50)
    for sender in senders:
        enqueue(account, sender, count // len(senders))
    elapsed = pump_until_drained(120)
    log = sends(provider)
    span = (max(e["at"] for e in log) - min(e["at"] for e in log)) / 1000
    over, worst_ratio = windows_over(log, senders, [80] * 50)
    print(
        f"throughput: {len(log)} segments in {span:.2f} s of sending "
        f"({elapsed:.2f} s with start-up) = {len(log) / span:.0f} segments/s "
        f"(limits allow {80 * len(senders)}/s); senders over their limit: {over}, "
        f"worst window / limit: {worst_ratio:.2f}"
    )


def bench_drain(count: int) -> None:
    account, provider, senders = world([100] * 10)
    for sender in senders:
        enqueue(account, sender, count // len(senders))
    elapsed = pump_until_drained(120)
    log = sends(provider)
    span = (max(e["at"] for e in log) - min(e["at"] for e in log)) / 1000
    over, worst_ratio = windows_over(log, senders, [100] * 10)
    print(
        f"drain: {len(log)} messages at 10 x 100/s: {span:.2f} s from first to last send, "
        f"{elapsed:.2f} s in all; theoretical N/MPS = {count / 1000:.2f} s; senders over "
        f"their limit: {over}, worst window / limit: {worst_ratio:.2f}"
    )


if __name__ == "__main__":
    if setup():
        bench_pacing(float(os.environ.get("BENCH_PACING_SECONDS", "20")))
        bench_throughput(int(os.environ.get("BENCH_THROUGHPUT_MESSAGES", "20000")))
        bench_drain(10_000)
