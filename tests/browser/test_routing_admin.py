"""An admin tries expressions on the routing admin's expression page: from the workspace's
page, against workers, as a target with a sample task, and with a typo; then from a queue's
page, which opens the page with the queue's own expression."""

import pytest

from routing.models import Activity
from routing.services import config, tasks, workers
from tests.conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _routing_world():
    workspace = config.workspace_create(friendly_name="Support")
    available = Activity.objects.get(workspace=workspace, friendly_name="Available")
    for name, languages, level, skills in (
        ("Ana Ortega", ["es"], 3, ["billing", "refunds"]),
        ("Ben Kowalski", ["es", "en"], 1, ["billing"]),
        ("Chloé Martin", ["en", "fr"], 2, ["tech"]),
        ("Dev Patel", ["en"], 2, ["billing", "tech"]),
    ):
        worker = workers.worker_create(
            workspace=workspace,
            friendly_name=name,
            attributes={"languages": languages, "level": level, "skills": skills},
        )
        workers.worker_activity_set(worker, activity=available)
    spanish = config.queue_create(
        workspace=workspace,
        friendly_name="Spanish billing",
        target_workers=("languages HAS 'es' AND skills HAS 'billing'"),
    )
    everyone = config.queue_create(workspace=workspace, friendly_name="Everyone")
    workflow = config.workflow_create(
        workspace=workspace,
        friendly_name="By language",
        configuration={
            "task_routing": {
                "filters": [
                    {
                        "filter_friendly_name": "Spanish",
                        "expression": "language == 'es'",
                        "targets": [{"queue": spanish.sid}],
                    }
                ],
                "default_filter": {"queue": everyone.sid},
            }
        },
    )
    task = tasks.task_create(
        workspace=workspace,
        workflow=workflow,
        attributes={"language": "es", "topic": "billing", "customer": "+14155550123"},
        task_channel="sms",
    )
    return workspace, spanish, task


def test_an_admin_evaluates_expressions_against_workers(live_server, page, screenshot, admin_user):
    workspace, spanish, task = _routing_world()

    page.goto(
        f"{live_server.url}/accounts/login/?next=/admin/routing/workspace/{workspace.pk}/change/"
    )
    page.fill("#id_username", "admin")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"**/admin/routing/workspace/{workspace.pk}/change/")
    page.click("[data-testid=evaluate-link]")
    page.wait_for_url(f"**/admin/routing/workspace/{workspace.pk}/evaluate/")
    assert page.locator("h1").inner_text() == "Evaluate an expression"
    assert page.locator("[data-testid=evaluation]").count() == 0

    page.fill("#id_expression", "languages HAS 'en' AND level >= 2")
    page.check("input[name=mode][value=workers]")
    page.click("input[type=submit][value=Evaluate]")
    page.locator("[data-testid=evaluation]").wait_for()
    names = page.locator("#result_list tbody td.name").all_inner_texts()
    assert names == ["Chloé Martin", "Dev Patel"]
    assert (
        page.locator("[data-testid=match-summary]").inner_text().startswith("2 of 4 workers match.")
    )
    # The form keeps what was typed, and the sample-task fields are dimmed (not a target).
    assert page.locator("#id_expression").input_value() == "languages HAS 'en' AND level >= 2"
    assert "is-off" in page.locator(".form-row.field-task_sid").get_attribute("class")
    screenshot("routing-evaluate")

    # As a workflow target, with the waiting task as the sample.
    page.fill("#id_expression", "task.language IN worker.languages AND worker.level > 1")
    page.check("input[name=mode][value=target]")
    assert "is-off" not in page.locator(".form-row.field-task_sid").get_attribute("class")
    page.fill("#id_task_sid", task.sid)
    page.click("input[type=submit][value=Evaluate]")
    page.locator("[data-testid=evaluation]").wait_for()
    assert page.locator("#result_list tbody td.name").all_inner_texts() == ["Ana Ortega"]

    # A typo: the message names the position and a caret points at it.
    page.fill("#id_expression", "languages HAS 'es' AND AND level > 1")
    page.check("input[name=mode][value=workers]")
    page.click("input[type=submit][value=Evaluate]")
    error = page.locator("[data-testid=expression-error]")
    error.wait_for()
    assert "expected a value at position 23, found 'AND'" in error.inner_text()
    assert error.locator(".routing-caret").inner_text().splitlines() == [
        "languages HAS 'es' AND AND level > 1",
        " " * 23 + "^",
    ]
    assert page.locator("[data-testid=evaluation]").count() == 0
    screenshot("routing-evaluate-error")

    # From a queue's page: its own expression, evaluated against the workspace's workers.
    page.goto(f"{live_server.url}/admin/routing/taskqueue/{spanish.pk}/change/")
    members = page.locator("ul.routing-members a").all_inner_texts()
    assert members == ["Ana Ortega", "Ben Kowalski"]
    page.click("[data-testid=evaluate-link]")
    page.locator("[data-testid=evaluation]").wait_for()
    assert page.locator("#id_expression").input_value() == spanish.target_workers
    assert page.locator("#result_list tbody td.name").all_inner_texts() == members
