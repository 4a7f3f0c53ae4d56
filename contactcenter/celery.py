import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "contactcenter.settings")

app = Celery("contactcenter")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.on_after_configure.connect
def _reuse_database_connections(sender: Celery, **kwargs) -> None:
    """Celery's Django fix-up closes every connection, and with Django's pool the whole pool,
    before and after each task in prefork children: two new PostgreSQL sessions per task
    (the flows bench counted 1,200 for 600 tasks). With this literal key it recycles them
    only every CELERY_DB_REUSE_MAX tasks."""
    from django.conf import settings

    sender.conf["CELERY_DB_REUSE_MAX"] = settings.CELERY_DB_REUSE_MAX
