"""Celery's Django fix-up gets the connection-reuse setting (CELERY_DB_REUSE_MAX)."""

from celery.fixups.django import DjangoWorkerFixup
from django.conf import settings

from contactcenter.celery import app


def test_the_worker_fixup_reuses_database_connections_for_the_configured_tasks():
    # Without it the fix-up closes Django's pool around every task in prefork children.
    assert settings.CELERY_DB_REUSE_MAX == 100
    assert DjangoWorkerFixup(app).db_reuse_max == settings.CELERY_DB_REUSE_MAX
