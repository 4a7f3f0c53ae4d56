"""`manage.py serve` end to end: the real processes, on a free port, then Ctrl-C.

Runs once embedded (no DATABASE_URL, no REDIS_URL: SQLite + Valkey started by the launcher)
and, when the suite itself runs on PostgreSQL and Redis, once against those.
"""

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest
from django.conf import settings

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def descendants(pid: int) -> set[int]:
    """Every process below `pid`, from /proc (Linux)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def get_json(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


class Launched:
    def __init__(self, env: dict[str, str]):
        self.process = subprocess.Popen(
            [sys.executable, "manage.py", "serve"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_for_line(self, text: str, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(text in line for line in self.lines):
                return True
            if self.process.poll() is not None:
                return False
            time.sleep(0.2)
        return False

    def kill_tree(self):
        for pid in descendants(self.process.pid) | {self.process.pid}:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def base_env(tmp_path: Path, port: int) -> dict[str, str]:
    return {
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", str(tmp_path)),
        "DEBUG": "true",
        "DATA_DIR": str(tmp_path / "data"),
        "PORT": str(port),
        "CELERY_WORKER_CONCURRENCY": "1",
    }


def external_services_env():
    """DATABASE_URL/REDIS_URL for a fresh PostgreSQL database, when the suite has them."""
    db = settings.DATABASES["default"]
    if db["ENGINE"] != "django.db.backends.postgresql" or os.environ.get("CC_TEST_EMBEDDED_VALKEY"):
        pytest.skip("the suite is not running on PostgreSQL and Redis")
    import psycopg

    name = f"cc_launcher_{uuid.uuid4().hex[:8]}"
    admin_dsn = f"host={db['HOST'] or '127.0.0.1'} port={db['PORT'] or 5432} user={db['USER']}"
    with psycopg.connect(admin_dsn + " dbname=postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{name}"

    def drop():
        with psycopg.connect(admin_dsn + " dbname=postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    # A Redis database of its own, so the launcher's worker is not seen by other tests.
    redis_url = os.environ["REDIS_URL"].rsplit("/", 1)[0] + "/13"
    return {"DATABASE_URL": url, "REDIS_URL": redis_url}, drop


@pytest.fixture(params=["embedded", "external"])
def launcher_env(request, tmp_path):
    port = free_port()
    env = base_env(tmp_path, port)
    if request.param == "external":
        extra, cleanup = external_services_env()
        env.update(extra)
        request.addfinalizer(cleanup)
    return env, port


def test_serve_starts_everything_answers_healthz_and_stops_every_child(launcher_env):
    env, port = launcher_env
    launched = Launched(env)
    try:
        assert launched.wait_for_line("contactcenter is up at", timeout=90), launched.output
        status, body = get_json(f"http://127.0.0.1:{port}/healthz")
        assert (status, body) == (200, {"database": "ok", "redis": "ok", "celery": "ok"})
        # The banner tells a person where to go and how to sign in.
        assert f"http://127.0.0.1:{port}/" in launched.output
        assert "demo logins (password 'demo'): admin, supervisor, agent1, agent2" in (
            launched.output
        )
        # Pages are served by daphne, static files by whitenoise.
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/accounts/login/") as page:
            assert "Sign in" in page.read().decode()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/static/css/app.css") as css:
            assert css.status == 200

        children = descendants(launched.process.pid)
        names = {Path(f"/proc/{pid}/cmdline").read_text() for pid in children if alive(pid)}
        assert any("daphne" in n for n in names)
        assert any("worker" in n for n in names)
        assert any("beat" in n for n in names)
        assert any("valkey" in n for n in names) == ("REDIS_URL" not in env)

        launched.process.send_signal(signal.SIGINT)
        assert launched.process.wait(timeout=60) == 0, launched.output
        assert launched.wait_for_line("serve  | stopped", timeout=5)
        time.sleep(0.5)
        assert [pid for pid in children if alive(pid)] == []
    finally:
        launched.kill_tree()


def test_a_dying_child_stops_the_whole_product(tmp_path):
    port = free_port()
    launched = Launched(base_env(tmp_path, port))
    try:
        assert launched.wait_for_line("contactcenter is up at", timeout=90), launched.output
        children = descendants(launched.process.pid)
        daphne = next(
            pid for pid in children if "daphne" in Path(f"/proc/{pid}/cmdline").read_text()
        )
        os.kill(daphne, signal.SIGKILL)
        assert launched.process.wait(timeout=60) == 1
        assert "web exited on its own" in launched.output
        time.sleep(0.5)
        assert [pid for pid in children if alive(pid)] == []
    finally:
        launched.kill_tree()
