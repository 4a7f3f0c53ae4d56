"""pytest plugin (loaded with `-p` in pyproject.toml) that prepares the environment
before pytest-django imports the settings.

- REDIS_URL unset: start an embedded Valkey for the session on a private unix socket.
- DATABASE_URL unset: SQLite (Django's test runner makes its own test database).
- SECRET_KEY / ALLOWED_HOSTS: test values, so the suite runs with production-like DEBUG off.
"""

import os
import shutil
import tempfile
from pathlib import Path

import pytest


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_load_initial_conftests(early_config, parser, args):
    os.environ.setdefault("SECRET_KEY", "test-secret-key-not-for-production")
    os.environ.setdefault("ALLOWED_HOSTS", "localhost,127.0.0.1,testserver")
    if not os.environ.get("DATA_DIR"):
        data_dir = Path(tempfile.mkdtemp(prefix="cc-test-data-"))
        os.environ["DATA_DIR"] = str(data_dir)
        early_config.add_cleanup(lambda: shutil.rmtree(data_dir, ignore_errors=True))
    if not os.environ.get("REDIS_URL"):
        _start_embedded_valkey(early_config)
    return (yield)


def _start_embedded_valkey(config) -> None:
    from contactcenter.core.embedded_valkey import embedded_valkey_server

    # A short path under /tmp: unix socket paths are limited to 108 bytes.
    workdir = Path(tempfile.mkdtemp(prefix="cc-valkey-"))
    server = embedded_valkey_server(socket_path=workdir / "v.sock", data_dir=workdir / "data")
    server.start()
    os.environ["REDIS_URL"] = f"unix://{workdir / 'v.sock'}"
    os.environ["CC_TEST_EMBEDDED_VALKEY"] = "1"

    def stop() -> None:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)

    config.add_cleanup(stop)
