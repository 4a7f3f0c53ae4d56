"""Benchmark: the routing engine on PostgreSQL (REFERENCE.md 7).

Builds 1,000 available workers (capacity 3 on sms, 3 skills each), 50 queues (one per skill,
`skills HAS 'skill-NN'`) and a workflow with one filter per skill, in a fresh database
`cc_bench`, through the services. Then:

1. Saturation: 5,000 tasks wait (created with `task_create` in one transaction with the
   after-commit attempt switched off: a backlog that built up while nobody was assigning);
   2 OS processes call `task_assign` over them (each in its own shuffled order) until every
   unit of capacity is taken. Figure: reservations per second, from the start signal to the
   last reservation.
2. Latency: after a reset (tasks, reservations and events deleted, capacity freed), one
   process creates tasks with `task_create` on a fixed schedule of 100 per second for 20 s (the
   reservation is made by the after-commit attempt, in that process, as in production; when a
   call takes longer than the interval the producer falls behind and the achieved rate is
   printed), then again at 25 per second, while another process plays the agents (accepts
   offers older than 0.3 s, completes tasks accepted 1 s earlier) and runs `routing_tick()`
   every second as Celery beat would. Figure: reservation.date_created - task.date_created,
   p50 / p90 / p99.
3. Integrity after each run, in SQL: double assignments, worker channels over capacity or whose
   counter disagrees with their reservations, tasks with more offers than their queue allows.

Prints figures; asserts nothing. Skips (exit 0) when PostgreSQL is not reachable.

    .venv/bin/python tests/bench/bench_routing.py
    BENCH_PROFILE=1 .venv/bin/python tests/bench/bench_routing.py   # + cProfile of one assigner

Environment: BENCH_PG_ADMIN_URL (default postgres://postgres@127.0.0.1:5432/postgres),
BENCH_ASSIGNERS (default 2), BENCH_TASKS (default 5000), BENCH_RATES (default "100,25": one
latency run per rate), BENCH_SECONDS (default 20).
"""

import json
import os
import random
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from unittest import mock

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

PG_ADMIN = os.environ.get("BENCH_PG_ADMIN_URL", "postgres://postgres@127.0.0.1:5432/postgres")
PG_BENCH_DB = "cc_bench"
WORKERS = 1000
QUEUES = 50
SKILLS_PER_WORKER = 3
CAPACITY = 3
ASSIGNERS = int(os.environ.get("BENCH_ASSIGNERS", "2"))
BACKLOG = int(os.environ.get("BENCH_TASKS", "5000"))
# The goal's rate, then one that this engine sustains on 2 cores (for the shape of the curve).
RATES = [float(rate) for rate in os.environ.get("BENCH_RATES", "100,25").split(",")]
SECONDS = float(os.environ.get("BENCH_SECONDS", "20"))
ACCEPT_AFTER = 0.3  # seconds an agent takes to accept an offer
COMPLETE_AFTER = 1.0  # seconds between accepting and completing
START_TIMEOUT = 60.0


# ---------------------------------------------------------------- set-up


def postgres_reachable() -> str | None:
    """None when PostgreSQL answers, else why not."""
    import psycopg

    try:
        with psycopg.connect(PG_ADMIN, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as error:
        return str(error).strip().splitlines()[0]
    return None


def prepare_postgres() -> str:
    import psycopg

    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {PG_BENCH_DB}")
        conn.execute(f"CREATE DATABASE {PG_BENCH_DB}")
        version = conn.execute("SHOW server_version").fetchone()[0]
    os.environ["BENCH_PG_VERSION"] = version
    base = PG_ADMIN.rsplit("/", 1)[0]
    return f"{base}/{PG_BENCH_DB}"


def django_setup() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "contactcenter.settings")
    import django

    django.setup()


@contextmanager
def no_inline_assignment():
    """Switch off the after-commit assignment attempts of the services (set-up only)."""
    patches = [
        mock.patch(f"routing.services.{module}.assignment_request")
        for module in ("config", "tasks", "workers")
    ]
    for patch in patches:
        patch.start()
    try:
        yield
    finally:
        for patch in patches:
            patch.stop()


