"""Settings parse every variable at start-up and name the variable that is wrong."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROBE = (
    "import json, django; from django.conf import settings; django.setup(); "
    "db = settings.DATABASES['default']; "
    "print(json.dumps({'debug': settings.DEBUG, 'engine': db['ENGINE'], "
    "'options': db.get('OPTIONS', {}), 'redis': settings.REDIS_URL, "
    "'broker': settings.CELERY_BROKER_URL, 'embedded': settings.REDIS_EMBEDDED, "
    "'hosts': settings.ALLOWED_HOSTS, 'port': settings.PORT, "
    "'layer': settings.CHANNEL_LAYERS['default']['CONFIG']['hosts']}))"
)


def load_settings(tmp_path, **overrides):
    env = {
        "PATH": os.environ["PATH"],
        "DJANGO_SETTINGS_MODULE": "contactcenter.settings",
        "DATA_DIR": str(tmp_path),
        **overrides,
    }
    return subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True, text=True
    )


def loaded(tmp_path, **overrides) -> dict:
    import json

    result = load_settings(tmp_path, **overrides)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"DEBUG": "maybe"}, "DEBUG='maybe'"),
        ({"DEBUG": "true", "PORT": "eighty"}, "PORT='eighty'"),
        ({"DEBUG": "true", "PORT": "70000"}, "PORT=70000"),
        ({"DEBUG": "true", "DB_POOL_MAX_SIZE": "lots"}, "DB_POOL_MAX_SIZE='lots'"),
        ({"DEBUG": "true", "REDIS_URL": "http://cache:6379"}, "REDIS_URL='http://cache:6379'"),
        ({"DEBUG": "true", "DATABASE_URL": "mysql://u@h/db"}, "DATABASE_URL"),
        ({"DEBUG": "true", "DATABASE_URL": "no-scheme-at-all"}, "DATABASE_URL"),
        ({"DEBUG": "true", "LOG_LEVEL": "LOUD"}, "LOG_LEVEL='LOUD'"),
        ({"DEBUG": "true", "LANGUAGE_CODE": "fr"}, "LANGUAGE_CODE='fr'"),
        ({"DEBUG": "false"}, "SECRET_KEY is required"),
        ({"DEBUG": "false", "SECRET_KEY": "s3cret"}, "ALLOWED_HOSTS is required"),
    ],
)
def test_a_bad_variable_stops_start_up_naming_it(tmp_path, overrides, named):
    result = load_settings(tmp_path, **overrides)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert named in result.stderr


def test_manage_py_reports_a_bad_variable_in_one_line(tmp_path):
    env = {"PATH": os.environ["PATH"], "DATA_DIR": str(tmp_path), "DEBUG": "perhaps"}
    result = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "configuration error: DEBUG='perhaps' is not valid: use true/false, 1/0, yes/no, on/off"
    ]


def test_no_environment_means_sqlite_and_embedded_valkey(tmp_path):
    config = loaded(tmp_path, DEBUG="true")
    assert config["debug"] is True
    assert config["engine"] == "django.db.backends.sqlite3"
    assert config["options"]["transaction_mode"] == "IMMEDIATE"
    assert "journal_mode=WAL" in config["options"]["init_command"]
    assert config["embedded"] is True
    assert config["redis"] == f"unix://{tmp_path / 'valkey.sock'}"
    assert config["broker"] == f"redis+socket://{tmp_path / 'valkey.sock'}"
    # The channels-redis pitfall: redis-py 8's 5 s timeout kills idle consumers.
    assert config["layer"] == [
        {"address": config["redis"], "socket_timeout": None, "max_connections": 1000}
    ]


def test_debug_is_off_unless_asked_and_then_needs_key_and_hosts(tmp_path):
    config = loaded(tmp_path, SECRET_KEY="k" * 50, ALLOWED_HOSTS="cc.example.com,10.0.0.5")
    assert config["debug"] is False
    assert config["hosts"] == ["cc.example.com", "10.0.0.5"]


def test_external_services_from_urls(tmp_path):
    config = loaded(
        tmp_path,
        DEBUG="1",
        DATABASE_URL="postgres://postgres@127.0.0.1:5432/somedb",
        REDIS_URL="redis://127.0.0.1:6379/3",
        PORT="9001",
    )
    assert config["engine"] == "django.db.backends.postgresql"
    # Under ASGI only a pool reuses connections.
    assert config["options"]["pool"] == {"min_size": 1, "max_size": 10}
    assert config["redis"] == config["broker"] == "redis://127.0.0.1:6379/3"
    assert config["embedded"] is False
    assert config["port"] == 9001


def test_a_deep_data_dir_falls_back_to_a_short_socket_path(tmp_path):
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    config = loaded(tmp_path, DEBUG="true", DATA_DIR=str(deep))
    socket_path = config["redis"].removeprefix("unix://")
    assert len(socket_path) < 100
    assert socket_path.endswith(".sock")
