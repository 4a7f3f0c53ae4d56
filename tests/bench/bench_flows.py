"""Benchmark: inbound messages through a three-widget bot flow on the simulator (issue 7).

The flow: Trigger → split-based-on (`{{trigger.message.Body}}` matches any of "1, menu,
hola") → set-variables (`choice = {{trigger.message.Body | upcase}}`, on both branches) →
send-message ("You chose {{flow.variables.choice}}"). It is published and attached to three
simulator senders of a fresh database, one per run below. Every inbound message comes from
its own customer (+1 NXX 555-01xx, many area codes), so each one starts its own execution.
Inbound messages are produced as the simulator provider produces them: a signed webhook
body handed to the webhook's handler (`simulator_customer_reply`: signature checked, stored
inline); on commit messaging's hook enqueues `contactcenter.flows.tasks.flow_inbound`.

1. Backlog through Celery: BENCH_FLOWS_MESSAGES (default 600) messages are stored while no
   worker runs (their tasks wait in Redis), then ONE Celery worker process starts (prefork
   pool, 2 children, as `manage.py serve` runs it; BENCH_FLOWS_POOL=solo and
   BENCH_FLOWS_CONCURRENCY change that). Rate: messages / (last execution ended - first
   execution created), both stamped by the worker's children. Also Celery's own task
   runtime (from the worker's log) and the PostgreSQL sessions the worker opened.
2. Paced through Celery: with that worker running, BENCH_FLOWS_PACED_RATE (default 10) new
   messages per second for 10 s, stored by this process. Per message: inbound message
   stored → execution created (commit, on-commit enqueue, broker, pick-up, first reads) and
   → execution ended (the reply created; the commit follows).
3. In-process: BENCH_FLOWS_MESSAGES more messages stored, then `flow_inbound_handle` called
   for each one after the other in this process (what the task runs, minus Celery); then
   20 more under `CaptureQueriesContext` for the statements one message costs.

Step latency is `Step.duration_ms`: the widget's own run time as the engine records it (not
the step's share of the engine's bookkeeping or the commit). The replies are created
(queued), not delivered: delivery is bench_delivery.py's, and the delivery-pump tasks the
replies enqueue go to a queue no worker reads. Checked after every run: one execution per
message, every execution ended with four steps, one reply per customer with the right body.

    .venv/bin/python tests/bench/bench_flows.py                # PostgreSQL + Redis
    BENCH_SQLITE=1 .venv/bin/python tests/bench/bench_flows.py  # SQLite + Redis
    BENCH_PROFILE=1 .venv/bin/python tests/bench/bench_flows.py  # + one message's SQL, cProfile

PostgreSQL database `cc_bench_flows` on 127.0.0.1 (dropped at the end), Redis database 11
(this run's queues, bindings and delivery keys are deleted at the end). No CPU pinning: the
worker's children, this process and PostgreSQL share the machine's cores. Prints figures;
exits non-zero only when a message was lost, handled twice or answered wrongly.
"""

import contextlib
import math
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.support.processes import ROOT, alive, descendants

MESSAGES = int(os.environ.get("BENCH_FLOWS_MESSAGES", "600"))
PACED_RATE = float(os.environ.get("BENCH_FLOWS_PACED_RATE", "10"))
PACED_SECONDS = 10
QUERY_SAMPLE = 20
POOL = os.environ.get("BENCH_FLOWS_POOL", "prefork")
CONCURRENCY = int(os.environ.get("BENCH_FLOWS_CONCURRENCY", "2"))
PG_ADMIN = os.environ.get("BENCH_PG_ADMIN_URL", "postgres://postgres@127.0.0.1:5432/postgres")
DB = "cc_bench_flows"
REDIS_URL = "redis://127.0.0.1:6379/11"
WEBHOOK_SECRET = "bench-webhook-secret"
TASK = "contactcenter.flows.tasks.flow_inbound"
WAIT_CAP_SECONDS = 150

# Area codes whose 555-0100..0199 numbers parse_address accepts (100 customers each).
AREA_CODES = [
    201, 202, 203, 205, 206, 207, 208, 209, 210, 212, 213, 214, 215, 216, 217, 218, 219, 224,
    225, 228, 229, 231, 234, 239, 240, 248, 251, 252, 253, 254, 256, 260, 262, 267, 269, 270,
    272, 276, 281, 301, 302, 303, 304, 305, 307, 308, 309, 310, 312, 313, 314, 315, 316, 317,
    318, 319, 320, 321, 323, 325, 330, 331, 334, 336, 337, 339, 341, 346, 347, 351, 352, 360,
    361, 364, 380, 385, 386, 401, 402, 404, 405, 406, 407, 408, 409, 410, 412, 413, 414, 415,
]  # fmt: skip
BODIES = ["1", "menu", "Hola", "2", "I need help with my order"]  # 3 match, 2 noMatch

