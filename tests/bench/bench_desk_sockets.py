"""Benchmark: agent-desktop websockets on one daphne process (memory, webhook → frame latency).

Fresh PostgreSQL database (`cc_bench_desk` on 127.0.0.1, dropped at the end) and Redis
database 13 (flushed before and after). The world is built in this process: one routing
workspace, one queue (`1==1`) and one workflow; agents are users with the Agent role, each
linked to a routing worker and signed in by a session row written directly (the cookie a
browser would hold). The first BENCH_AGENTS workers are made with `worker_create` (Available,
capacity 1 per channel) and each gets one conversation, handed to routing with
`conversation_handoff`, its reservation accepted with `reservation_accept`; the other workers
(for the 10,000-socket run) are bulk-created Offline with their channel rows, queue membership
and `worker.created` event, as `worker_create` writes them.

1. **Idle sockets.** For each N in BENCH_SOCKETS (1,000 and 10,000), a fresh daphne (as
   `manage.py serve` starts it, pinned to CPU 0) takes N agent websockets on `/ws/desk/` from
   asyncio client processes (aiohttp, pinned to CPU 1): each waits for `welcome`, subscribes
   to its own `agent:<worker sid>` stream and waits for `subscribed`. daphne's VmRSS is read
   from /proc before (after a warm-up of a few sockets) and after; then the sockets idle for
   BENCH_IDLE seconds (longer than the 10 s that once killed idle consumers, REFERENCE.md 9)
   and every socket must still answer a ping. Then all close at once; the channel-layer
   group memberships left in Redis 5 s later are counted (each should have been discarded).
2. **Webhook → frame latency.** A fresh daphne and one Celery worker (the product's default:
   prefork, 2 children; unpinned) with BENCH_AGENTS agent sockets, each subscribed to its
   agent stream and to its conversation's stream. Twilio inbound webhooks signed with
   `X-Twilio-Signature` are POSTed to `/webhooks/p/<provider sid>` from the customers of those
   conversations (round robin over the agents), open loop from 32 threads on a fixed schedule
   at BENCH_RATE per second for BENCH_SECONDS (after an unreported warm-up of 30 at 10/s),
   each body carrying a unique id. Latency = the POST's start → the `message.created` frame's
   arrival on the socket (same clock: every process reads `time.time()` on this machine),
   split into POST → InboundEvent written (in the request) → message stored (`date_created`,
   Celery) → published (the frame's `at`) → arrived. Lost = not arrived within 10 s of its POST
   (the run waits up to BENCH_DRAIN = 60 s for stragglers); duplicates; frames whose `seq` is
   not the previous one + 1 on their stream (told apart: reordered, or seq numbers missing).
   Also printed: CPU per message of daphne, the Celery worker, the PostgreSQL backends of the
   bench database, Redis and the bench's own processes; Celery's task runtimes; frames
   channels_redis dropped over capacity (its INFO log lines).

    .venv/bin/python tests/bench/bench_desk_sockets.py
    BENCH_PHASES=latency BENCH_RATE=10,100 .venv/bin/python tests/bench/bench_desk_sockets.py

Other knobs: BENCH_SOCKETS=1000,10000, BENCH_PHASES=idle,latency, BENCH_RATE=100 (a list:
one round per rate), BENCH_SECONDS=30, BENCH_AGENTS=1000, BENCH_IDLE=15, BENCH_CLIENT_PROCS
(default: one per 2,500 sockets), BENCH_WS_PATH=/ws/desk/ (`/ws/ping/` checks the harness
alone), BENCH_PIN=0 (no CPU pinning), BENCH_KEEP_LOGS=<folder> (keep daphne's and Celery's
logs), BENCH_PYSPY=<path to py-spy> with BENCH_PYSPY_DIR (sample daphne and the worker). One
run at a time (a lock file in /tmp): a second run waits for the first.

Prints figures; fails (exit 1) only on correctness: a frame that never arrived, a duplicate, a
seq gap or reorder, a webhook refused, a socket closed or not answering, memberships left
behind. Frames later than 10 s are counted and printed as lost, without failing the run.
"""

import contextlib
import json
import logging
import math
import os
import resource
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

PG_ADMIN = "postgres://postgres@127.0.0.1:5432/postgres"
DB = "cc_bench_desk"
REDIS_URL = "redis://127.0.0.1:6379/13"
AUTH_TOKEN = "bench-desk-auth-token"
SENDER = "+14155550100"
PASSWORD = "bench-desk-password"  # one hash for every bench user: hashing 10,000 takes hours
LOST_AFTER = 10.0  # seconds after its POST a frame counts as lost
WARMUP_RATE, WARMUP_SECONDS = 10, 3


def env_int(name: str, default: int) -> int:
    return int(os.environ.get(name) or default)


def env_float(name: str, default: float) -> float:
    return float(os.environ.get(name) or default)


SOCKETS = [int(n) for n in (os.environ.get("BENCH_SOCKETS") or "1000,10000").split(",") if n]
PHASES = set((os.environ.get("BENCH_PHASES") or "idle,latency").split(","))
RATES = [float(r) for r in (os.environ.get("BENCH_RATE") or "100").split(",") if r]
SECONDS = env_float("BENCH_SECONDS", 30)
AGENTS = env_int("BENCH_AGENTS", 1000)
IDLE = env_float("BENCH_IDLE", 15)
DRAIN = env_float("BENCH_DRAIN", 60)
WS_PATH = os.environ.get("BENCH_WS_PATH") or "/ws/desk/"
PIN = os.environ.get("BENCH_PIN", "1") != "0"
SENDER_THREADS = env_int("BENCH_SENDER_THREADS", 32)  # open loop: a provider does not wait
PYSPY = os.environ.get("BENCH_PYSPY", "")
PYSPY_DIR = os.environ.get("BENCH_PYSPY_DIR", "/tmp")
HANDSHAKES_IN_FLIGHT = env_int("BENCH_HANDSHAKES", 48)  # daphne's listen backlog is 50
SETUP_THREADS = 4


def percentile(ordered: list[float], p: float) -> float:
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, max(0, math.ceil(len(ordered) * p / 100) - 1))]


def spread(values: list[float]) -> str:
    ordered = sorted(values)
    if not ordered:
        return "n/a"
    return (
        f"p50 {percentile(ordered, 50):.1f} / p90 {percentile(ordered, 90):.1f} / "
        f"p99 {percentile(ordered, 99):.1f} / max {ordered[-1]:.1f} ms"
    )


# ================================================================ the client processes
# No Django here: a client process only speaks websocket (aiohttp, installed with twilio).


