"""Concurrency of the assignment engine: several OS processes assign the same tasks and workers
at once on PostgreSQL (and accept, reject and complete to create churn), then the database
must show no capacity overrun, no double assignment and no offer to an ineligible worker.

This file is also the entry point of those processes:
`python tests/routing/test_concurrency.py <index> <plan.json>` (see `_child_main`), so it
imports nothing from Django at module level.
"""

import json
import os
import random
import subprocess
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path
from unittest import mock

import pytest

ROOT = Path(__file__).resolve().parents[2]

PROCESSES = 4
CHURN_PROCESSES = 2  # the first two also accept, reject, wrap up and complete
WORKERS = 120
OFFLINE_WORKERS = 10
TASKS = 420
LANGUAGES = ("en", "es", "fr", "de")
SKILLS = ("billing", "tech", "sales")
CAPACITIES = (1, 1, 1, 2, 3)  # per channel, so that there are more tasks than capacity
CHURN_EVERY = 10  # actions between two churn steps in a churn process
READY_TIMEOUT = 60.0
RUN_TIMEOUT = 120.0


# ---------------------------------------------------------------- the world


def _build_world(seed: int) -> dict:
    from django.db import transaction

    from routing.models import Activity
    from routing.services import config, tasks, workers

    rng = random.Random(seed)
    # No after-commit attempts while building: all the assigning happens in the processes.
    patches = [
        mock.patch(f"routing.services.{module}.assignment_request")
        for module in ("config", "tasks", "workers")
    ]
    for patch in patches:
        patch.start()
    try:
        with transaction.atomic():
            workspace = config.workspace_create(friendly_name="Concurrency")
            available = Activity.objects.get(workspace=workspace, friendly_name="Available")
            queues = {
                "billing": config.queue_create(
                    workspace=workspace,
                    friendly_name="Billing",
                    target_workers="skills HAS 'billing'",
                    max_reserved_workers=2,
                ),
                "tech": config.queue_create(
                    workspace=workspace, friendly_name="Tech", target_workers="skills HAS 'tech'"
                ),
                "sales": config.queue_create(
                    workspace=workspace,
                    friendly_name="Sales",
                    target_workers="skills HAS 'sales' AND level >= 1",
                    task_order="LIFO",
                ),
                "spanish": config.queue_create(
                    workspace=workspace,
                    friendly_name="Spanish",
                    target_workers="languages HAS 'es'",
                    max_reserved_workers=3,
                ),
                "everyone": config.queue_create(workspace=workspace, friendly_name="Everyone"),
            }
            workflow = config.workflow_create(
                workspace=workspace,
                friendly_name="By skill",
                configuration={
                    "task_routing": {
                        "filters": [
                            {
                                "filter_friendly_name": "VIP",
                                "expression": "vip == true",
                                "targets": [
                                    {
                                        "queue": queues["everyone"].sid,
                                        "expression": "worker.level >= 2",
                                        "order_by": "worker.level DESC",
                                        "priority": 10,
                                    }
                                ],
                            },
                            {
                                "filter_friendly_name": "Spanish",
                                "expression": "language == 'es'",
                                "targets": [{"queue": queues["spanish"].sid}],
                            },
                            {
                                "filter_friendly_name": "Billing",
                                "expression": "skill == 'billing'",
                                "targets": [
                                    {
                                        "queue": queues["billing"].sid,
                                        "expression": "task.language IN worker.languages",
                                    }
                                ],
                            },
                            {
                                "filter_friendly_name": "Tech",
                                "expression": "skill == 'tech'",
                                "targets": [{"queue": queues["tech"].sid}],
                            },
                            {
                                "filter_friendly_name": "Sales",
                                "expression": "skill == 'sales'",
                                "targets": [{"queue": queues["sales"].sid, "priority": 5}],
                            },
                        ],
                        "default_filter": {"queue": queues["everyone"].sid},
                    }
                },
            )
            worker_ids = []
            for n in range(WORKERS + OFFLINE_WORKERS):
                offline = n >= WORKERS
                worker = workers.worker_create(
                    workspace=workspace,
                    friendly_name=f"worker-{n:03d}",
                    attributes={
                        "languages": rng.sample(LANGUAGES, rng.randint(1, 2)),
                        "skills": rng.sample(SKILLS, rng.randint(1, 2)),
                        "level": rng.randint(1, 3),
                    },
                    activity=None if offline else available,
                    capacities={"sms": rng.choice(CAPACITIES), "whatsapp": rng.choice(CAPACITIES)},
                )
                if n % 10 == 3:  # some workers take no WhatsApp at all
                    workers.worker_channel_update(worker, task_channel="whatsapp", available=False)
                worker_ids.append(worker.pk)
            task_ids = []
            for _ in range(TASKS):
                task = tasks.task_create(
                    workspace=workspace,
                    workflow=workflow,
                    attributes={
                        "language": rng.choice(LANGUAGES),
                        "skill": rng.choice((*SKILLS, "other")),
                        "vip": rng.random() < 0.1,
                    },
                    task_channel=rng.choice(("sms", "whatsapp")),
                    priority=rng.randint(0, 3),
                )
                task_ids.append(task.pk)
    finally:
        for patch in patches:
            patch.stop()
    return {"workspace_id": workspace.pk, "worker_ids": worker_ids, "task_ids": task_ids}