def build_world() -> dict:
    from django.db import transaction

    from routing.models import Activity
    from routing.services import config, workers

    rng = random.Random(42)
    skills = [f"skill-{n:02d}" for n in range(QUEUES)]
    with no_inline_assignment(), transaction.atomic():
        workspace = config.workspace_create(friendly_name="Bench")
        available = Activity.objects.get(workspace=workspace, friendly_name="Available")
        queues = [
            config.queue_create(
                workspace=workspace, friendly_name=skill, target_workers=f"skills HAS '{skill}'"
            )
            for skill in skills
        ]
        workflow = config.workflow_create(
            workspace=workspace,
            friendly_name="By skill",
            configuration={
                "task_routing": {
                    "filters": [
                        {
                            "filter_friendly_name": skill,
                            "expression": f"skill == '{skill}'",
                            "targets": [{"queue": queue.sid}],
                        }
                        for skill, queue in zip(skills, queues, strict=True)
                    ],
                    "default_filter": {"queue": queues[0].sid},
                }
            },
        )
        for n in range(WORKERS):
            workers.worker_create(
                workspace=workspace,
                friendly_name=f"agent-{n:04d}",
                attributes={
                    "skills": rng.sample(skills, SKILLS_PER_WORKER),
                    "languages": ["en"],
                },
                activity=available,
                capacities={"sms": CAPACITY},
            )
    return {"workspace_id": workspace.pk, "workflow_id": workflow.pk, "skills": skills}


def create_backlog(world: dict, count: int) -> None:
    from django.db import transaction

    from routing.models import Workflow
    from routing.services import tasks

    rng = random.Random(7)
    workflow = Workflow.objects.select_related("workspace").get(pk=world["workflow_id"])
    with no_inline_assignment(), transaction.atomic():
        for _ in range(count):
            tasks.task_create(
                workspace=workflow.workspace,
                workflow=workflow,
                attributes={"skill": rng.choice(world["skills"]), "language": "en"},
                task_channel="sms",
                priority=rng.choice((0, 0, 0, 1, 2)),
            )


def reset_routing_state() -> None:
    """Between the runs: no tasks, no reservations, no events, every worker idle."""
    from django.db import transaction
    from django.utils import timezone

    from routing.models import Event, Reservation, Task, Worker, WorkerChannel

    with transaction.atomic():
        Reservation.objects.all().delete()
        Task.objects.all().delete()
        Event.objects.all().delete()
        WorkerChannel.objects.update(assigned_tasks=0)
        Worker.objects.update(idle_since=timezone.now())


# ---------------------------------------------------------------- integrity (SQL)

INTEGRITY_SQL = {
    "double assignments (tasks taken by more than one reservation)": """
        SELECT count(*) FROM (
            SELECT task_id FROM routing_reservation
            WHERE status IN ('accepted', 'wrapping', 'completed')
            GROUP BY task_id HAVING count(*) > 1) AS t""",
    "capacity violations (assigned_tasks > capacity)": """
        SELECT count(*) FROM routing_workerchannel WHERE assigned_tasks > capacity""",
    "counter drift (assigned_tasks != holding reservations)": """
        SELECT count(*) FROM routing_workerchannel wc LEFT JOIN (
            SELECT worker_channel_id, count(*) AS n FROM routing_reservation
            WHERE status IN ('pending', 'accepted', 'wrapping') GROUP BY worker_channel_id
        ) AS r ON r.worker_channel_id = wc.id
        WHERE wc.assigned_tasks != coalesce(r.n, 0)""",
    "tasks with more pending offers than max_reserved_workers": """
        SELECT count(*) FROM (
            SELECT r.task_id FROM routing_reservation r
            JOIN routing_task t ON t.id = r.task_id
            JOIN routing_taskqueue q ON q.id = t.queue_id
            WHERE r.status = 'pending'
            GROUP BY r.task_id, q.max_reserved_workers
            HAVING count(*) > q.max_reserved_workers) AS t""",
}


def integrity() -> dict[str, int]:
    from django.db import connection

    with connection.cursor() as cursor:
        found = {}
        for label, sql in INTEGRITY_SQL.items():
            cursor.execute(sql)
            found[label] = cursor.fetchone()[0]
    return found


# ---------------------------------------------------------------- child processes


class QueryMeter:
    """Counts the queries a process runs and the time spent waiting for them."""

    def __init__(self) -> None:
        self.count = 0
        self.seconds = 0.0

    def __call__(self, execute, sql, params, many, context):
        t0 = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.seconds += time.perf_counter() - t0
            self.count += 1


