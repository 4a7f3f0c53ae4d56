"""`manage.py serve` end to end: the real processes, on a free port, then Ctrl-C.

Runs once embedded (no DATABASE_URL, no REDIS_URL: SQLite + Valkey started by the launcher)
and, when the suite itself runs on PostgreSQL and Redis, once against those.
"""

import os
import re
import signal
import sqlite3
import urllib.request
import uuid
from pathlib import Path

import pytest
from django.conf import settings

from tests.support.processes import (
    Launched,
    alive,
    base_env,
    descendants,
    free_port,
    get_json,
    still_alive,
)

pytestmark = pytest.mark.slow


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
        assert still_alive(children) == []
        if "DATABASE_URL" not in env:
            # The embedded database really runs in WAL mode (a property of the file).
            database = Path(env["DATA_DIR"]) / "contactcenter.sqlite3"
            with sqlite3.connect(database) as conn:
                assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
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
        assert still_alive(children) == []
    finally:
        launched.kill_tree()


def test_a_second_serve_on_the_same_data_dir_refuses_and_leaves_the_first_alone(tmp_path):
    port = free_port()
    first = Launched(base_env(tmp_path, port))
    second = None
    try:
        assert first.wait_for_line("contactcenter is up at", timeout=90), first.output
        second = Launched(base_env(tmp_path, free_port()))
        assert second.process.wait(timeout=30) == 1
        assert "another `serve` is running with DATA_DIR=" in second.output
        assert get_json(f"http://127.0.0.1:{port}/healthz")[0] == 200
    finally:
        first.kill_tree()
        if second is not None:
            second.kill_tree()


def _command_of(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return "?"


def test_children_stop_when_the_launcher_is_killed_outright(tmp_path):
    """PR_SET_PDEATHSIG: a launcher killed with SIGKILL cannot stop its children itself."""
    launched = Launched(base_env(tmp_path, free_port()))
    try:
        assert launched.wait_for_line("contactcenter is up at", timeout=90), launched.output
        children = descendants(launched.process.pid)
        assert len(children) >= 5  # valkey wrapper + server, worker (+ pool), beat, daphne
        launched.process.kill()
        launched.process.wait()
        left = still_alive(children, timeout=30)
        assert left == [], [_command_of(pid) for pid in left]
    finally:
        launched.kill_tree()


def test_production_mode_collects_hashed_static_files_and_seeds_no_demo_users(tmp_path):
    port = free_port()
    env = {
        **base_env(tmp_path, port),
        "DEBUG": "false",
        "SECRET_KEY": "production-like-secret-for-the-launcher-test",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
    }
    launched = Launched(env)
    try:
        assert launched.wait_for_line("contactcenter is up at", timeout=90), launched.output
        assert "demo logins" not in launched.output
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/accounts/login/") as page:
            html = page.read().decode()
        stylesheet = re.search(r'href="(/static/css/app\.[0-9a-f]{12}\.css)"', html)
        assert stylesheet, html
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{stylesheet.group(1)}") as css:
            assert css.status == 200
            assert "max-age=315360000" in css.headers["Cache-Control"]
        database = Path(env["DATA_DIR"]) / "contactcenter.sqlite3"
        with sqlite3.connect(database) as conn:
            assert conn.execute("SELECT COUNT(*) FROM auth_user").fetchone() == (0,)
        launched.process.send_signal(signal.SIGINT)
        assert launched.process.wait(timeout=60) == 0
    finally:
        launched.kill_tree()