DEFINITION = {
    "description": "bench: split, set-variables, send-message",
    "initial_state": "Trigger",
    "flags": {"allow_concurrent_calls": True},
    "states": [
        {
            "name": "Trigger",
            "type": "trigger",
            "properties": {"offset": {"x": 0, "y": 0}},
            "transitions": [{"event": "incomingMessage", "next": "split"}],
        },
        {
            "name": "split",
            "type": "split-based-on",
            "properties": {"input": "{{trigger.message.Body}}"},
            "transitions": [
                {
                    "event": "match",
                    "next": "remember",
                    "conditions": [
                        {
                            "friendly_name": "menu",
                            "arguments": ["{{trigger.message.Body}}"],
                            "type": "matches_any_of",
                            "value": "1, menu, hola",
                        }
                    ],
                },
                {"event": "noMatch", "next": "remember"},
            ],
        },
        {
            "name": "remember",
            "type": "set-variables",
            "properties": {
                "variables": [{"key": "choice", "value": "{{trigger.message.Body | upcase}}"}]
            },
            "transitions": [{"event": "next", "next": "reply"}],
        },
        {
            "name": "reply",
            "type": "send-message",
            "properties": {"body": "You chose {{flow.variables.choice}}"},
            "transitions": [{"event": "sent"}, {"event": "failed"}],
        },
    ],
}


# ---------------------------------------------------------------- set-up


def configure(tmp: str, run_id: str) -> str:
    """Environment for this process and the worker; returns a label for the database."""
    os.environ.update(
        {
            "DEBUG": "false",
            "SECRET_KEY": "bench-" * 8,
            "ALLOWED_HOSTS": "localhost",
            "DATA_DIR": str(Path(tmp) / "data"),
            "REDIS_URL": REDIS_URL,
            "DELIVERY_KEY_PREFIX": f"bench-flows:{run_id}",
            "DJANGO_SETTINGS_MODULE": "contactcenter.settings",
            "BENCH_FLOWS_QUEUE": f"cc-bench-flows-{run_id}",
            "BENCH_FLOWS_OTHER_QUEUE": f"cc-bench-flows-other-{run_id}",
            "PYTHONPATH": str(ROOT),
        }
    )
    if os.environ.get("BENCH_SQLITE"):
        os.environ["DATABASE_URL"] = f"sqlite:///{Path(tmp) / 'bench.sqlite3'}"
        return "SQLite + Redis"
    import psycopg

    with psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=3) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {DB}")
    os.environ["DATABASE_URL"] = PG_ADMIN.rsplit("/", 1)[0] + f"/{DB}"
    return "PostgreSQL + Redis"


def route_tasks(app) -> None:
    """flow_inbound to this run's queue, which the bench worker alone consumes; every other
    task (delivery pumps for the replies, ...) to a queue nobody consumes, deleted at the end."""
    app.conf.update(
        task_routes={TASK: {"queue": os.environ["BENCH_FLOWS_QUEUE"]}},
        task_default_queue=os.environ["BENCH_FLOWS_OTHER_QUEUE"],
    )


def django_setup() -> None:
    from contactcenter.celery import app

    route_tasks(app)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def world():
    from contactcenter.flows.models import Flow, FlowAttachment
    from contactcenter.flows.services import flow_publish
    from messaging.models import ProviderAccount, Sender
    from messaging.services.accounts import account_get_or_create_default
    from messaging.services.providers import provider_credentials_set

    account = account_get_or_create_default()
    provider = ProviderAccount.objects.create(account=account, name="bench-flows", kind="simulator")
    provider_credentials_set(provider, {"webhook_secret": WEBHOOK_SECRET})
    flow = Flow.objects.create(
        account=account, friendly_name="bench three widgets", definition=DEFINITION
    )
    flow_publish(flow, by="bench")
    senders = {}
    for i, name in enumerate(("celery", "paced", "inprocess")):
        sender = Sender(
            account=account, provider=provider, kind="long_code", address=f"+1415555019{i}"
        )
        sender.full_clean()
        sender.save()
        FlowAttachment.objects.create(flow=flow, sender=sender)
        senders[name] = sender
    return senders


