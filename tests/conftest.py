"""The shared cast: an admin, a supervisor, two agents and an outsider without a role."""

from pathlib import Path

import pytest
from django.test import Client

from contactcenter.accounts.roles import Role
from contactcenter.accounts.services import user_ensure_with_role

PASSWORD = "a-long-test-password"


@pytest.fixture(autouse=True)
def delivery_keys(settings):
    """Each test its own delivery-engine keys in Redis: no pacing, queue or pump state leaks
    between tests (or between suites sharing one Redis)."""
    import uuid

    settings.DELIVERY_KEY_PREFIX = f"cc-test:{uuid.uuid4().hex[:12]}"
    yield settings.DELIVERY_KEY_PREFIX
    from messaging.delivery import store

    try:
        client = store.client()
        names = list(client.scan_iter(match=f"{settings.DELIVERY_KEY_PREFIX}:*", count=1000))
        if names:
            client.delete(*names)
    except Exception:  # a test that stopped Redis on purpose
        pass


@pytest.fixture(autouse=True)
def webhook_caches():
    """Providers and senders cached by the webhook path must not outlive the test that made
    them (ids are reused after a rollback)."""
    from contactcenter.flows.selectors import attachments_cache_clear
    from messaging.services.webhooks import webhook_caches_clear

    webhook_caches_clear()
    attachments_cache_clear()
    yield
    webhook_caches_clear()
    attachments_cache_clear()


def _member(username: str, role: Role | None):
    return user_ensure_with_role(username=username, password=PASSWORD, role=role)


@pytest.fixture
def admin_user(db):
    return _member("admin", Role.ADMIN)


@pytest.fixture
def supervisor(db):
    return _member("supervisor", Role.SUPERVISOR)


@pytest.fixture
def agent1(db):
    return _member("agent1", Role.AGENT)


@pytest.fixture
def agent2(db):
    return _member("agent2", Role.AGENT)


@pytest.fixture
def outsider(db):
    return _member("outsider", None)


@pytest.fixture
def client_for():
    """A test client signed in as the given user."""

    def make(user) -> Client:
        client = Client()
        client.force_login(user)
        return client

    return make


def pytest_configure(config):
    # Production settings hash static files via a manifest that `collectstatic` writes;
    # tests render templates without collecting, so they use the plain storage.
    from django.conf import settings

    settings.STATIC_ROOT.mkdir(parents=True, exist_ok=True)
    # Django's advice for tests: the cast's passwords would otherwise cost PBKDF2's full work
    # factor in every test. Passwords are still checked for real, with a cheaper hash.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


def _test_database_url() -> str:
    """The URL of the database the tests use, for processes the tests start."""
    from django.db import connection

    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    return f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


@pytest.fixture
def start_celery_worker(settings):
    """Start real Celery worker processes on the suite's broker (extra environment allowed);
    each is stopped (and waited for) after the test."""
    import os
    import subprocess
    import sys
    import time

    from contactcenter.celery import app as celery_app

    # Tasks left on the broker by earlier tests name rows of databases that no longer exist.
    celery_app.control.purge()
    started: list[subprocess.Popen] = []

    log_file = open(os.environ["CC_WORKER_LOG"], "ab") if "CC_WORKER_LOG" in os.environ else None  # noqa: SIM115

    def start(extra_env: dict | None = None) -> subprocess.Popen:
        name = f"test-{os.getpid()}-{time.monotonic_ns()}@%h"
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "contactcenter",
                "worker",
                "--pool",
                "solo",
                "--hostname",
                name,
                "--without-mingle",
                "--without-gossip",
                *(["--loglevel", "info"] if "CC_WORKER_LOG" in os.environ else []),
            ],
            env={
                **os.environ,
                "PYTHONUNBUFFERED": "1",
                "DATABASE_URL": _test_database_url(),
                "DELIVERY_KEY_PREFIX": settings.DELIVERY_KEY_PREFIX,
                **(extra_env or {}),
            },
            # CC_WORKER_LOG=path keeps the worker's log (debugging a test on a real worker).
            stdout=log_file or subprocess.DEVNULL,
            stderr=subprocess.STDOUT if log_file else subprocess.DEVNULL,
        )
        started.append(process)
        deadline = time.monotonic() + 30
        while not celery_app.control.ping(
            destination=[name.replace("%h", _hostname())], timeout=0.5
        ):
            assert process.poll() is None, "the Celery worker exited while starting"
            assert time.monotonic() < deadline, "the Celery worker did not answer within 30 s"
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=30)
    if log_file:
        log_file.close()


def _hostname() -> str:
    import socket

    return socket.gethostname()


@pytest.fixture
def celery_worker_process(start_celery_worker):
    """A real Celery worker process on the suite's broker; stopped (and waited for) after."""
    return start_celery_worker()


DAPHNE_APP = "contactcenter.asgi:application"


@pytest.fixture(scope="session")
def collected_static():
    """`collectstatic` once per session into the suite's DATA_DIR: a daphne process started
    by a test runs the production settings, whose static storage needs the manifest."""
    import os
    import subprocess
    import sys

    from tests.support.processes import ROOT

    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "-v", "0"],
        cwd=ROOT,
        env={**os.environ},
        check=True,
    )


class DaphneServer:
    """daphne (production settings) on a fixed port; `restart()` drops every websocket."""

    def __init__(self, env: dict[str, str]):
        import tempfile

        from tests.support.processes import free_port

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = env
        self.log = Path(tempfile.mkstemp(prefix="cc-daphne-", suffix=".log")[1])
        self.process = None

    def start(self) -> None:
        import subprocess
        import sys
        import time
        import urllib.error
        import urllib.request

        from tests.support.processes import ROOT

        command = [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(self.port)]
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [*command, DAPHNE_APP], cwd=ROOT, env=self.env, stdout=log, stderr=log
            )
        deadline = time.monotonic() + 30
        while True:
            assert self.process.poll() is None, self.log.read_text()[-3000:]
            try:
                with urllib.request.urlopen(f"{self.url}/healthz", timeout=2):
                    return
            except urllib.error.HTTPError:
                return  # it answers (503 until a Celery worker runs): it is up
            except OSError:
                assert time.monotonic() < deadline, "daphne did not answer within 30 s"
                time.sleep(0.2)

    def stop(self) -> None:
        import subprocess

        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def restart(self) -> None:
        self.stop()
        self.start()


@pytest.fixture
def daphne_server(transactional_db, settings, collected_static):
    """The real web + websocket server on the test database and the suite's Redis, for
    browser journeys that need websockets."""
    import os

    server = DaphneServer(
        {
            **os.environ,
            "PYTHONUNBUFFERED": "1",
            "DATABASE_URL": _test_database_url(),
            "DELIVERY_KEY_PREFIX": settings.DELIVERY_KEY_PREFIX,
        }
    )
    server.start()
    yield server
    server.stop()