class Socket:
    def __init__(self, agent: dict, client: "Client"):
        self.index = agent["id"]  # the agent's index in the world, across client processes
        self.cookie = agent["cookie"]
        self.streams = agent["streams"]
        self.client = client
        self.ws = None
        self.welcome = None
        self.subscribed: dict[str, dict] = {}
        self.waiting: dict[str, object] = {}  # "welcome" / stream / "pong:<id>" → future
        self.last_seq: dict[str, int] = {}
        self.seqs: dict[str, list[int]] = {}  # every seq received, per stream
        self.epoch: dict[str, str] = {}
        self.closing = False

    def expect(self, key: str):
        import asyncio

        future = asyncio.get_running_loop().create_future()
        self.waiting[key] = future
        return future

    def resolve(self, key: str, value) -> None:
        future = self.waiting.pop(key, None)
        if future is not None and not future.done():
            future.set_result(value)

    async def open(self, session, semaphore) -> None:
        import asyncio

        import aiohttp

        client = self.client
        async with semaphore:
            t0 = time.perf_counter()
            try:
                self.ws = await session.ws_connect(
                    client.url,
                    headers={"Origin": client.origin, "Cookie": f"sessionid={self.cookie}"},
                    autoping=True,
                    max_msg_size=0,
                    timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=10),
                )
            except aiohttp.WSServerHandshakeError as error:
                client.failures[f"handshake {error.status}"] += 1
                return
            except Exception as error:  # refused, reset, timeout: count them, go on
                client.failures[type(error).__name__] += 1
                return
            client.connect_ms.append((time.perf_counter() - t0) * 1000)
            welcome = self.expect("welcome") if client.desk else None
            asyncio.get_running_loop().create_task(self.read())
            try:
                if welcome is not None:
                    self.welcome = await asyncio.wait_for(welcome, 30)
                    if self.welcome.get("type") != "welcome":
                        client.failures[f"first frame {self.welcome.get('type')}"] += 1
                        return
                for stream in self.streams if client.desk else ():
                    answer = self.expect(stream)
                    await self.ws.send_str(json.dumps({"type": "subscribe", "stream": stream}))
                    frame = await asyncio.wait_for(answer, 30)
                    if frame.get("type") != "subscribed":
                        client.failures[f"subscribe {frame.get('code')}"] += 1
                        return
                    self.subscribed[stream] = frame
                    self.last_seq[stream] = int(frame["seq"])
                    self.epoch[stream] = frame["epoch"]
            except TimeoutError:
                client.failures["no welcome/subscribed within 30 s"] += 1
                return
            client.ready_ms.append((time.perf_counter() - t0) * 1000)
            client.open_count += 1

    async def read(self) -> None:
        import aiohttp

        client = self.client
        ws = self.ws
        async for message in ws:
            if message.type != aiohttp.WSMsgType.TEXT:
                continue
            arrived = time.time()
            frame = json.loads(message.data)
            kind = frame.get("type")
            if kind == "event":
                client.on_event(self, frame, arrived)
            elif kind == "welcome":
                self.resolve("welcome", frame)
            elif kind in ("subscribed", "unsubscribed"):
                self.resolve(frame.get("stream"), frame)
            elif kind == "pong":
                self.resolve(f"pong:{frame.get('id')}", frame)
            elif kind == "error":
                client.frames[f"error {frame.get('code')}"] += 1
                if frame.get("stream") in self.waiting:
                    self.resolve(frame["stream"], frame)
                elif "welcome" in self.waiting:
                    self.resolve("welcome", frame)
            else:
                client.frames[kind] += 1
                if "welcome" in self.waiting:
                    self.resolve("welcome", frame)
        if not self.closing:
            client.closed[str(ws.close_code)] += 1
            for key in list(self.waiting):
                self.resolve(key, {"type": "closed", "code": ws.close_code})


class Client:
    def __init__(self, spec: dict):
        self.url = spec["url"]
        self.origin = spec["origin"]
        self.desk = spec["desk"]
        self.agents = spec["agents"]
        self.concurrency = spec["concurrency"]
        self.failures: Counter[str] = Counter()
        self.frames: Counter[str] = Counter()
        self.closed: Counter[str] = Counter()
        self.connect_ms: list[float] = []
        self.ready_ms: list[float] = []
        self.open_count = 0
        # message.created frames: [socket, stream, seq, body, arrived, at, date_created]
        self.records: list[list] = []
        self.events: Counter[str] = Counter()
        self.out_of_order: list[list] = []
        self.epoch_changes = 0
        self.sockets: list[Socket] = []

    def on_event(self, sock: Socket, frame: dict, arrived: float) -> None:
        stream = frame.get("stream")
        event = frame.get("event")
        self.events[event] += 1
        seq = int(frame.get("seq", -1))
        if stream in sock.last_seq:
            if frame.get("epoch") != sock.epoch.get(stream):
                self.epoch_changes += 1
                sock.epoch[stream] = frame.get("epoch")
            elif seq != sock.last_seq[stream] + 1:
                self.out_of_order.append([sock.index, stream, sock.last_seq[stream], seq])
            sock.last_seq[stream] = seq
            sock.seqs.setdefault(stream, []).append(seq)
        else:
            self.frames["event on a stream not subscribed"] += 1
        if event == "message.created":
            message = (frame.get("data") or {}).get("message") or {}
            self.records.append(
                [
                    sock.index,
                    stream,
                    seq,
                    message.get("body"),
                    arrived,
                    frame.get("at"),
                    message.get("date_created"),
                ]
            )

    def anomalies(self) -> list[dict]:
        """Streams whose frames were not subscribed seq + 1, + 2, ...: which arrived."""
        found = []
        for sock in self.sockets:
            for stream, seqs in sock.seqs.items():
                start = int(sock.subscribed[stream]["seq"]) if stream in sock.subscribed else 0
                if seqs != list(range(start + 1, start + 1 + len(seqs))):
                    found.append(
                        {"socket": sock.index, "stream": stream, "from": start, "seqs": seqs}
                    )
        return found[:500]

    def summary(self) -> dict:
        return {
            "open": self.open_count,
            "failures": dict(self.failures),
            "frames": dict(self.frames),
            "closed": dict(self.closed),
            "connect_ms": self.connect_ms,
            "ready_ms": self.ready_ms,
            "events": dict(self.events),
            "messages": len(self.records),
            "out_of_order": len(self.out_of_order),
        }

    async def ping_all(self, timeout: float = 30) -> dict:
        import asyncio

        live = [s for s in self.sockets if s.ws is not None and not s.ws.closed]
        token = uuid.uuid4().hex[:8]
        futures = []
        for sock in live:
            futures.append(sock.expect(f"pong:{token}"))
            await sock.ws.send_str(json.dumps({"type": "ping", "id": token}))
        done, _pending = await asyncio.wait(futures, timeout=timeout) if futures else ((), ())
        pongs = sum(1 for f in done if f.result().get("type") == "pong")
        return {"pinged": len(live), "pongs": pongs, "dead": len(self.sockets) - len(live)}

    async def run(self, out_path: str) -> None:
        import asyncio

        import aiohttp

        loop = asyncio.get_running_loop()
        connector = aiohttp.TCPConnector(limit=0)
        timeout = aiohttp.ClientTimeout(total=None, connect=60, sock_connect=60)
        async with aiohttp.ClientSession(
            connector=connector, cookie_jar=aiohttp.DummyCookieJar(), timeout=timeout
        ) as session:
            semaphore = asyncio.Semaphore(self.concurrency)
            self.sockets = [Socket(agent, self) for agent in self.agents]
            t0 = time.perf_counter()
            await asyncio.gather(*(sock.open(session, semaphore) for sock in self.sockets))
            elapsed = time.perf_counter() - t0
            self.say("ready", {**self.summary(), "seconds": elapsed})
            while True:
                line = (await loop.run_in_executor(None, sys.stdin.readline)).strip()
                if line == "ping":
                    self.say("ping", await self.ping_all())
                elif line == "stats":
                    self.say("stats", self.summary())
                elif line in ("close", ""):
                    for sock in self.sockets:
                        sock.closing = True
                    await asyncio.gather(
                        *(s.ws.close() for s in self.sockets if s.ws is not None),
                        return_exceptions=True,
                    )
                    Path(out_path).write_text(
                        json.dumps(
                            {
                                **self.summary(),
                                "records": self.records,
                                "out_of_order_frames": self.out_of_order[:50],
                                "anomalies": self.anomalies(),
                                "epoch_changes": self.epoch_changes,
                            }
                        )
                    )
                    self.say("closed", {})
                    return

    @staticmethod
    def say(what: str, data: dict) -> None:
        sys.stdout.write(f"{what} {json.dumps(data)}\n")
        sys.stdout.flush()


