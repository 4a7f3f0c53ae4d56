"""A small routing world: a workspace with its default activities and channels, a Spanish and
an English queue, a workflow that routes by language, and helpers to run what the services
defer until commit (assignment attempts, event handlers)."""

import pytest

from routing.models import Activity, Worker
from routing.services import config, workers


@pytest.fixture
def commit(django_capture_on_commit_callbacks):
    """`with commit(): service(...)` runs the on-commit work (assignment attempts, handlers)
    as the real commit would, including work that it schedules in turn."""

    def run():
        return django_capture_on_commit_callbacks(execute=True)

    return run


@pytest.fixture
def workspace(db):
    return config.workspace_create(friendly_name="Support")


def activity(workspace, name: str) -> Activity:
    return Activity.objects.get(workspace=workspace, friendly_name=name)


@pytest.fixture
def queues(workspace):
    return {
        "es": config.queue_create(
            workspace=workspace, friendly_name="Spanish", target_workers="languages HAS 'es'"
        ),
        "en": config.queue_create(
            workspace=workspace, friendly_name="English", target_workers="languages HAS 'en'"
        ),
        "all": config.queue_create(workspace=workspace, friendly_name="Everyone"),
    }


@pytest.fixture
def workflow(workspace, queues):
    return config.workflow_create(
        workspace=workspace,
        friendly_name="By language",
        configuration={
            "task_routing": {
                "filters": [
                    {
                        "filter_friendly_name": "Spanish",
                        "expression": "language == 'es'",
                        "targets": [{"queue": queues["es"].sid}],
                    },
                    {
                        "filter_friendly_name": "English",
                        "expression": "language == 'en'",
                        "targets": [{"queue": queues["en"].sid}],
                    },
                ],
                "default_filter": {"queue": queues["all"].sid},
            }
        },
    )


@pytest.fixture
def make_worker(workspace):
    def make(name: str, *, languages=("es",), available=True, capacity=None, **attributes):
        worker = workers.worker_create(
            workspace=workspace,
            friendly_name=name,
            attributes={"languages": list(languages), **attributes},
            capacities=capacity or {},
        )
        if available:
            worker = workers.worker_activity_set(worker, activity=activity(workspace, "Available"))
        return Worker.objects.get(pk=worker.pk)

    return make
