"""Benchmark: signed inbound webhooks accepted per second on daphne, against a trivial view.

Starts daphne alone (pinned to CPU 0; the clients run on CPU 1) on a fresh database with a
Twilio provider account and one sender, then POSTs Twilio-format inbound webhooks signed
with `X-Twilio-Signature` to `/webhooks/p/<provider sid>`: each is verified, logged raw,
stored as a message on its contact's conversation and de-duplicated by its MessageSid. The
same run POSTs to a trivial Django view on the same server (same middleware) and prints
both rates and their ratio, sequentially and from 16 concurrent clients. A last pass sends
every webhook again (provider retries): answered 200, nothing stored twice (checked).

    .venv/bin/python tests/bench/bench_inbound_webhooks.py                # PostgreSQL + Redis
    BENCH_SQLITE=1 .venv/bin/python tests/bench/bench_inbound_webhooks.py  # SQLite + Redis

Prints figures; asserts only that nothing was lost or duplicated.
"""

import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
from twilio.request_validator import RequestValidator

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.support.processes import ROOT, free_port

SEQUENTIAL = 1000
CLIENTS = 16
PER_CLIENT = 150
AUTH_TOKEN = "bench-auth-token"
SENDER = "+14155550100"
PG_ADMIN = "postgres://postgres@127.0.0.1:5432/postgres"
PG_BENCH_DB = "cc_bench_inbound"

SETUP = f"""
from messaging.models import ProviderAccount, Sender
from messaging.services.accounts import account_get_or_create_default
from messaging.services.providers import provider_credentials_set
account = account_get_or_create_default()
provider = ProviderAccount.objects.create(account=account, name="bench", kind="twilio")
provider_credentials_set(provider, {{"account_sid": "AC" + "1" * 32, "auth_token": "{AUTH_TOKEN}"}})
sender = Sender(account=account, provider=provider, kind="long_code", address="{SENDER}")
sender.full_clean()
sender.save()
print(provider.sid)
"""

COUNT = """
from messaging.models import InboundEvent
print(InboundEvent.objects.count())
"""

PROCESS = """
import time
from messaging.models import Message
from messaging.services.webhooks import inbound_pending_process
t0 = time.perf_counter()
inbound_pending_process()
elapsed = time.perf_counter() - t0
print(Message.objects.filter(direction="inbound").count(), elapsed)
"""


def manage(env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True
    )
    if result.returncode:
        raise SystemExit(f"manage.py {' '.join(args)} failed:\n{result.stderr}")
    return result.stdout.strip()


def prepare_postgres() -> str:
    for statement in (f"DROP DATABASE IF EXISTS {PG_BENCH_DB}", f"CREATE DATABASE {PG_BENCH_DB}"):
        subprocess.run(["psql", PG_ADMIN, "-q", "-c", statement], check=True)
    return f"postgres://postgres@127.0.0.1:5432/{PG_BENCH_DB}"


