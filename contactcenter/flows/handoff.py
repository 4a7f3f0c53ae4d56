"""send-to-agent (Studio's send-to-flex): hand the conversation to the desk, which creates
the routing task; the execution ends there (the flow leaves the conversation)."""

import json

from django.db import transaction

from contactcenter.desk.services import HandoffRequest, conversation_handoff
from contactcenter.flows.widgets import Outcome, WidgetError, WidgetRun
from messaging.models import Conversation
from messaging.selectors import conversation_open_for
from routing.errors import RoutingError
from routing.models import DEFAULT_TASK_TIMEOUT, MAX_TASK_TIMEOUT


def send_to_agent(run: WidgetRun) -> Outcome:
    conversation = _conversation(run)
    if conversation is None:
        return _failed("There is no open conversation with this contact to hand over.")
    try:
        attributes = _attributes(run)
    except WidgetError as error:
        return _failed(str(error))
    request = HandoffRequest(
        workflow=run.prop("workflow"),
        task_channel=run.prop("channel"),
        attributes=attributes,
        priority=run.int_prop("priority", 0, 0, 2**31 - 1),
        timeout=run.int_prop("timeout", DEFAULT_TASK_TIMEOUT, 1, MAX_TASK_TIMEOUT),
        execution_sid=run.execution.sid,
    )
    try:
        with transaction.atomic():
            handoff = conversation_handoff(conversation=conversation, request=request)
    except RoutingError as error:
        return _failed(f"Routing refused the task: {error.message}")
    task = handoff.task
    return Outcome(
        "callComplete",
        {
            "task_sid": task.sid,
            "workflow": task.workflow.sid,
            "queue": task.queue_id and task.queue.sid,
        },
        end=f"Handed to the agents (task {task.sid}).",
    )


def _failed(message: str) -> Outcome:
    return Outcome("failedToEnqueue", {"error": message}, error=message)


def _conversation(run: WidgetRun) -> Conversation | None:
    """The execution's conversation while it is open, else the pair's open one (a REST-started
    execution may have begun before the conversation existed)."""
    execution = run.execution
    conversation = execution.conversation
    if conversation is not None and conversation.state == Conversation.State.OPEN:
        return conversation
    return conversation_open_for(
        account_id=execution.flow.account_id,
        contact_address=execution.contact_address,
        business_address=execution.business_address,
    )


def _attributes(run: WidgetRun) -> dict:
    """What the flow collected (flow.variables), then the widget's own attributes JSON."""
    variables = run.execution.context["flow"]["variables"]
    collected = {k: v for k, v in variables.items() if isinstance(v, str | int | float | bool)}
    text = run.prop("attributes")
    if not text:
        return collected
    try:
        rendered = json.loads(text)
    except ValueError as error:
        raise WidgetError(f"Widget {run.name}: the attributes are not JSON ({error}).") from error
    if not isinstance(rendered, dict):
        raise WidgetError(f"Widget {run.name}: the attributes must be a JSON object.")
    return {**collected, **rendered}
