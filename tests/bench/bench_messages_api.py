"""Benchmark: messages created per second through the Twilio-compatible endpoint.

Starts the real product (`manage.py serve`: daphne, Celery worker and beat, embedded Valkey)
on a fresh data dir with the demo data, creates an API key, then POSTs
`/2010-04-01/Accounts/{sid}/Messages.json` sequentially and from 8 concurrent clients. The
Celery worker dispatches the messages to the simulator meanwhile, as in production.
Prints figures; asserts nothing.

    .venv/bin/python tests/bench/bench_messages_api.py              # SQLite + embedded Valkey
    BENCH_POSTGRES=1 .venv/bin/python tests/bench/bench_messages_api.py  # PostgreSQL + Redis
"""

import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.support.processes import ROOT, Launched, base_env, free_port

SEQUENTIAL = 400
CONCURRENT_CLIENTS = 8
PER_CLIENT = 100
PG_ADMIN = "postgres://postgres@127.0.0.1:5432/postgres"
PG_BENCH_DB = "cc_bench"


def prepare_postgres() -> str:
    for statement in (f"DROP DATABASE IF EXISTS {PG_BENCH_DB}", f"CREATE DATABASE {PG_BENCH_DB}"):
        subprocess.run(["psql", PG_ADMIN, "-q", "-c", statement], check=True)
    return f"postgres://postgres@127.0.0.1:5432/{PG_BENCH_DB}"


def api_key(env: dict[str, str]) -> tuple[str, str, str]:
    out = subprocess.run(
        [sys.executable, "manage.py", "create_api_key", "bench"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    fields = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
    return fields["Account SID"].strip(), fields["API key SID"].strip(), fields["Secret"].strip()


def post_messages(url: str, auth: tuple[str, str], count: int, latencies: list[float], tag: str):
    with httpx.Client(auth=auth, timeout=30) as client:
        for n in range(count):
            data = {
                "To": f"+1415555{n % 100:04d}"[:12],
                "From": "+14155550100",
                "Body": f"Benchmark {tag} {n}: your order has shipped",
            }
            t0 = time.perf_counter()
            response = client.post(url, data=data)
            latencies.append((time.perf_counter() - t0) * 1000)
            if response.status_code != 201:
                raise SystemExit(f"unexpected {response.status_code}: {response.text}")


def run_clients(url: str, auth: tuple[str, str], label: str) -> None:
    post_messages(url, auth, 20, [], "warmup")
    latencies: list[float] = []
    t0 = time.perf_counter()
    post_messages(url, auth, SEQUENTIAL, latencies, "seq")
    report(f"{label}, 1 client", SEQUENTIAL, time.perf_counter() - t0, latencies)
    latencies = []
    threads = [
        threading.Thread(target=post_messages, args=(url, auth, PER_CLIENT, latencies, f"c{i}"))
        for i in range(CONCURRENT_CLIENTS)
    ]
    t0 = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    total = CONCURRENT_CLIENTS * PER_CLIENT
    report(f"{label}, {CONCURRENT_CLIENTS} clients", total, time.perf_counter() - t0, latencies)


def web_only(env: dict[str, str], port: int) -> subprocess.Popen:
    """daphne alone: the create path without a worker dispatching on the same 2 cores."""
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "daphne",
            "-b",
            "127.0.0.1",
            "-p",
            str(port),
            "contactcenter.asgi:application",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz").status_code in (200, 503):
                return process
        except httpx.HTTPError:
            time.sleep(0.2)
    raise SystemExit("daphne did not come up")


def report(label: str, total: int, elapsed: float, latencies: list[float]) -> None:
    latencies = sorted(latencies)
    p50 = statistics.median(latencies)
    p99 = latencies[max(int(len(latencies) * 0.99) - 1, 0)]
    print(
        f"  {label:<34} {total / elapsed:7.0f} messages/s  "
        f"(p50 {p50:5.1f} ms, p99 {p99:6.1f} ms, {total} messages)"
    )


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="cc-bench-") as tmp:
        port = free_port()
        env = base_env(Path(tmp), port)
        env.update({"DEBUG": "false", "SECRET_KEY": "bench-" * 8, "ALLOWED_HOSTS": "127.0.0.1"})
        mode = "SQLite + embedded Valkey"
        if os.environ.get("BENCH_POSTGRES"):
            env["DATABASE_URL"] = prepare_postgres()
            env["REDIS_URL"] = "redis://127.0.0.1:6379/9"
            mode = "PostgreSQL + Redis"
        launched = Launched(env)
        try:
            if not launched.wait_for_line("contactcenter is up at", timeout=180):
                raise SystemExit(f"serve did not come up:\n{launched.output}")
            # DEBUG is off (production settings), so serve did not seed: do it here.
            subprocess.run(
                [sys.executable, "manage.py", "seed_demo", "--force"], cwd=ROOT, env=env, check=True
            )
            account_sid, key_sid, secret = api_key(env)
            url = f"http://127.0.0.1:{port}/2010-04-01/Accounts/{account_sid}/Messages.json"
            print(f"POST Messages.json ({mode}):")
            run_clients(url, (key_sid, secret), "whole product (daphne + worker)")
            launched.process.send_signal(signal.SIGINT)
            launched.process.wait(timeout=60)
        finally:
            launched.kill_tree()
        web_port = free_port()
        env.pop("CC_EMBEDDED", None)
        if "REDIS_URL" not in env:
            # The broker must answer for enqueues: reuse a Redis on the machine if any.
            env["REDIS_URL"] = "redis://127.0.0.1:6379/9"
        web = web_only(env, web_port)
        try:
            url = f"http://127.0.0.1:{web_port}/2010-04-01/Accounts/{account_sid}/Messages.json"
            run_clients(url, (key_sid, secret), "daphne alone (no worker)")
        finally:
            web.terminate()
            web.wait(timeout=30)


if __name__ == "__main__":
    main()
