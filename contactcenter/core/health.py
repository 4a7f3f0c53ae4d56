"""Health of the parts the product needs: the database, Redis, and a live Celery worker."""

from dataclasses import dataclass, field

import redis
from django.conf import settings
from django.db import connection

from contactcenter.celery import app as celery_app

PROBE_TIMEOUT_S = 1.0


@dataclass
class HealthReport:
    checks: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def healthy(self) -> bool:
        return all(state == "ok" for state in self.checks.values())

    def record(self, name: str, error: str | None) -> None:
        self.checks[name] = "ok" if error is None else "down"
        if error is not None:
            self.errors[name] = error


def _database_error() -> str | None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def _redis_error() -> str | None:
    client = redis.Redis.from_url(
        settings.REDIS_URL,
        socket_timeout=PROBE_TIMEOUT_S,
        socket_connect_timeout=PROBE_TIMEOUT_S,
    )
    try:
        client.ping()
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    finally:
        client.close()
    return None


def _celery_error() -> str | None:
    # Broadcast a ping through the broker and return at the first worker's reply.
    try:
        with celery_app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=PROBE_TIMEOUT_S)
            replies = celery_app.control.ping(timeout=PROBE_TIMEOUT_S, limit=1, connection=conn)
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    if not replies:
        return "no Celery worker answered"
    return None


def health_check() -> HealthReport:
    report = HealthReport()
    report.record("database", _database_error())
    redis_error = _redis_error()
    report.record("redis", redis_error)
    # Celery talks through Redis: with Redis down no worker can be reached.
    report.record("celery", "broker unreachable" if redis_error else _celery_error())
    return report