class Customers:
    """Distinct customer numbers, 100 per area code, never the same one twice."""

    def __init__(self):
        self.next = 0

    def take(self, count: int) -> list[str]:
        numbers = range(self.next, self.next + count)
        self.next += count
        if self.next > len(AREA_CODES) * 100:
            raise SystemExit(f"only {len(AREA_CODES) * 100} customer numbers; lower the counts")
        return [f"+1{AREA_CODES[n // 100]}55501{n % 100:02d}" for n in numbers]


def reply(sender, customer: str, n: int) -> str:
    """One customer writes, through the simulator's signed webhook; the message's sid."""
    from messaging.simulator.services import simulator_customer_reply

    body = BODIES[n % len(BODIES)]
    outcome = simulator_customer_reply(
        sender=sender, customer=customer, body=body, profile_name="Bench"
    )
    if outcome.status != 200 or not outcome.created:
        raise SystemExit(f"the simulator webhook answered {outcome.status}: {outcome.body}")
    return outcome.body["sid"]


def store(sender, customers: list[str], threads: int = 2) -> tuple[list[int], float]:
    """Each customer writes once (from `threads` threads: storing is not what is measured);
    the messages' ids, in the customers' order."""
    from django.db import connection

    from messaging.models import Message

    def part(k: int) -> list[tuple[int, str]]:
        try:
            return [(n, reply(sender, customers[n], n)) for n in range(k, len(customers), threads)]
        finally:
            connection.close()

    t0 = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        sids = dict(pair for result in pool.map(part, range(threads)) for pair in result)
    elapsed = time.perf_counter() - t0
    ids = dict(Message.objects.filter(sid__in=sids.values()).values_list("sid", "id"))
    return [ids[sids[n]] for n in range(len(customers))], elapsed


# ---------------------------------------------------------------- the worker


def start_worker(log_path: Path) -> subprocess.Popen:
    command = [sys.executable, __file__, "--worker"]
    with log_path.open("w") as log:
        return subprocess.Popen(command, cwd=ROOT, env=dict(os.environ), stdout=log, stderr=log)


def worker_main() -> None:
    """`celery -A contactcenter worker` with the bench's task routes (this run's queues)."""
    from contactcenter.celery import app

    route_tasks(app)
    app.conf.update(worker_enable_remote_control=False)  # no pidbox queue left behind
    app.worker_main(
        [
            "worker",
            "--pool",
            POOL,
            "--concurrency",
            str(CONCURRENCY),
            "--queues",
            os.environ["BENCH_FLOWS_QUEUE"],
            "--hostname",
            f"bench-flows-{os.getpid()}@%h",
            "--loglevel",
            "INFO",  # the product's default LOG_LEVEL: two lines per task
            "--without-gossip",
            "--without-mingle",
        ]
    )


def stop_worker(worker: subprocess.Popen) -> None:
    """Warm shutdown (SIGTERM to the main process), then SIGKILL whatever is left."""
    tree = descendants(worker.pid) | {worker.pid}
    if worker.poll() is None:
        worker.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            worker.wait(timeout=20)
    for pid in tree:
        if alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        worker.wait(timeout=5)


def wait_done(sender, count: int, worker: subprocess.Popen, log_path: Path) -> float:
    """Until `count` executions on `sender` are no longer active; the time it took."""
    from contactcenter.flows.models import Execution

    t0 = time.monotonic()
    while time.monotonic() - t0 < WAIT_CAP_SECONDS:
        executions = Execution.objects.filter(business_address=sender.address)
        if executions.exclude(status="active").count() >= count:
            return time.monotonic() - t0
        if worker.poll() is not None:
            raise SystemExit(f"the worker exited ({worker.returncode}):\n{tail(log_path)}")
        time.sleep(0.1)
    raise SystemExit(f"not done after {WAIT_CAP_SECONDS} s:\n{tail(log_path)}")


def tail(path: Path, lines: int = 30) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


# ---------------------------------------------------------------- figures


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[max(math.ceil(len(ordered) * p / 100) - 1, 0)]


def dist(values: list[float]) -> str:
    return (
        f"p50 {pct(values, 50):7.2f}  p99 {pct(values, 99):7.2f}  max {max(values):7.2f} ms"
        f"  (mean {statistics.fmean(values):.2f}, n={len(values)})"
    )