def wait_for_start(work_dir: Path, name: str) -> None:
    from django.db import connection

    connection.ensure_connection()
    (work_dir / f"ready-{name}").touch()
    deadline = time.monotonic() + START_TIMEOUT
    while not (work_dir / "go").exists():
        if time.monotonic() > deadline:
            raise SystemExit(f"{name}: no start signal")
        time.sleep(0.001)


def child_assigner(work_dir: Path, index: int) -> dict:
    """Run task_assign over the waiting tasks (own shuffled order) until capacity is full."""
    from django.db import connection
    from django.db.models import F, Sum

    from routing.models import Task, WorkerChannel
    from routing.services.assignment import task_assign

    task_ids = list(Task.objects.filter(assignment_status="pending").values_list("id", flat=True))
    random.Random(index).shuffle(task_ids)
    meter = QueryMeter()

    def full() -> bool:
        room = WorkerChannel.objects.filter(task_channel__unique_name="sms").aggregate(
            room=Sum(F("capacity") - F("assigned_tasks"))
        )
        return not room["room"]

    profile = None
    if index == 0 and os.environ.get("BENCH_PROFILE"):
        import cProfile

        profile = cProfile.Profile()
    wait_for_start(work_dir, f"assigner-{index}")
    started = time.perf_counter()
    cpu = time.process_time()
    made = attempts = 0
    with connection.execute_wrapper(meter):
        if profile:
            profile.enable()
        for _pass in range(2):  # a second pass picks up tasks skipped while locked
            for task_id in task_ids:
                attempts += 1
                made += task_assign(task_id)
                if attempts % 100 == 0 and full():
                    break
            else:
                continue
            break
        if profile:
            profile.disable()
            profile.dump_stats(str(work_dir / "assigner-0.prof"))
    return {
        "made": made,
        "attempts": attempts,
        "seconds": time.perf_counter() - started,
        "cpu_seconds": time.process_time() - cpu,
        "queries": meter.count,
        "query_seconds": meter.seconds,
    }


def child_producer(work_dir: Path, rate: float) -> dict:
    """task_create on a fixed schedule for SECONDS; the after-commit attempt reserves in this
    process. A call that overruns its slot delays the next ones (counted as `behind`)."""
    from routing.models import Workflow
    from routing.services import tasks

    world = json.loads((work_dir / "world.json").read_text())
    workflow = Workflow.objects.select_related("workspace").get(pk=world["workflow_id"])
    rng = random.Random(11)
    calls: list[float] = []
    wait_for_start(work_dir, "producer")
    started = time.perf_counter()
    cpu = time.process_time()
    behind = n = 0
    while True:
        due = started + n / rate
        if due - started >= SECONDS:
            break
        pause = due - time.perf_counter()
        if pause > 0:
            time.sleep(pause)
        else:
            behind += 1
        t0 = time.perf_counter()
        tasks.task_create(
            workspace=workflow.workspace,
            workflow=workflow,
            attributes={"skill": rng.choice(world["skills"]), "language": "en"},
            task_channel="sms",
        )
        calls.append(time.perf_counter() - t0)
        n += 1
        if time.perf_counter() - started >= SECONDS:
            break
    elapsed = time.perf_counter() - started
    (work_dir / "producer-done").touch()
    return {
        "created": n,
        "seconds": elapsed,
        "cpu_seconds": time.process_time() - cpu,
        "calls": calls,
        "behind": behind,
    }