# ---------------------------------------------------------------- the competing processes


def _child_main(index: int, plan_path: str) -> None:
    """One competing process: wait for the start signal, then assign (and churn) at random."""
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "contactcenter.settings")
    import django

    django.setup()
    from django.db import DatabaseError, connection

    from routing.errors import RoutingError
    from routing.models import Reservation, ReservationStatus
    from routing.services import assignment, reservations, tasks, tick

    plan = json.loads(Path(plan_path).read_text())
    work_dir = Path(plan["dir"])
    rng = random.Random(1000 + index)
    churn = index < CHURN_PROCESSES
    actions = [("task", pk) for pk in plan["task_ids"]]
    actions += [("worker", pk) for pk in plan["worker_ids"]]
    rng.shuffle(actions)
    counts: Counter = Counter()
    errors: Counter = Counter()

    pending, accepted = [ReservationStatus.PENDING], [ReservationStatus.ACCEPTED]
    taken = [ReservationStatus.ACCEPTED, ReservationStatus.WRAPPING]
    churn_actions = (  # (weight, what, reservations it applies to)
        (45, "accepted", pending),
        (15, "rejected", pending),
        (10, "wrapped", accepted),
        (30, "completed", taken),
    )

    def churn_step() -> None:
        """What agents do: accept or reject an offer, wrap up, complete (frees capacity)."""
        what, statuses = rng.choices(
            [(what, statuses) for _w, what, statuses in churn_actions],
            weights=[weight for weight, _what, _s in churn_actions],
        )[0]
        candidates = list(
            Reservation.objects.filter(status__in=statuses).values_list("id", flat=True)[:100]
        )
        if not candidates:
            return
        reservation = Reservation.objects.select_related("task").get(pk=rng.choice(candidates))
        try:
            if what == "accepted":
                reservations.reservation_accept(reservation, actor="test")
            elif what == "rejected":
                reservations.reservation_reject(reservation, actor="test")
            elif what == "wrapped":
                tasks.task_wrapup(reservation.task, actor="test")
            else:
                tasks.task_complete(reservation.task, actor="test")
            counts[what] += 1
        except RoutingError:  # another process changed it first: the race we want
            counts["lost_races"] += 1

    connection.ensure_connection()
    (work_dir / f"ready-{index}").touch()
    go = work_dir / "go"
    deadline = time.monotonic() + READY_TIMEOUT
    while not go.exists():
        if time.monotonic() > deadline:
            raise SystemExit("no start signal")
        time.sleep(0.002)
    seconds: Counter = Counter()

    def timed(kind: str, call, *args) -> None:
        t0 = time.perf_counter()
        try:
            result = call(*args)
        except DatabaseError as error:  # deadlock, serialization failure...: reported
            errors[f"{kind}: {type(error).__name__}: {str(error).splitlines()[0]}"] += 1
            result = 0
        seconds[kind] += time.perf_counter() - t0
        if isinstance(result, int):
            counts[f"made_by_{kind}"] += result

    started = time.time()
    for n, (kind, pk) in enumerate(actions, start=1):
        if kind == "task":
            timed("task_assign", assignment.task_assign, pk)
        else:
            timed("worker_assign", assignment.worker_assign, pk)
        if churn and n % CHURN_EVERY == 0:
            timed("churn", churn_step)
    timed("sweep", tick.routing_sweep)
    report = {
        "index": index,
        "started": started,
        "finished": time.time(),
        "actions": len(actions),
        "counts": dict(counts),
        "seconds": {kind: round(value, 2) for kind, value in seconds.items()},
        "errors": dict(errors),
    }
    (work_dir / f"report-{index}.json").write_text(json.dumps(report))