def step_latencies(sender) -> None:
    from contactcenter.flows.models import Step

    by_type: dict[str, list[float]] = {}
    for kind, ms in Step.objects.filter(execution__business_address=sender.address).values_list(
        "widget_type", "duration_ms"
    ):
        by_type.setdefault(kind, []).append(ms)
    widgets = [ms for kind, values in by_type.items() if kind != "trigger" for ms in values]
    print("    step latency (Step.duration_ms):")
    for kind in ("split-based-on", "set-variables", "send-message", "trigger"):
        if kind in by_type:
            print(f"      {kind:<22} {dist(by_type[kind])}")
    print(f"      {'the 3 widgets together':<22} {dist(widgets)}")


def check(sender, message_ids: list[int]) -> list[str]:
    """One execution per message, all ended with 4 steps, one right reply per customer."""
    from django.db.models import Count

    from contactcenter.flows.models import Execution, Step
    from messaging.models import Direction, Message

    n = len(message_ids)
    problems = []
    inbound = dict(Message.objects.filter(id__in=message_ids).values_list("from_address", "body"))
    executions = Execution.objects.filter(business_address=sender.address)
    statuses = Counter(executions.values_list("status", flat=True))
    pairs = executions.values("contact_address").distinct().count()
    consumed = Step.objects.filter(inbound_message_id__in=message_ids).count()
    step_counts = Counter(executions.annotate(n=Count("steps")).values_list("n", flat=True))
    errors = Step.objects.filter(execution__business_address=sender.address).exclude(error="")
    replies = list(
        Message.objects.filter(
            from_address=sender.address, direction=Direction.OUTBOUND_REPLY
        ).values_list("to_address", "body")
    )
    per_customer = Counter(to for to, _body in replies)
    wrong = sum(1 for to, body in replies if body != f"You chose {inbound.get(to, '?').upper()}")
    matched = Step.objects.filter(
        execution__business_address=sender.address, widget_type="split-based-on"
    )
    events = Counter(matched.values_list("event", flat=True))
    print(
        f"    checks: {n} inbound messages, {sum(statuses.values())} executions for {pairs} "
        f"customers, statuses {dict(statuses)}, {consumed} messages consumed by a step, steps "
        f"per execution {dict(step_counts)}, {errors.count()} step errors, split {dict(events)}; "
        f"{len(replies)} replies to {len(per_customer)} customers, {wrong} with a wrong body"
    )
    if len(inbound) != n:
        problems.append(f"{n} messages from {len(inbound)} customers")
    if sum(statuses.values()) != n or pairs != n or statuses.get("ended") != n:
        problems.append(f"executions {dict(statuses)} for {pairs} pairs, expected {n} ended")
    if consumed != n:
        problems.append(f"{consumed} of {n} messages consumed")
    if step_counts != Counter({4: n}) or errors.exists():
        problems.append(f"steps per execution {dict(step_counts)}, {errors.count()} errors")
    if len(replies) != n or len(per_customer) != n or wrong:
        problems.append(f"{len(replies)} replies, {len(per_customer)} customers, {wrong} wrong")
    return problems


def celery_backlog(sender, customers: Customers, log_path: Path):
    from contactcenter.flows.models import Execution
    from messaging.delivery import store as delivery_store

    ids, stored_in = store(sender, customers.take(MESSAGES))
    waiting = delivery_store.client().llen(os.environ["BENCH_FLOWS_QUEUE"])
    print(
        f"  stored {len(ids)} inbound messages through the simulator webhook (inline) in "
        f"{stored_in:.1f} s = {len(ids) / stored_in:.0f}/s, no worker running; "
        f"{waiting} flow_inbound tasks waiting in Redis"
    )
    sessions = pg_sessions()
    worker = start_worker(log_path)
    took = wait_done(sender, len(ids), worker, log_path)
    span = Execution.objects.filter(business_address=sender.address).values_list(
        "date_created", "date_ended"
    )
    first = min(created for created, _ended in span)
    last = max(ended for _created, ended in span)
    seconds = (last - first).total_seconds()
    print(
        f"  1. backlog, 1 worker process ({POOL}, {CONCURRENCY} "
        f"{'children' if POOL == 'prefork' else 'threads'}): {len(ids)} messages in "
        f"{seconds:.2f} s from the first execution created to the last ended = "
        f"**{len(ids) / seconds:.0f} messages/s** ({took:.1f} s from spawning the worker)"
    )
    runtimes = task_runtimes(log_path)
    if runtimes:
        print(f"    flow_inbound task runtime (worker log) {dist(runtimes)}")
    if sessions is not None:
        print(
            f"    PostgreSQL sessions opened while the worker ran: {pg_sessions() - sessions} "
            f"for {len(runtimes)} tasks"
        )
    step_latencies(sender)
    return worker, ids