def child_agents(work_dir: Path) -> dict:
    """Accept offers older than ACCEPT_AFTER, complete tasks accepted COMPLETE_AFTER ago, and
    run the periodic tick every second, until the producer is done and nothing is pending."""
    from datetime import timedelta

    from django.utils import timezone

    from routing.errors import RoutingError
    from routing.models import Reservation, ReservationStatus
    from routing.services import reservations, tasks
    from routing.services.tick import routing_tick

    counts = {"accepted": 0, "completed": 0, "lost": 0, "ticks": 0, "tick_made": 0}
    wait_for_start(work_dir, "agents")
    next_tick = time.monotonic() + 1.0
    quiet_since = None
    while True:
        now = timezone.now()
        offers = list(
            Reservation.objects.filter(
                status=ReservationStatus.PENDING,
                date_created__lte=now - timedelta(seconds=ACCEPT_AFTER),
            ).select_related("task")[:50]
        )
        done = list(
            Reservation.objects.filter(
                status=ReservationStatus.ACCEPTED,
                accepted_at__lte=now - timedelta(seconds=COMPLETE_AFTER),
            ).select_related("task")[:50]
        )
        for reservation in offers:
            try:
                reservations.reservation_accept(reservation, actor="bench")
                counts["accepted"] += 1
            except RoutingError:
                counts["lost"] += 1
        for reservation in done:
            try:
                tasks.task_complete(reservation.task, actor="bench")
                counts["completed"] += 1
            except RoutingError:
                counts["lost"] += 1
        if time.monotonic() >= next_tick:
            counts["ticks"] += 1
            counts["tick_made"] += routing_tick().reservations_made
            next_tick += 1.0
        if (work_dir / "producer-done").exists() and not offers and not done:
            quiet_since = quiet_since or time.monotonic()
            if time.monotonic() - quiet_since > 2 * COMPLETE_AFTER:
                return counts
        else:
            quiet_since = None
        time.sleep(0.02)


def child_main(role: str, work_dir: Path) -> None:
    django_setup()
    if role.startswith("assigner-"):
        result = child_assigner(work_dir, int(role.split("-")[1]))
    elif role == "producer":
        result = child_producer(work_dir, float(os.environ["BENCH_PRODUCER_RATE"]))
    else:
        result = child_agents(work_dir)
    (work_dir / f"result-{role}.json").write_text(json.dumps(result))


def run_children(work_dir: Path, roles: list[str]) -> tuple[float, dict[str, dict]]:
    """Start the roles as OS processes, release them at once; (start time, results)."""
    for stale in work_dir.glob("ready-*"):
        stale.unlink()
    for name in ("go", "producer-done"):
        (work_dir / name).unlink(missing_ok=True)
    processes = {
        role: subprocess.Popen([sys.executable, __file__, "--child", role, str(work_dir)], cwd=ROOT)
        for role in roles
    }
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not all((work_dir / f"ready-{role}").exists() for role in roles):
            for role, process in processes.items():
                if process.poll() is not None:
                    raise SystemExit(f"{role} exited while starting")
            if time.monotonic() > deadline:
                raise SystemExit("the processes did not start in time")
            time.sleep(0.02)
        started = time.time()
        (work_dir / "go").touch()
        for role, process in processes.items():
            if process.wait(timeout=600) != 0:
                raise SystemExit(f"{role} failed")
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.kill()
                process.wait()
    return started, {
        role: json.loads((work_dir / f"result-{role}.json").read_text()) for role in roles
    }


# ---------------------------------------------------------------- the runs


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered)) - 1))]


def print_integrity() -> int:
    bad = 0
    for label, count in integrity().items():
        print(f"     {count:>5}  {label}")
        bad += count
    return bad


def run_saturation(work_dir: Path, world: dict) -> int:
    from django.db.models import Max, Sum

    from routing.models import Reservation, WorkerChannel

    t0 = time.perf_counter()
    create_backlog(world, BACKLOG)
    capacity = WorkerChannel.objects.filter(task_channel__unique_name="sms").aggregate(
        total=Sum("capacity")
    )["total"]
    print(
        f"  1. saturation: {BACKLOG:,} tasks waiting (created in "
        f"{time.perf_counter() - t0:.1f} s), {capacity:,} units of sms capacity, "
        f"{ASSIGNERS} processes running task_assign"
    )
    roles = [f"assigner-{i}" for i in range(ASSIGNERS)]
    started, results = run_children(work_dir, roles)
    made = Reservation.objects.count()
    last = Reservation.objects.aggregate(last=Max("date_created"))["last"].timestamp()
    elapsed = last - started
    print(
        f"     {made:,} reservations in {elapsed:.2f} s = {made / elapsed:,.0f} reservations/s"
        "  (goal >= 500/s)"
    )
    for role, result in results.items():
        queries = result["queries"] / max(result["made"], 1)
        db_share = 100 * result["query_seconds"] / result["seconds"]
        print(
            f"     {role}: {result['made']:,} made in {result['attempts']:,} attempts, "
            f"{result['seconds']:.2f} s wall, {result['cpu_seconds']:.2f} s CPU, "
            f"{queries:.1f} queries/reservation, {db_share:.0f}% of wall in queries"
        )
    print("     integrity:")
    bad = print_integrity()
    profile = work_dir / "assigner-0.prof"
    if profile.exists():
        import pstats

        print("     cProfile of assigner-0 (cumulative, routing + Django ORM):")
        stats = pstats.Stats(str(profile))
        stats.sort_stats("cumulative").print_stats(r"routing/|db/models/query\.py", 25)
    return bad