def _run_processes(tmp_path: Path, world: dict) -> list[dict]:
    from tests.conftest import _test_database_url

    plan_path = tmp_path / "plan.json"
    plan_path.write_text(json.dumps({**world, "dir": str(tmp_path)}))
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "contactcenter.settings",
        "DATABASE_URL": _test_database_url(),
        "PYTHONUNBUFFERED": "1",
    }
    processes = [
        subprocess.Popen(
            [sys.executable, __file__, str(index), str(plan_path)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for index in range(PROCESSES)
    ]
    try:
        deadline = time.monotonic() + READY_TIMEOUT
        while not all((tmp_path / f"ready-{i}").exists() for i in range(PROCESSES)):
            for process in processes:
                if process.poll() is not None:
                    pytest.fail(f"a process exited while starting:\n{process.stdout.read()}")
            assert time.monotonic() < deadline, "the processes did not start in time"
            time.sleep(0.05)
        (tmp_path / "go").touch()
        outputs = [process.communicate(timeout=RUN_TIMEOUT)[0] for process in processes]
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
    for process, output in zip(processes, outputs, strict=True):
        assert process.returncode == 0, output
    return [json.loads((tmp_path / f"report-{i}.json").read_text()) for i in range(PROCESSES)]


# ---------------------------------------------------------------- the checks


def _check_invariants(world: dict) -> dict:
    """Assert what must hold whatever the interleaving; returns a few totals."""
    from django.db.models import Count

    from routing.expressions import compile_expression
    from routing.models import (
        HOLDING,
        TAKEN,
        QueueMembership,
        Reservation,
        ReservationStatus,
        Task,
        TaskStatus,
        WorkerChannel,
    )
    from routing.services.assignment import current_target, worker_context

    # Capacity: the counter equals the holding reservations and never exceeds the capacity.
    holding = dict(
        Reservation.objects.filter(status__in=HOLDING)
        .values("worker_channel_id")
        .annotate(n=Count("pk"))
        .values_list("worker_channel_id", "n")
    )
    wrong = [
        (wc.pk, wc.capacity, wc.assigned_tasks, holding.get(wc.pk, 0))
        for wc in WorkerChannel.objects.filter(worker__workspace_id=world["workspace_id"])
        if wc.assigned_tasks != holding.get(wc.pk, 0) or wc.assigned_tasks > wc.capacity
    ]
    assert not wrong, f"(channel, capacity, assigned_tasks, holding reservations): {wrong[:10]}"

    # One taker per task, and the task's status agrees with its reservations.
    reservations = list(
        Reservation.objects.filter(workspace_id=world["workspace_id"]).select_related(
            "worker", "worker__activity", "worker_channel", "queue"
        )
    )
    by_task: dict[int, list] = defaultdict(list)
    for reservation in reservations:
        by_task[reservation.task_id].append(reservation)
    tasks = {
        task.pk: task
        for task in Task.objects.filter(pk__in=world["task_ids"]).select_related(
            "workflow", "queue"
        )
    }
    for task_id, task in tasks.items():
        mine = by_task.get(task_id, [])
        taken = [r for r in mine if r.status in TAKEN]
        pending = [r for r in mine if r.status == ReservationStatus.PENDING]
        assert len(taken) <= 1, f"task {task.sid} was taken {len(taken)} times"
        maximum = task.queue.max_reserved_workers
        assert len(pending) <= maximum, f"task {task.sid}: {len(pending)} offers > {maximum}"
        if task.assignment_status == TaskStatus.PENDING:
            assert not pending and not taken, task.sid
        elif task.assignment_status == TaskStatus.RESERVED:
            assert pending and not taken, task.sid
        else:
            assert len(taken) == 1 and not pending, task.sid
            expected = {
                TaskStatus.ASSIGNED: ReservationStatus.ACCEPTED,
                TaskStatus.WRAPPING: ReservationStatus.WRAPPING,
                TaskStatus.COMPLETED: ReservationStatus.COMPLETED,
            }[task.assignment_status]
            assert taken[0].status == expected, task.sid

    # Every offer went to a worker who could take it: a member of the task's queue, on the
    # task's channel (switched on), passing the target expression; never an offline worker;
    # never again to a worker who refused it at the same routing step.
    members = set(QueueMembership.objects.values_list("queue_id", "worker_id"))
    for reservation in reservations:
        task = tasks[reservation.task_id]
        wc = reservation.worker_channel
        assert (reservation.queue_id, reservation.worker_id) in members, reservation.sid
        queue_matches = compile_expression(reservation.queue.target_workers)
        assert queue_matches.evaluate(reservation.worker.attributes), reservation.sid
        assert wc.worker_id == reservation.worker_id, reservation.sid
        assert wc.task_channel_id == task.task_channel_id, reservation.sid
        assert wc.available, reservation.sid
        assert reservation.worker.activity.friendly_name == "Available", reservation.sid
        target = current_target(task)
        if target is not None and target.expression is not None:
            context = {"task": task.attributes, "worker": worker_context(reservation.worker)}
            assert target.expression.evaluate(context), reservation.sid
    for mine in by_task.values():
        refused: set[tuple[int, int]] = set()
        for reservation in sorted(mine, key=lambda r: r.pk):
            key = (reservation.worker_id, reservation.routing_step)
            assert key not in refused, f"{reservation.sid}: offered again after a refusal"
            if reservation.status in (ReservationStatus.REJECTED, ReservationStatus.TIMEOUT):
                refused.add(key)

    return {
        "reservations": len(reservations),
        "tasks_taken": sum(1 for mine in by_task.values() if any(r.status in TAKEN for r in mine)),
        "statuses": Counter(r.status for r in reservations),
    }


# ---------------------------------------------------------------- the tests


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_competing_processes_never_overbook_or_double_assign(tmp_path):
    """4 processes released at the same instant each run task_assign over every task and
    worker_assign over every worker (interleaved, in their own random order), then
    routing_sweep(); two of them also accept, reject, wrap up and complete offers, whose
    after-commit attempts add more competition."""
    from django.db import connection

    from routing.models import Task, WorkerChannel

    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: SQLite serialises every writer")
    world = _build_world(seed=7)
    # Competition is real: every channel has more tasks than capacity.
    for channel in ("sms", "whatsapp"):
        capacity = sum(
            WorkerChannel.objects.filter(
                worker_id__in=world["worker_ids"][:WORKERS],
                task_channel__unique_name=channel,
                available=True,
            ).values_list("capacity", flat=True)
        )
        demand = Task.objects.filter(
            pk__in=world["task_ids"], task_channel__unique_name=channel
        ).count()
        assert demand > capacity, (channel, demand, capacity)

    reports = _run_processes(tmp_path, world)
    for report in reports:  # shown by pytest -s, or when an assertion fails
        print(json.dumps(report, sort_keys=True))

    for report in reports:
        assert not report["errors"], report
    # Every process did real work, and they overlapped in time.
    for report in reports:
        made = sum(v for k, v in report["counts"].items() if k.startswith("made_by_"))
        assert made > 0, report
    assert max(r["started"] for r in reports) < min(r["finished"] for r in reports)
    churned = Counter()
    for report in reports[:CHURN_PROCESSES]:
        churned.update(report["counts"])
    assert churned["accepted"] >= 10 and churned["completed"] >= 5, churned
    assert churned["rejected"] >= 3 and churned["wrapped"] >= 1, churned

    totals = _check_invariants(world)
    assert totals["reservations"] > TASKS // 2, totals
    assert totals["tasks_taken"] >= 10, totals


@pytest.mark.django_db
def test_reserve_refuses_a_full_worker_channel(workspace, workflow, make_worker):
    """The interleavings the processes above produce, played one after the other: a candidate
    list read before another attempt filled the worker (the list is only a hint), and the
    same worker twice for one task."""
    from django.db import transaction

    from routing.models import Reservation, Task, WorkerChannel
    from routing.services import tasks
    from routing.services.assignment import (
        _eligible,
        _lock_waiting_task,
        _reserve,
        current_target,
    )

    ana = make_worker("ana", capacity={"sms": 1})
    first, second = (
        tasks.task_create(
            workspace=workspace,
            workflow=workflow,
            attributes={"language": "es"},
            task_channel="sms",
        )
        for _ in range(2)
    )
    wc = WorkerChannel.objects.get(worker=ana, task_channel__unique_name="sms")

    with transaction.atomic():
        locked_second = _lock_waiting_task(second.pk)
        # "Process B" reads its candidates while ana still has room...
        candidates = _eligible(locked_second, current_target(locked_second), limit=10)
        assert [c.worker.pk for c in candidates] == [ana.pk]
        # ... "process A" reserves ana first ...
        locked_first = _lock_waiting_task(first.pk)
        assert _reserve(locked_first, ana.pk, wc.pk) is True
        # ... so B's claim must fail, and so must a second offer of the same task.
        assert _reserve(locked_second, ana.pk, candidates[0].worker_channel_id) is False
        assert _reserve(locked_first, ana.pk, wc.pk) is False
    wc.refresh_from_db()
    assert (wc.capacity, wc.assigned_tasks) == (1, 1)
    assert list(Reservation.objects.values_list("task_id", "worker_id", "status")) == [
        (first.pk, ana.pk, "pending")
    ]
    assert Task.objects.get(pk=second.pk).assignment_status == "pending"


@pytest.mark.django_db
def test_reserve_twice_for_one_task_releases_the_claim(workspace, workflow, make_worker):
    """With room for two, offering one task twice to the same worker hits the partial unique
    index; the claimed unit is given back."""
    from django.db import transaction

    from routing.models import Reservation, WorkerChannel
    from routing.services import tasks
    from routing.services.assignment import _lock_waiting_task, _reserve

    ana = make_worker("ana", capacity={"sms": 2})
    task = tasks.task_create(
        workspace=workspace, workflow=workflow, attributes={"language": "es"}, task_channel="sms"
    )
    wc = WorkerChannel.objects.get(worker=ana, task_channel__unique_name="sms")
    with transaction.atomic():
        locked = _lock_waiting_task(task.pk)
        assert _reserve(locked, ana.pk, wc.pk) is True
        assert _reserve(locked, ana.pk, wc.pk) is False
    wc.refresh_from_db()
    assert (wc.capacity, wc.assigned_tasks) == (2, 1)
    assert Reservation.objects.filter(task=task).count() == 1


if __name__ == "__main__":
    _child_main(int(sys.argv[1]), sys.argv[2])