def task_runtimes(log_path: Path) -> list[float]:
    """Celery's own "succeeded in X s" per task (prerun signal included), in ms."""
    found = re.findall(r"flow_inbound\[[^]]+\] succeeded in ([0-9.e-]+)s", log_path.read_text())
    return [float(seconds) * 1000 for seconds in found]


def pg_sessions() -> int | None:
    """Sessions PostgreSQL has counted on the bench database (None on SQLite)."""
    from django.db import connection

    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute("SELECT sessions FROM pg_stat_database WHERE datname = current_database()")
        return cursor.fetchone()[0]


def celery_paced(sender, customers: Customers, worker, log_path: Path) -> list[int]:
    from django.db.models import F

    from contactcenter.flows.models import Step

    count = int(PACED_RATE * PACED_SECONDS)
    numbers = customers.take(count)
    sids = []
    t0 = time.monotonic()
    for i, customer in enumerate(numbers):
        delay = t0 + i / PACED_RATE - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        sids.append(reply(sender, customer, i))
    achieved = count / (time.monotonic() - t0)
    wait_done(sender, count, worker, log_path)
    rows = Step.objects.filter(
        execution__business_address=sender.address, inbound_message__isnull=False
    ).values_list(
        F("inbound_message__date_created"), F("execution__date_created"), F("execution__date_ended")
    )
    picked = [(created - stored).total_seconds() * 1000 for stored, created, _ended in rows]
    ended = [(done - stored).total_seconds() * 1000 for stored, _created, done in rows]
    print(
        f"  2. paced, the same worker: {count} messages at {PACED_RATE:.0f}/s scheduled "
        f"({achieved:.1f}/s achieved by the producer)"
    )
    print(f"    inbound stored → execution created   {dist(picked)}")
    print(f"    inbound stored → execution ended     {dist(ended)}")
    step_latencies(sender)
    from messaging.models import Message

    return list(Message.objects.filter(sid__in=sids).values_list("id", flat=True))


def in_process(sender, customers: Customers) -> list[int]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from contactcenter.flows.services import flow_inbound_handle

    ids, _stored_in = store(sender, customers.take(MESSAGES))
    per_message = []
    t0 = time.perf_counter()
    for message_id in ids:
        t1 = time.perf_counter()
        result = flow_inbound_handle(message_id)
        per_message.append((time.perf_counter() - t1) * 1000)
        if not result.startswith("started"):
            raise SystemExit(f"message {message_id}: {result}")
    elapsed = time.perf_counter() - t0
    print(
        f"  3. in-process, one after the other: {len(ids)} messages in {elapsed:.2f} s = "
        f"**{len(ids) / elapsed:.0f} messages/s**"
    )
    print(f"    flow_inbound_handle per message     {dist(per_message)}")
    step_latencies(sender)
    sample, _ = store(sender, customers.take(QUERY_SAMPLE))
    counts, kinds, query_ms, wall_ms = [], Counter(), [], []
    for message_id in sample:
        with CaptureQueriesContext(connection) as queries:
            t1 = time.perf_counter()
            flow_inbound_handle(message_id)
            wall_ms.append((time.perf_counter() - t1) * 1000)
        counts.append(len(queries.captured_queries))
        query_ms.append(sum(float(q["time"]) for q in queries.captured_queries) * 1000)
        kinds.update(statement_kind(q["sql"]) for q in queries.captured_queries)
    per = {kind: round(n / len(sample), 1) for kind, n in kinds.most_common()}
    print(
        f"    statements per message ({len(sample)} more, under CaptureQueriesContext): "
        f"{statistics.fmean(counts):.1f}, {statistics.fmean(query_ms):.1f} ms of "
        f"{statistics.fmean(wall_ms):.1f} ms waiting on the database; {per}"
    )
    if os.environ.get("BENCH_PROFILE"):
        sample += profiled(sender, customers)
    return ids + sample