def run_latency(work_dir: Path, world: dict, rate: float, number: str) -> int:
    from django.db.models import Min

    from routing.models import Reservation, Task

    reset_routing_state()
    (work_dir / "world.json").write_text(json.dumps(world))
    os.environ["BENCH_PRODUCER_RATE"] = str(rate)
    print(
        f"  {number}. latency: task_create scheduled at {rate:.0f}/s for {SECONDS:.0f} s; agents "
        f"accept after {ACCEPT_AFTER} s, complete {COMPLETE_AFTER} s later; routing_tick every 1 s"
    )
    _started, results = run_children(work_dir, ["producer", "agents"])
    producer, agents = results["producer"], results["agents"]
    first_offer = dict(
        Reservation.objects.values("task_id")
        .annotate(first=Min("date_created"))
        .values_list("task_id", "first")
    )
    latencies, unreserved = [], 0
    for task_id, created in Task.objects.values_list("id", "date_created"):
        if task_id in first_offer:
            latencies.append((first_offer[task_id] - created).total_seconds() * 1000)
        else:
            unreserved += 1
    late = sum(1 for ms in latencies if ms > 1000)
    achieved = producer["created"] / producer["seconds"]
    print(
        f"     {producer['created']:,} tasks in {producer['seconds']:.1f} s = {achieved:.1f} "
        f"tasks/s achieved ({producer['behind']:,} calls started late; producer CPU "
        f"{100 * producer['cpu_seconds'] / producer['seconds']:.0f}% of a core)"
    )
    print(
        f"     creation -> reservation: p50 {percentile(latencies, 50):.1f} ms, "
        f"p90 {percentile(latencies, 90):.1f} ms, p99 {percentile(latencies, 99):.1f} ms, "
        f"max {max(latencies):.1f} ms  (goal p99 < 50 ms at 100/s)"
    )
    calls = [seconds * 1000 for seconds in producer["calls"]]
    print(
        f"     task_create call (create + placement + commit + assignment attempt): "
        f"p50 {percentile(calls, 50):.1f} ms, p99 {percentile(calls, 99):.1f} ms"
    )
    print(
        f"     {unreserved} tasks never reserved, {late} reserved only after 1 s (by the tick); "
        f"agents: {agents['accepted']:,} accepted, {agents['completed']:,} completed, "
        f"{agents['lost']} lost races, {agents['ticks']} ticks"
    )
    print("     integrity:")
    return print_integrity()


def main() -> None:
    problem = postgres_reachable()
    if problem:
        print(f"bench_routing: skipped, PostgreSQL is not reachable at {PG_ADMIN}: {problem}")
        return
    os.environ["DATABASE_URL"] = prepare_postgres()
    os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/9")
    os.environ.setdefault("SECRET_KEY", "bench-" * 8)
    os.environ.setdefault("ALLOWED_HOSTS", "127.0.0.1")
    os.environ["DEBUG"] = "false"
    with tempfile.TemporaryDirectory(prefix="cc-bench-routing-") as tmp:
        work_dir = Path(tmp)
        os.environ.setdefault("DATA_DIR", str(work_dir / "data"))
        django_setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        t0 = time.perf_counter()
        world = build_world()
        print(
            f"Routing engine (PostgreSQL {os.environ['BENCH_PG_VERSION']}, {os.cpu_count()} "
            f"cores): {WORKERS:,} workers x {SKILLS_PER_WORKER} skills, {QUEUES} queues, "
            f"capacity {CAPACITY} on sms; built in {time.perf_counter() - t0:.1f} s"
        )
        bad = run_saturation(work_dir, world)
        for number, rate in enumerate(RATES, start=2):
            bad += run_latency(work_dir, world, rate, str(number))
        print(
            f"  {len(RATES) + 2}. double assignments + capacity violations + counter drift + "
            f"offers over max, all runs: {bad}  (must be 0)"
        )


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        child_main(sys.argv[2], Path(sys.argv[3]))
    else:
        main()