def client_main(spec_path: str, out_path: str) -> None:
    import asyncio

    raise_nofile()
    spec = json.loads(Path(spec_path).read_text())
    asyncio.run(Client(spec).run(out_path))


def raise_nofile() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        hard = 1_048_576
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


class Clients:
    """Client processes (this file with --client), driven line by line over stdin/stdout."""

    def __init__(self, tmp: Path, url: str, origin: str, agents: list[dict], processes: int):
        self.processes: list[subprocess.Popen] = []
        self.outputs: list[Path] = []
        self.lines: list[list[str]] = []
        processes = max(1, min(processes, len(agents)))
        per_process = math.ceil(len(agents) / processes)
        for k in range(processes):
            part = agents[k * per_process : (k + 1) * per_process]
            spec = tmp / f"client-{k}-{uuid.uuid4().hex[:6]}.json"
            spec.write_text(
                json.dumps(
                    {
                        "url": url,
                        "origin": origin,
                        "desk": WS_PATH.rstrip("/").endswith("desk"),
                        "agents": part,
                        "concurrency": max(1, HANDSHAKES_IN_FLIGHT // processes),
                    }
                )
            )
            out = spec.with_suffix(".out.json")
            command = [sys.executable, __file__, "--client", str(spec), str(out)]
            if PIN:
                command = ["taskset", "-c", "1", *command]
            process = subprocess.Popen(
                command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT
            )
            self.processes.append(process)
            self.outputs.append(out)
            self.lines.append([])
            threading.Thread(target=self._read, args=(k,), daemon=True).start()

    def _read(self, k: int) -> None:
        for line in self.processes[k].stdout:
            self.lines[k].append(line.rstrip("\n"))

    def _answer(self, k: int, what: str, timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for i, line in enumerate(self.lines[k]):
                if line.startswith(what + " "):
                    del self.lines[k][i]
                    return json.loads(line[len(what) + 1 :])
            if self.processes[k].poll() is not None and not self.lines[k]:
                raise SystemExit(f"client process {k} died (exit {self.processes[k].returncode})")
            time.sleep(0.05)
        raise SystemExit(f"client process {k} gave no '{what}' within {timeout:.0f} s")

    def wait(self, what: str, timeout: float = 600) -> list[dict]:
        return [self._answer(k, what, timeout) for k in range(len(self.processes))]

    def command(self, what: str, timeout: float = 120, answer: str = "") -> list[dict]:
        for process in self.processes:
            process.stdin.write(what + "\n")
            process.stdin.flush()
        return self.wait(answer or what, timeout)

    def close(self) -> list[dict]:
        self.command("close", timeout=120, answer="closed")
        results = [json.loads(out.read_text()) for out in self.outputs]
        for process in self.processes:
            process.wait(timeout=30)
        return results

    def kill(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.kill()
                process.wait()


def merge(parts: list[dict]) -> dict:
    total: dict = {"open": 0, "failures": Counter(), "frames": Counter(), "closed": Counter()}
    total["connect_ms"], total["ready_ms"] = [], []
    for part in parts:
        total["open"] += part["open"]
        for key in ("failures", "frames", "closed"):
            total[key].update(part[key])
        total["connect_ms"] += part["connect_ms"]
        total["ready_ms"] += part["ready_ms"]
    total["seconds"] = max(part.get("seconds", 0) for part in parts)
    return total


# ================================================================ the server processes


class Proc:
    """/proc/<pid> readings of one process."""

    def __init__(self, pid: int):
        self.pid = pid

    def status_kib(self, field: str) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
        raise LookupError(field)

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def fds(self) -> int:
        return len(os.listdir(f"/proc/{self.pid}/fd"))


def start_daphne(port: int, log_path: Path) -> subprocess.Popen:
    """daphne as `manage.py serve` starts it (its default access log included)."""
    import httpx

    command = [sys.executable, "-m", "daphne", "--bind", "127.0.0.1", "--port", str(port)]
    command += ["--proxy-headers", "contactcenter.asgi:application"]
    if PIN:
        command = ["taskset", "-c", "0", *command]
    log = log_path.open("w")
    process = subprocess.Popen(
        command, cwd=ROOT, env=dict(os.environ), stdout=log, stderr=subprocess.STDOUT
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"daphne exited:\n{log_path.read_text()[-3000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/bench/hello").status_code == 200:
                return process
        except httpx.HTTPError:
            time.sleep(0.2)
    raise SystemExit("daphne did not come up")


def stop(process: subprocess.Popen | None, timeout: float = 20) -> None:
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def log_problems(log_path: Path) -> list[str]:
    """Lines of a server log that say something went wrong (tracebacks, errors)."""
    words = ("Traceback", "ERROR", "Error", "Exception", "CRITICAL", "WARNING")
    lines = log_path.read_text(errors="replace").splitlines() if log_path.exists() else []
    return [line for line in lines if any(word in line for word in words)]


def print_log_problems(name: str, log_path: Path) -> None:
    problems = log_problems(log_path)
    if not problems:
        print(f"    {name} log: no error, warning or traceback")
        return
    counts = Counter(line.split(" ", 3)[-1][:160] for line in problems)
    print(f"    {name} log: {len(problems)} error/warning lines; most frequent:")
    for text, count in counts.most_common(6):
        print(f"      {count:6d} x {text}")


def print_task_runtimes(log_path: Path) -> None:
    """Celery's own "Task … succeeded in 0.123s" lines, per task; for the inbound task, how
    long two runs were processing at the same time (both children on the same events)."""
    from datetime import datetime

    runtimes: dict[str, list[float]] = {}
    spans: list[tuple[float, float]] = []
    for line in log_path.read_text(errors="replace").splitlines():
        if " succeeded in " in line and "Task " in line:
            name = line.split("Task ", 1)[1].split("[", 1)[0]
            seconds = float(line.split(" succeeded in ", 1)[1].split("s", 1)[0])
            runtimes.setdefault(name, []).append(seconds * 1000)
            if name.endswith("inbound_pending_process"):
                end = datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f").timestamp()
                spans.append((end - seconds, end))
    for name, values in sorted(runtimes.items()):
        print(f"    Celery {name}: {len(values)} runs, {spread(values)}")
    edges = sorted([(start, 1) for start, _ in spans] + [(end, -1) for _, end in spans])
    active, last, busy, both = 0, 0.0, 0.0, 0.0
    for when, step in edges:
        if active >= 1:
            busy += when - last
        if active >= 2:
            both += when - last
        active, last = active + step, when
    if busy:
        print(
            f"    inbound_pending_process running {busy:.1f} s in all, two runs at once "
            f"{both:.1f} s of it"
        )


def keep_logs(*paths: Path) -> None:
    """Copy the servers' logs to BENCH_KEEP_LOGS (a folder), when set."""
    folder = os.environ.get("BENCH_KEEP_LOGS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        for path in paths:
            if path.exists():
                (Path(folder) / path.name).write_bytes(path.read_bytes())


def start_worker(log_path: Path) -> subprocess.Popen:
    """One Celery worker as `manage.py serve` starts it (prefork, 2 children), on both cores."""
    command = [sys.executable, "-m", "celery", "-A", "contactcenter", "--quiet", "worker"]
    command += ["--loglevel", "INFO", "--concurrency", "2"]
    command += ["--hostname", f"bench-desk-{os.getpid()}@%h", "--without-gossip"]
    command += ["--without-mingle"]
    if PIN:
        command = ["taskset", "-c", "0,1", *command]
    log = log_path.open("w")
    return subprocess.Popen(
        command, cwd=ROOT, env=dict(os.environ), stdout=log, stderr=subprocess.STDOUT
    )


def wait_worker_ready(log_path: Path, worker: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if worker.poll() is not None:
            raise SystemExit(f"the Celery worker exited:\n{log_path.read_text()[-3000:]}")
        if "ready." in log_path.read_text(errors="replace"):
            return
        time.sleep(0.2)
    raise SystemExit("the Celery worker did not become ready")


# ================================================================ the world (Django)


def configure(tmp: str) -> None:
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "tests.bench.bench_settings",
            "DATA_DIR": str(Path(tmp) / "data"),
            "DEBUG": "false",
            "SECRET_KEY": "bench-desk-" * 5,
            "ALLOWED_HOSTS": "127.0.0.1",
            "REDIS_URL": REDIS_URL,
            "PYTHONPATH": str(ROOT),
        }
    )
    import psycopg

    with psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=3) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {DB}")
    os.environ["DATABASE_URL"] = PG_ADMIN.rsplit("/", 1)[0] + f"/{DB}"
    flush_redis()


def group_members() -> int:
    """Channel-layer group memberships in Redis (the desk's groups: `cc:asgi:group:desk.*`)."""
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    return sum(client.zcard(key) for key in client.scan_iter(match="cc:asgi:group:*", count=1000))


def flush_redis() -> None:
    import redis

    redis.Redis.from_url(REDIS_URL).flushdb()


def django_setup() -> None:
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # no line per webhook POST


def in_threads(function, items: list, threads: int = SETUP_THREADS) -> list:
    """`function` over `items` from a few threads (the services are safe in parallel), in
    order; each thread gives its database connection back at the end."""
    from concurrent.futures import ThreadPoolExecutor

    from django.db import connection

    def part(k: int) -> list:
        try:
            return [(n, function(items[n])) for n in range(k, len(items), threads)]
        finally:
            connection.close()

    with ThreadPoolExecutor(threads) as pool:
        done = dict(pair for result in pool.map(part, range(threads)) for pair in result)
    return [done[n] for n in range(len(items))]


def customer_number(n: int) -> str:
    return f"+1415555{2000 + n:04d}"  # 2000-9999: never the sender's +14155550100


def world(total: int, agents: int) -> dict:
    """Users, sessions, workers; conversations handed off and accepted for the first
    `agents`. Returns what the clients and the webhook sender need."""
    from django.contrib.auth import (
        BACKEND_SESSION_KEY,
        HASH_SESSION_KEY,
        SESSION_KEY,
        get_user_model,
    )
    from django.contrib.auth.hashers import make_password
    from django.contrib.sessions.backends.db import SessionStore
    from django.contrib.sessions.models import Session
    from django.db import transaction
    from django.utils import timezone

    from contactcenter.accounts.roles import Role
    from contactcenter.accounts.services import role_group_ensure
    from messaging.models import ProviderAccount, Sender
    from messaging.services.accounts import account_get_or_create_default
    from messaging.services.providers import provider_credentials_set
    from routing.models import (
        Activity,
        Event,
        QueueMembership,
        TaskChannel,
        Worker,
        WorkerChannel,
    )
    from routing.services.config import queue_create, workflow_create, workspace_create
    from routing.services.workers import worker_create, worker_data

    t0 = time.perf_counter()
    user_model = get_user_model()
    password = make_password(PASSWORD)
    group = role_group_ensure(Role.AGENT)
    names = [f"bench-agent-{i:05d}" for i in range(total)]
    user_model.objects.bulk_create(
        [
            user_model(username=name, password=password, first_name="Agent", last_name=str(i))
            for i, name in enumerate(names)
        ],
        batch_size=2000,
    )
    users = {u.username: u for u in user_model.objects.filter(username__in=names)}
    membership = user_model.groups.through
    membership.objects.bulk_create(
        [membership(user_id=users[name].pk, group_id=group.pk) for name in names],
        batch_size=5000,
    )
    # Signed in: what django.contrib.auth.login() stores, written in bulk.
    store = SessionStore()
    expire = timezone.now() + timezone.timedelta(days=1)
    cookies = {}
    sessions = []
    for name in names:
        user = users[name]
        key = store._get_new_session_key()
        data = {
            SESSION_KEY: str(user.pk),
            BACKEND_SESSION_KEY: "django.contrib.auth.backends.ModelBackend",
            HASH_SESSION_KEY: user.get_session_auth_hash(),
        }
        sessions.append(
            Session(session_key=key, session_data=store.encode(data), expire_date=expire)
        )
        cookies[name] = key
    Session.objects.bulk_create(sessions, batch_size=2000)
    t_users = time.perf_counter() - t0

    workspace = workspace_create(friendly_name="Bench desk")
    queue = queue_create(workspace=workspace, friendly_name="Everyone", target_workers="1==1")
    workflow_create(
        workspace=workspace,
        friendly_name="Bench desk",
        configuration={"task_routing": {"default_filter": {"queue": queue.sid}}},
        task_reservation_timeout=3600,
    )
    available = Activity.objects.get(workspace=workspace, friendly_name="Available")
    offline = Activity.objects.get(workspace=workspace, friendly_name="Offline")
    t1 = time.perf_counter()
    made = in_threads(
        lambda name: worker_create(
            workspace=workspace, friendly_name=name, user=users[name], activity=available
        ),
        names[:agents],
    )
    workers = {w.friendly_name: w for w in made}
    t_service_workers = time.perf_counter() - t1
    # The rest in bulk, Offline: the rows worker_create writes (worker, one channel row per
    # task channel, queue membership, the worker.created event), without the assignment
    # attempt (an Offline worker takes nothing).
    t2 = time.perf_counter()
    now = timezone.now()
    channels = list(TaskChannel.objects.filter(workspace=workspace))
    rest = names[agents:]
    for start in range(0, len(rest), 2000):
        chunk = rest[start : start + 2000]
        with transaction.atomic():
            made = Worker.objects.bulk_create(
                [
                    Worker(
                        workspace=workspace,
                        friendly_name=name,
                        user=users[name],
                        attributes={},
                        activity=offline,
                        available=False,
                        activity_changed_at=now,
                        idle_since=now,
                    )
                    for name in chunk
                ]
            )
            WorkerChannel.objects.bulk_create(
                [
                    WorkerChannel(worker=w, task_channel=c, capacity=1)
                    for w in made
                    for c in channels
                ]
            )
            QueueMembership.objects.bulk_create(
                [QueueMembership(queue=queue, worker=w) for w in made]
            )
            Event.objects.bulk_create(
                [
                    Event(
                        workspace=workspace,
                        event_type="worker.created",
                        resource_type="worker",
                        resource_sid=w.sid,
                        description=f"Worker {w.friendly_name} created",
                        data=worker_data(w),
                        actor="bench",
                    )
                    for w in made
                ]
            )
            workers.update({w.friendly_name: w for w in made})
    t_bulk_workers = time.perf_counter() - t2

    account = account_get_or_create_default()
    provider = ProviderAccount.objects.create(account=account, name="bench-desk", kind="twilio")
    provider_credentials_set(provider, {"account_sid": "AC" + "1" * 32, "auth_token": AUTH_TOKEN})
    sender = Sender(account=account, provider=provider, kind="long_code", address=SENDER)
    sender.full_clean()
    sender.save()
    held, t_handoff, t_accept = conversations(sender, agents)
    by_worker = {worker_sid: conversation_sid for worker_sid, conversation_sid, _ in held}
    customer_of = {conversation_sid: customer for _, conversation_sid, customer in held}
    agent_list = []
    for name in names:
        worker = workers[name]
        conversation_sid = by_worker.get(worker.sid)
        agent_list.append(
            {
                "name": name,
                "cookie": cookies[name],
                "worker_sid": worker.sid,
                "conversation_sid": conversation_sid,
                "customer": customer_of.get(conversation_sid),
            }
        )
    print(
        f"  world: {total} users with sessions in {t_users:.1f} s; {agents} workers with "
        f"worker_create in {t_service_workers:.1f} s, {total - agents} in bulk in "
        f"{t_bulk_workers:.1f} s; {len(held)} conversations handed off in {t_handoff:.1f} s "
        f"and accepted in {t_accept:.1f} s"
    )
    return {"provider_sid": provider.sid, "agents": agent_list}


def conversations(sender, count: int) -> tuple[list[tuple[str, str, str]], float, float]:
    """One open conversation per customer, handed off to routing (each task reserved by its
    after-commit attempt for an Available worker of capacity 1), then accepted."""
    from contactcenter.desk.services import HandoffRequest, conversation_handoff
    from messaging.addresses import parse_address
    from messaging.services.messages import contact_get_or_create, conversation_get_or_open
    from routing.models import Reservation, ReservationStatus
    from routing.services.reservations import reservation_accept

    workflow_sid = (
        __import__("routing.models", fromlist=["Workflow"])
        .Workflow.objects.get(friendly_name="Bench desk")
        .sid
    )

    def hand_off(n: int) -> tuple[int, str, str]:
        address = parse_address(customer_number(n))
        contact = contact_get_or_create(
            account=sender.account, address=address, name=f"Customer {n}"
        )
        conversation = conversation_get_or_open(
            contact=contact, business_address=sender.address, service=sender.service
        )
        handoff = conversation_handoff(
            conversation=conversation,
            request=HandoffRequest(workflow=workflow_sid, task_channel="sms"),
        )
        return handoff.task_id, conversation.sid, address.value

    t0 = time.perf_counter()
    task_to_conversation = {task: (sid, c) for task, sid, c in in_threads(hand_off, range(count))}
    t_handoff = time.perf_counter() - t0
    t1 = time.perf_counter()
    pending = list(
        Reservation.objects.filter(status=ReservationStatus.PENDING).select_related("worker")
    )
    in_threads(lambda reservation: reservation_accept(reservation, actor="bench"), pending)
    held = []
    for reservation in pending:
        conversation_sid, customer = task_to_conversation[reservation.task_id]
        held.append((reservation.worker.sid, conversation_sid, customer))
    t_accept = time.perf_counter() - t1
    if len(held) != count:
        raise SystemExit(f"only {len(held)} of {count} hand-offs were reserved and accepted")
    return held, t_handoff, t_accept


def drop_database() -> None:
    from django.db import connections

    for connection in connections.all():
        if hasattr(connection, "close_pool"):
            connection.close_pool()
        connection.close()
    import psycopg

    with psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=3) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")


# ================================================================ phase 1: idle sockets


def socket_specs(agents: list[dict], *, conversation: bool) -> list[dict]:
    specs = []
    for i, agent in enumerate(agents):
        streams = [f"agent:{agent['worker_sid']}"]
        if conversation:
            streams.append(f"conversation:{agent['conversation_sid']}")
        specs.append({"id": i, "cookie": agent["cookie"], "streams": streams})
    return specs


def connect(tmp: Path, port: int, specs: list[dict], processes: int) -> tuple[Clients, dict]:
    url = f"ws://127.0.0.1:{port}{WS_PATH}"
    clients = Clients(tmp, url, f"http://127.0.0.1:{port}", specs, processes)
    try:
        opened = merge(clients.wait("ready", timeout=900))
    except BaseException:
        clients.kill()
        raise
    return clients, opened


def idle_run(tmp: Path, world_data: dict, count: int) -> list[str]:
    problems = []
    agents = world_data["agents"][:count]
    if len(agents) < count:
        raise SystemExit(f"only {len(agents)} agents in the world for {count} sockets")
    port = free_port()
    log_path = tmp / f"daphne-idle-{count}.log"
    daphne = start_daphne(port, log_path)
    proc = Proc(daphne.pid)
    clients = None
    try:
        # Warm-up: a few sockets through the whole path (imports, pools), then gone.
        warm, _ = connect(tmp, port, socket_specs(world_data["agents"][-5:], conversation=False), 1)
        warm.close()
        time.sleep(1)
        rss_before, cpu_before = proc.status_kib("VmRSS"), proc.cpu_seconds()
        processes = env_int("BENCH_CLIENT_PROCS", max(1, math.ceil(count / 2500)))
        profile = profile_start(f"daphne-connect-{count}", daphne.pid, min(120, count / 80 + 3))
        clients, opened = connect(tmp, port, socket_specs(agents, conversation=False), processes)
        cpu_connect = proc.cpu_seconds() - cpu_before
        time.sleep(3)
        rss_after, hwm, fds = proc.status_kib("VmRSS"), proc.status_kib("VmHWM"), proc.fds()
        per_socket = (rss_after - rss_before) / max(opened["open"], 1)
        print(
            f"  {count:>6} sockets: {opened['open']} open and subscribed in "
            f"{opened['seconds']:.1f} s ({opened['open'] / opened['seconds']:.0f}/s, "
            f"{processes} client process{'es' if processes > 1 else ''}); daphne CPU "
            f"{cpu_connect:.1f} s = {cpu_connect / max(opened['open'], 1) * 1000:.2f} ms per socket"
        )
        print(f"    handshake {spread(opened['connect_ms'])}")
        print(f"    handshake + welcome + subscribed {spread(opened['ready_ms'])}")
        print(
            f"    daphne VmRSS {rss_before / 1024:.0f} MiB before → {rss_after / 1024:.0f} MiB "
            f"after (peak {hwm / 1024:.0f} MiB, {fds} fds): **{per_socket:.1f} KiB per socket**"
            f"; 10,000 would take ≈ {(rss_before + per_socket * 10000) / 1024:.0f} MiB"
        )
        if opened["failures"] or opened["closed"]:
            print(f"    failures {dict(opened['failures'])}, closed {dict(opened['closed'])}")
            problems.append(f"{count} sockets: {sum(opened['failures'].values())} failed to open")
        cpu_idle = proc.cpu_seconds()
        time.sleep(IDLE)
        cpu_idle = proc.cpu_seconds() - cpu_idle
        pinged = clients.command("ping", timeout=120)
        pongs = sum(p["pongs"] for p in pinged)
        dead = sum(p["dead"] for p in pinged)
        rss_idle = proc.status_kib("VmRSS")
        print(
            f"    after {IDLE:.0f} s idle (daphne CPU {cpu_idle / IDLE:.1%} of a core): {pongs} "
            f"of {opened['open']} answered a ping, {dead} closed; VmRSS {rss_idle / 1024:.0f} MiB"
        )
        if pongs != opened["open"]:
            silent = opened["open"] - pongs
            problems.append(f"{count} sockets: {silent} did not answer after idling")
        results = clients.close()
        clients = None
        time.sleep(5)  # the disconnect handlers' group_discard, before daphne stops
        left = group_members()
        print(f"    all closed at once; group memberships left in Redis 5 s later: {left}")
        if left:
            problems.append(f"{count} sockets: {left} group memberships left after closing")
        closed = Counter()
        frames = Counter()
        for result in results:
            closed.update(result["closed"])
            frames.update(result["frames"])
        if closed:
            print(f"    closed by the server: {dict(closed)}")
            problems.append(f"{count} sockets: the server closed {sum(closed.values())}")
        if frames:
            print(f"    other frames: {dict(frames)}")
        profile_wait(profile)
    finally:
        if clients is not None:
            clients.kill()
        stop(daphne)
    print_log_problems("daphne", log_path)
    keep_logs(log_path)
    return problems


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# ================================================================ phase 2: latency


def webhook_plan(world_data: dict, numbers: range, run_id: str) -> list[dict]:
    """Message i comes from the customer of agent i mod agents, its body carrying its id."""
    held = [a for a in world_data["agents"] if a["conversation_sid"]]
    plan = []
    for i in numbers:
        agent = held[i % len(held)]
        plan.append(
            {
                "i": i,
                "agent": i % len(held),
                "conversation_sid": agent["conversation_sid"],
                "form": {
                    "MessageSid": f"SM{run_id}{i:024x}",
                    "SmsSid": f"SM{run_id}{i:024x}",
                    "AccountSid": "AC" + "1" * 32,
                    "From": agent["customer"],
                    "To": SENDER,
                    "Body": f"bench {run_id} {i}",
                    "NumMedia": "0",
                    "NumSegments": "1",
                    "SmsStatus": "received",
                    "ApiVersion": "2010-04-01",
                    "FromCountry": "US",
                },
            }
        )
    return plan


def send_paced(url: str, plan: list[dict], rate: float) -> list[dict]:
    """POST the plan's webhooks on a fixed schedule (i / rate) from a few threads."""
    import httpx
    from twilio.request_validator import RequestValidator

    validator = RequestValidator(AUTH_TOKEN)
    for item in plan:
        item["signature"] = validator.compute_signature(url, item["form"])
    results: list[dict] = [{} for _ in plan]
    lock = threading.Lock()
    cursor = iter(range(len(plan)))
    start = time.monotonic() + 0.5

    def post_some() -> None:
        with httpx.Client(timeout=30) as client:
            while True:
                with lock:
                    i = next(cursor, None)
                if i is None:
                    return
                due = start + i / rate
                delay = due - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                item = plan[i]
                sent_wall, sent = time.time(), time.monotonic()
                try:
                    response = client.post(
                        url, data=item["form"], headers={"X-Twilio-Signature": item["signature"]}
                    )
                    status, body = response.status_code, response.text[:300]
                except httpx.HTTPError as error:
                    status, body = type(error).__name__, str(error)[:300]
                done = time.monotonic()
                results[i] = {
                    "sent": sent_wall,
                    "late_ms": (sent - due) * 1000,
                    "response_ms": (done - sent) * 1000,
                    "status": status,
                    "body": body if status != 200 else "",
                }

    threads = [threading.Thread(target=post_some) for _ in range(SENDER_THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def events_received(run_id: str) -> dict[int, float]:
    """Message number → when its webhook's InboundEvent was written (in the request)."""
    from messaging.models import InboundEvent

    found = {}
    for payload, received_at in InboundEvent.objects.values_list("payload", "received_at"):
        body = (payload or {}).get("body", "").split()
        if len(body) == 3 and body[:2] == ["bench", run_id]:
            found[int(body[2])] = received_at.timestamp()
    return found


def timestamp(iso: str | None) -> float | None:
    from datetime import datetime

    return datetime.fromisoformat(iso).timestamp() if iso else None


def cpu_budget(daphne_pid: int, worker_pid: int, clients: "Clients") -> dict[str, float]:
    """CPU seconds used so far by each part: daphne, the Celery worker (all its processes),
    the PostgreSQL backends of this bench's database, Redis (shared with other users of the
    server) and the bench itself (webhook sender and websocket clients)."""
    from tests.support.processes import descendants

    groups: dict[str, set[int]] = {
        "daphne": {daphne_pid},
        "Celery": descendants(worker_pid) | {worker_pid},
        "PostgreSQL": set(),
        "Redis (shared)": set(),
        "bench clients": {os.getpid(), *(p.pid for p in clients.processes)},
    }
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if command.startswith("postgres:") and f" {DB} " in command:
            groups["PostgreSQL"].add(int(entry.name))
        elif "redis-server" in command and ":6379" in command:
            groups["Redis (shared)"].add(int(entry.name))
    totals = {}
    for name, pids in groups.items():
        total = 0.0
        for pid in pids:
            with contextlib.suppress(OSError):
                total += Proc(pid).cpu_seconds()
        totals[name] = total
    return totals


def profile_start(name: str, pid: int, seconds: float, subprocesses: bool = False):
    """py-spy (BENCH_PYSPY=<its path>) sampling `pid` for `seconds`, collapsed stacks written
    to BENCH_PYSPY_DIR; None when not asked for."""
    if not PYSPY:
        return None
    out = Path(PYSPY_DIR) / f"{name}.txt"
    command = [PYSPY, "record", "--pid", str(pid), "--duration", str(int(seconds)), "--rate"]
    command += ["200", "--format", "raw", "--output", str(out), "--nonblocking"]
    if subprocesses:
        command.append("--subprocesses")
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def profile_wait(process) -> None:
    if process is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=120)


def latency_run(tmp: Path, world_data: dict, run_id: str) -> list[str]:
    agents = [a for a in world_data["agents"] if a["conversation_sid"]]
    port = free_port()
    daphne_log, worker_log = tmp / "daphne-latency.log", tmp / "worker.log"
    worker = start_worker(worker_log)
    daphne = None
    clients = None
    rounds = []
    try:
        wait_worker_ready(worker_log, worker)
        daphne = start_daphne(port, daphne_log)
        proc = Proc(daphne.pid)
        processes = env_int("BENCH_CLIENT_PROCS", max(1, math.ceil(len(agents) / 2500)))
        clients, opened = connect(tmp, port, socket_specs(agents, conversation=True), processes)
        print(
            f"  {opened['open']} agent sockets subscribed to their agent and conversation "
            f"streams in {opened['seconds']:.1f} s; failures {dict(opened['failures']) or 'none'}"
        )
        url = f"http://127.0.0.1:{port}/webhooks/p/{world_data['provider_sid']}"
        first = expected = 0
        # A warm-up round first (pools, caches, imports on first use), not reported.
        for rate, seconds in [(WARMUP_RATE, WARMUP_SECONDS)] + [(r, SECONDS) for r in RATES]:
            count = int(rate * seconds)
            plan = webhook_plan(world_data, range(first, first + count), run_id)
            first += count
            profiles = [
                profile_start(f"daphne-{rate:g}", daphne.pid, SECONDS),
                profile_start(f"worker-{rate:g}", worker.pid, SECONDS, subprocesses=True),
            ]
            cpu0 = proc.cpu_seconds()
            budget0 = cpu_budget(daphne.pid, worker.pid, clients)
            t0 = time.monotonic()
            sent = send_paced(url, plan, rate)
            sending = time.monotonic() - t0
            cpu_sending = proc.cpu_seconds() - cpu0
            ok = sum(1 for r in sent if r["status"] == 200)
            expected += ok
            deadline = time.monotonic() + DRAIN
            while time.monotonic() < deadline:
                stats = clients.command("stats", timeout=60)
                if sum(s["events"].get("message.created", 0) for s in stats) >= expected:
                    break
                time.sleep(0.5)
            drained = time.monotonic() - t0 - sending
            budget = cpu_budget(daphne.pid, worker.pid, clients)
            budget = {k: budget[k] - budget0.get(k, 0.0) for k in budget}
            for profile in profiles:
                profile_wait(profile)
            rounds.append((rate, plan, sent, sending, cpu_sending, ok, drained, seconds, budget))
        results = clients.close()
        clients = None
    finally:
        if clients is not None:
            clients.kill()
        stop(daphne)
        stop(worker, timeout=30)

    # ---- join the POSTs with the frames
    problems = []
    if opened["open"] != len(agents):
        problems.append(f"latency: {len(agents) - opened['open']} sockets failed to open")
    arrivals: dict[int, list] = {}
    duplicates = misrouted = foreign = 0
    out_of_order = sum(r["out_of_order"] for r in results)
    epoch_changes = sum(r["epoch_changes"] for r in results)
    closed, frames, events = Counter(), Counter(), Counter()
    plans = {item["i"]: item for _rate, plan, *_ in rounds for item in plan}
    warmup = rounds.pop(0)
    for result in results:
        closed.update(result["closed"])
        frames.update(result["frames"])
        events.update(result["events"])
        for sock, stream, _seq, body, arrived, at, created in result["records"]:
            words = (body or "").split()
            if len(words) != 3 or words[:2] != ["bench", run_id] or int(words[2]) not in plans:
                foreign += 1
                continue
            i = int(words[2])
            if i in arrivals:
                duplicates += 1
                continue
            expected = f"conversation:{plans[i]['conversation_sid']}"
            if sock != plans[i]["agent"] or stream != expected:
                misrouted += 1
            arrivals[i] = [arrived, timestamp(at), timestamp(created)]
    received = events_received(run_id)
    warm_plan, warm_sent = warmup[1], warmup[2]
    missing = sum(
        1
        for item, r in zip(warm_plan, warm_sent, strict=True)
        if r["status"] == 200 and item["i"] not in arrivals
    )
    lost_total = missing
    print(
        f"  warm-up: {len(warm_plan)} webhooks at {WARMUP_RATE:g}/s, responses "
        f"{dict(Counter(str(r['status']) for r in warm_sent))}, {missing} frames missing"
    )
    refused = Counter(
        f"{r['status']} {r['body']}"
        for _rate, _plan, sent, *_ in [warmup, *rounds]
        for r in sent
        if r["status"] != 200
    )
    for text, count in refused.most_common(3):
        print(f"    {count} x {text}")
        problems.append(f"latency: {count} webhooks answered {text[:40]}")
    for rate, plan, sent, sending, cpu_sending, ok, drained, seconds, budget in rounds:
        statuses = Counter(str(r["status"]) for r in sent)
        latencies, accepted, stored, published, delivered = [], [], [], [], []
        late = never = 0
        for item, r in zip(plan, sent, strict=True):
            if r["status"] != 200:
                continue
            if item["i"] not in arrivals:
                never += 1
                continue
            arrived, at, created = arrivals[item["i"]]
            total = (arrived - r["sent"]) * 1000
            if total > LOST_AFTER * 1000:
                late += 1
            latencies.append(total)
            if item["i"] in received:
                accepted.append((received[item["i"]] - r["sent"]) * 1000)
            if created is not None and at is not None:
                stored.append((created - r["sent"]) * 1000)
                published.append((at - created) * 1000)
                delivered.append((arrived - at) * 1000)
        lost_total += never  # late ones are a figure (printed), not a failure
        count = len(plan)
        print(
            f"  {count} webhooks scheduled at {rate:g}/s for {seconds:g} s: sent in "
            f"{sending:.1f} s ({count / sending:.1f}/s), responses {dict(statuses)}; daphne "
            f"CPU {cpu_sending:.1f} s ({cpu_sending / sending:.0%} of a core)"
        )
        parts = ", ".join(f"{k} {v / max(ok, 1) * 1000:.1f}" for k, v in budget.items())
        print(f"    CPU per message (ms, until all arrived): {parts}")
        print(f"    POST response {spread([r['response_ms'] for r in sent])}")
        print(f"    POST start behind schedule {spread([max(r['late_ms'], 0) for r in sent])}")
        print(f"    **webhook POST → message.created frame** {spread(latencies)}")
        print(f"      POST → event stored in the request    {spread(accepted)}")
        print(f"      POST → message stored (date_created)  {spread(stored)}")
        print(f"      stored → published (frame's `at`)     {spread(published)}")
        print(f"      published → arrived on the socket     {spread(delivered)}")
        print(
            f"    arrived {len(latencies)} of {ok}; lost {never + late} (never {never}, after "
            f"more than {LOST_AFTER:g} s {late}); all arrived {drained:.1f} s after the last "
            f"POST" + ("" if never == 0 else " (or gave up)")
        )
    print(
        f"  all rounds: duplicates {duplicates}; out of order {out_of_order}; epoch changes "
        f"{epoch_changes}; on the wrong socket or stream {misrouted}; foreign bodies {foreign}"
    )
    print(f"    events seen by the clients: {dict(events)}")
    anomalies = [a for r in results for a in r["anomalies"]]
    if anomalies:
        reordered = missing = 0
        for anomaly in anomalies:
            seqs, start = anomaly["seqs"], anomaly["from"]
            absent = set(range(start + 1, max(seqs) + 1)) - set(seqs)
            missing += len(absent)
            reordered += not absent
        print(
            f"    {len(anomalies)} streams with frames out of order: {reordered} only "
            f"reordered, the others missing {missing} seq numbers in all; e.g."
        )
        for anomaly in anomalies[:5]:
            print(
                f"      {anomaly['stream']}: subscribed at {anomaly['from']}, got {anomaly['seqs']}"
            )
    if frames or closed:
        print(f"    other frames {dict(frames)}, closed by the server {dict(closed)}")
    print_log_problems("daphne", daphne_log)
    print_log_problems("Celery worker", worker_log)
    print_task_runtimes(worker_log)
    dropped = sum(
        log.read_text(errors="replace").count("channels over capacity in group")
        for log in (daphne_log, worker_log)
    )
    print(f"    group_send dropped over capacity (channels_redis INFO lines): {dropped}")
    keep_logs(daphne_log, worker_log)
    if lost_total:
        problems.append(f"latency: {lost_total} frames never arrived")
    if duplicates:
        problems.append(f"latency: {duplicates} duplicate frames")
    if out_of_order:
        problems.append(f"latency: {out_of_order} frames out of order")
    if misrouted:
        problems.append(f"latency: {misrouted} frames on the wrong socket")
    if closed:
        problems.append(f"latency: the server closed {sum(closed.values())} sockets")
    return problems


# ================================================================ main


def code_version() -> str:
    """The commit measured (read-only git), "+changes" when the work tree differs from it."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
        changed = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=ROOT,
            capture_output=True,
            text=True,
        ).stdout.strip()
    except OSError:
        return "unknown"
    return (head or "unknown") + ("+changes" if changed else "")


def one_run_at_a_time():
    """The database and Redis database 13 are this bench's: a second run waits."""
    import fcntl

    lock = open(Path(tempfile.gettempdir()) / "cc-bench-desk-sockets.lock", "w")  # noqa: SIM115
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        print("another bench_desk_sockets run holds the lock; waiting for it to end")
        fcntl.flock(lock, fcntl.LOCK_EX)
    return lock


def main() -> None:
    lock = one_run_at_a_time()  # noqa: F841  (held until the process ends)
    hard = raise_nofile()
    if PIN:
        os.sched_setaffinity(0, {1})
    run_id = uuid.uuid4().hex[:8]
    problems: list[str] = []
    with tempfile.TemporaryDirectory(prefix="cc-bench-desk-") as tmp_name:
        tmp = Path(tmp_name)
        try:
            configure(tmp_name)
        except Exception as exc:  # psycopg.Error, redis.ConnectionError
            print(f"skipped: PostgreSQL or Redis not reachable ({exc})")
            return
        try:
            django_setup()
            total = max([*SOCKETS, AGENTS + 5]) if "idle" in PHASES else AGENTS + 5
            print(
                f"Agent desktop websockets on one daphne ({WS_PATH}; code {code_version()}; "
                f"PostgreSQL + Redis; "
                f"{'daphne on CPU 0, clients on CPU 1' if PIN else 'no pinning'}; "
                f"{os.cpu_count()} cores shared with PostgreSQL and Redis; RLIMIT_NOFILE {hard}; "
                f"load average {os.getloadavg()[0]:.2f}):"
            )
            world_data = world(total, AGENTS)
            if "idle" in PHASES:
                print("1. Idle agent sockets (each subscribed to its agent stream):")
                for count in SOCKETS:
                    problems += idle_run(tmp, world_data, count)
            if "latency" in PHASES and WS_PATH.rstrip("/").endswith("desk"):
                print(
                    f"2. Inbound webhook → message.created frame, {AGENTS} agents, one "
                    f"conversation each (Celery worker: prefork, 2 children):"
                )
                problems += latency_run(tmp, world_data, run_id)
        finally:
            with contextlib.suppress(Exception):
                drop_database()
            with contextlib.suppress(Exception):
                flush_redis()
    if problems:
        raise SystemExit("problems: " + "; ".join(problems))


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--client":
        client_main(sys.argv[2], sys.argv[3])
    else:
        main()