def statement_kind(sql: str) -> str:
    """ "SELECT messaging_contact", "INSERT flows_step", "SAVEPOINT"..."""
    words = sql.replace('"', " ").split()
    verb = words[0].upper() if words else "?"
    keyword = {"SELECT": "FROM", "DELETE": "FROM", "INSERT": "INTO", "UPDATE": "UPDATE"}.get(verb)
    if keyword is None or keyword not in words:
        return verb
    index = words.index(keyword) + 1
    return f"{verb} {words[index]}" if index < len(words) else verb


def profiled(sender, customers: Customers) -> list[int]:
    """BENCH_PROFILE=1: one message's statements, then cProfile of storing 200 more
    messages and of handling them."""
    import cProfile
    import pstats

    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from contactcenter.flows.services import flow_inbound_handle

    ids, _ = store(sender, customers.take(1), threads=1)
    with CaptureQueriesContext(connection) as queries:
        flow_inbound_handle(ids[0])
    print("    the statements of one message:")
    for query in queries.captured_queries:
        print(f"      {float(query['time']) * 1000:5.2f} ms  {query['sql'][:150]}")
    profile = cProfile.Profile()
    profile.enable()
    more, _ = store(sender, customers.take(200), threads=1)
    profile.disable()
    print("    cProfile, storing 200 inbound messages (simulator_customer_reply):")
    pstats.Stats(profile).sort_stats("cumulative").print_stats(25)
    profile = cProfile.Profile()
    profile.enable()
    for message_id in more:
        flow_inbound_handle(message_id)
    profile.disable()
    print("    cProfile, flow_inbound_handle of those 200:")
    pstats.Stats(profile).sort_stats("cumulative").print_stats(45)
    pstats.Stats(profile).sort_stats("tottime").print_stats(20)
    return ids + more


# ---------------------------------------------------------------- clean-up


def cleanup_redis(run_id: str) -> None:
    """Every key of this run: its two queues, kombu's bindings, the delivery keys."""
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    for key in client.scan_iter(match=f"*{run_id}*", count=1000):
        client.delete(key)
    deadlines = "_kombu.binding_deadlines"
    if client.type(deadlines) == b"zset":
        mine = [m for m in client.zrange(deadlines, 0, -1) if run_id.encode() in m]
        if mine:
            client.zrem(deadlines, *mine)


def drop_database() -> None:
    from django.db import connections

    for connection in connections.all():
        if hasattr(connection, "close_pool"):
            connection.close_pool()
        connection.close()
    if os.environ.get("BENCH_SQLITE"):
        return
    import psycopg

    with psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=3) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")


def main() -> None:
    run_id = uuid.uuid4().hex[:8]
    with tempfile.TemporaryDirectory(prefix="cc-bench-flows-") as tmp:
        try:
            mode = configure(tmp, run_id)
        except Exception as exc:  # psycopg.Error, but psycopg may be missing too
            print(f"skipped: PostgreSQL not reachable ({exc})")
            return
        log_path = Path(tmp) / "worker.log"
        worker = None
        problems: list[str] = []
        try:
            django_setup()
            senders = world()
            customers = Customers()
            print(
                f"Bot flow, 3 widgets (split, set-variables, send-message), on the simulator "
                f"({mode}; no CPU pinning, {os.cpu_count()} cores shared with the database; "
                f"load average {os.getloadavg()[0]:.2f}):"
            )
            worker, ids = celery_backlog(senders["celery"], customers, log_path)
            problems += check(senders["celery"], ids)
            paced_ids = celery_paced(senders["paced"], customers, worker, log_path)
            problems += check(senders["paced"], paced_ids)
            stop_worker(worker)
            worker = None
            inproc_ids = in_process(senders["inprocess"], customers)
            problems += check(senders["inprocess"], inproc_ids)
            errors = [
                line
                for line in log_path.read_text(errors="replace").splitlines()
                if "ERROR" in line
            ]
            first = f", first: {errors[0]}" if errors else ""
            print(f"  worker log: {len(errors)} ERROR lines{first}")
            print(f"  load average at the end: {os.getloadavg()[0]:.2f}")
        finally:
            if worker is not None:
                stop_worker(worker)
            cleanup_redis(run_id)
            drop_database()
        if problems:
            raise SystemExit("; ".join(problems))


if __name__ == "__main__":
    if sys.argv[1:] == ["--worker"]:
        worker_main()
    else:
        main()