def start_daphne(env: dict[str, str], port: int) -> subprocess.Popen:
    command = [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port)]
    command.append("contactcenter.asgi:application")
    process = subprocess.Popen(
        ["taskset", "-c", "0", *command],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/bench/hello").status_code == 200:
                return process
        except httpx.HTTPError:
            time.sleep(0.2)
    raise SystemExit("daphne did not come up")


def inbound_form(n: int) -> dict[str, str]:
    return {
        "MessageSid": f"SM{n:032x}",
        "SmsSid": f"SM{n:032x}",
        "AccountSid": "AC" + "1" * 32,
        "From": f"+1415555{n % 10000:04d}",
        "To": SENDER,
        "Body": f"Hello, this is customer message {n}",
        "NumMedia": "0",
        "NumSegments": "1",
        "SmsStatus": "received",
        "ApiVersion": "2010-04-01",
        "FromCountry": "US",
    }


def post_webhooks(url: str, numbers: range, latencies: list[float]) -> None:
    validator = RequestValidator(AUTH_TOKEN)
    with httpx.Client(timeout=30) as client:
        for n in numbers:
            form = inbound_form(n)
            headers = {"X-Twilio-Signature": validator.compute_signature(url, form)}
            t0 = time.perf_counter()
            response = client.post(url, data=form, headers=headers)
            latencies.append((time.perf_counter() - t0) * 1000)
            if response.status_code != 200:
                raise SystemExit(f"unexpected {response.status_code}: {response.text[:300]}")


def post_trivial(url: str, numbers: range, latencies: list[float]) -> None:
    with httpx.Client(timeout=30) as client:
        for n in numbers:
            t0 = time.perf_counter()
            response = client.post(url, data=inbound_form(n))
            latencies.append((time.perf_counter() - t0) * 1000)
            if response.status_code != 200:
                raise SystemExit(f"unexpected {response.status_code}")


def timed(target, url: str, ranges: list[range]) -> tuple[float, list[float]]:
    latencies: list[float] = []
    threads = [threading.Thread(target=target, args=(url, r, latencies)) for r in ranges]
    t0 = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - t0
    return sum(len(r) for r in ranges) / elapsed, latencies


def line(label: str, rate: float, latencies: list[float]) -> str:
    ordered = sorted(latencies)
    p50 = statistics.median(ordered)
    p99 = ordered[max(int(len(ordered) * 0.99) - 1, 0)]
    return f"  {label:<44} {rate:7.0f} req/s  (p50 {p50:5.1f} ms, p99 {p99:6.1f} ms)"


def compare(base: str, webhook: str, *, start: int, clients: int, per_client: int) -> int:
    ranges = [range(start + i * per_client, start + (i + 1) * per_client) for i in range(clients)]
    trivial_rate, trivial_lat = timed(post_trivial, f"{base}/bench/hello", ranges)
    webhook_rate, webhook_lat = timed(post_webhooks, webhook, ranges)
    who = "1 client" if clients == 1 else f"{clients} concurrent clients"
    print(line(f"trivial view, {who}", trivial_rate, trivial_lat))
    print(line(f"signed inbound webhook, {who}", webhook_rate, webhook_lat))
    print(f"  ratio webhook / trivial: {webhook_rate / trivial_rate:.0%}")
    return start + clients * per_client


def main() -> None:
    os.sched_setaffinity(0, {1})
    with tempfile.TemporaryDirectory(prefix="cc-bench-inbound-") as tmp:
        env = {
            "PATH": os.environ["PATH"],
            "HOME": os.environ.get("HOME", tmp),
            "DATA_DIR": str(Path(tmp) / "data"),
            "DEBUG": "false",
            "SECRET_KEY": "bench-" * 8,
            "ALLOWED_HOSTS": "127.0.0.1",
            "DJANGO_SETTINGS_MODULE": "tests.bench.bench_settings",
            "REDIS_URL": "redis://127.0.0.1:6379/9",
            "PYTHONPATH": str(ROOT),
        }
        mode = "SQLite + Redis"
        if not os.environ.get("BENCH_SQLITE"):
            env["DATABASE_URL"] = prepare_postgres()
            mode = "PostgreSQL + Redis"
        manage(env, "migrate", "--verbosity", "0")
        provider_sid = manage(env, "shell", "-c", SETUP).splitlines()[-1]
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        webhook = f"{base}/webhooks/p/{provider_sid}"
        daphne = start_daphne(env, port)
        try:
            print(f"Inbound webhooks on daphne ({mode}; daphne on CPU 0, clients on CPU 1):")
            timed(post_trivial, f"{base}/bench/hello", [range(50)])  # warm-up
            timed(post_webhooks, webhook, [range(10_000_000, 10_000_050)])
            start = compare(base, webhook, start=0, clients=1, per_client=SEQUENTIAL)
            end = compare(base, webhook, start=start, clients=CLIENTS, per_client=PER_CLIENT)
            ranges = [range(i * (end // CLIENTS), (i + 1) * (end // CLIENTS)) for i in range(4)]
            retry_rate, retry_lat = timed(post_webhooks, webhook, ranges)
            print(line("the same webhooks again (retries), 4 clients", retry_rate, retry_lat))
        finally:
            daphne.terminate()
            daphne.wait(timeout=30)
        stored = int(manage(env, "shell", "-c", COUNT).splitlines()[-1])
        expected = end + 50
        print(f"  inbound events stored in the requests: {stored} of {expected} distinct webhooks")
        # What the Celery task does after the requests, timed in one process, one thread.
        messages, elapsed = manage(env, "shell", "-c", PROCESS).splitlines()[-1].split()
        print(
            f"  then processed into messages (the Celery side, one process): {messages} "
            f"in {float(elapsed):.1f} s = {int(messages) / float(elapsed):.0f} messages/s"
        )
        if stored != expected or int(messages) != expected:
            raise SystemExit("messages were lost or stored twice")


if __name__ == "__main__":
    main()
