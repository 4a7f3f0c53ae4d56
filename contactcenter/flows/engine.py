"""The engine: runs an execution from where it stands to the next wait or its end.

Every entry point locks the execution row (`SELECT … FOR UPDATE`) inside one transaction,
so two workers can never advance one execution at once; a widget's outside call happens
between two such transactions (see widgets.py). Limits (REFERENCE.md 8): 1,000 steps, the
same widget more than 10 times in a row, 30 days.
"""

import time
import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from contactcenter.flows import widgets
from contactcenter.flows.context import new_context
from contactcenter.flows.definition import ALIASES
from contactcenter.flows.functions import FunctionCall, function_run
from contactcenter.flows.handoff import send_to_agent
from contactcenter.flows.http_request import http_call
from contactcenter.flows.models import (
    Execution,
    ExecutionStatus,
    Flow,
    FlowRevision,
    Step,
    Waiting,
)
from contactcenter.flows.selectors import FunctionUnavailable, allowed_hosts, function_environment
from contactcenter.flows.widgets import IoRequest, Outcome, WidgetError, WidgetRun
from messaging.models import Conversation, Message

MAX_STEPS = 1000
MAX_REPEATS = 10


@dataclass(frozen=True)
class Start:
    """How a new execution begins: the trigger's event and what it carries."""

    event: str  # incomingMessage | incomingRequest | incomingParent
    trigger: dict[str, Any]  # becomes `trigger.*`
    data: dict[str, Any] | None = None  # becomes `flow.data.*` (REST parameters)
    message: Message | None = None


# ---------------------------------------------------------------- definitions


def _states(definition: dict) -> tuple[dict[str, dict], str]:
    states = {}
    for state in definition.get("states") or []:
        state = dict(state)
        state["type"] = ALIASES.get(state.get("type"), state.get("type"))
        states[state["name"]] = state
    return states, definition.get("initial_state") or "Trigger"


def execution_states(execution: Execution) -> tuple[dict[str, dict], str]:
    if execution.draft_definition is not None:
        return _states(execution.draft_definition)
    return _states(execution.revision.definition)


# ---------------------------------------------------------------- starting


def execution_create(
    *,
    flow: Flow,
    revision: FlowRevision | None,
    contact_address: str,
    business_address: str,
    start: Start,
    conversation: Conversation | None = None,
    parent: Execution | None = None,
) -> Execution:
    """A new active execution. IntegrityError when the pair already has one in this flow."""
    execution = Execution(
        flow=flow,
        revision=revision,
        draft_definition=None if revision is not None else flow.definition,
        contact_address=contact_address,
        business_address=business_address,
        conversation=conversation,
        trigger=start.event,
        parent=parent,
    )
    execution.context = new_context(
        flow_sid=flow.sid,
        execution_sid=execution.sid,
        contact_address=contact_address,
        business_address=business_address,
    )
    execution.context["trigger"] = start.trigger
    execution.context["flow"]["data"] = start.data or {}
    with transaction.atomic():  # a savepoint: the caller survives the IntegrityError
        execution.save()
    return execution


def execution_begin(execution: Execution, start: Start) -> IoRequest | None:
    """Run a just-created execution from its trigger (inside the creating transaction)."""
    states, initial = execution_states(execution)
    trigger = states.get(initial)
    if trigger is None:
        _finish(execution, ExecutionStatus.FAILED, f"The flow has no state {initial!r}.")
        return None
    _enter(execution, trigger)  # the trigger is the execution's first step
    outcome = Outcome(start.event, inbound=start.message)
    return _advance(execution, states, trigger, outcome)


# ---------------------------------------------------------------- resuming


def _locked(execution_id: int) -> Execution | None:
    execution = (
        Execution.objects.select_for_update(of=("self",))
        .select_related("flow", "flow__account", "revision")
        .filter(pk=execution_id, status=ExecutionStatus.ACTIVE)
        .first()
    )
    if execution is not None and execution.expires_at <= timezone.now():
        _finish(execution, ExecutionStatus.FAILED, "The execution reached its 30-day lifetime.")
        return None
    return execution


def _waiting_state(execution: Execution, waiting: str) -> tuple[dict, dict] | None:
    if execution.waiting != waiting:
        return None
    states, _initial = execution_states(execution)
    state = states.get(execution.current_state)
    return (states, state) if state is not None else None


# What a resumption does with the locked execution and the state it stands in: the outcome
# to record, or None when this resumption no longer applies (it changed meanwhile).
OutcomeFor = Callable[[Execution, dict], Outcome | None]


def _resume(execution_id: int, outcome_for: OutcomeFor) -> tuple[bool, IoRequest | None]:
    """Lock the execution, record `outcome_for`'s outcome for its current widget and run on.
    (resumed, the outside call it now waits for)."""
    with transaction.atomic():
        execution = _locked(execution_id)
        if execution is None:
            return False, None
        states, _initial = execution_states(execution)
        state = states.get(execution.current_state)
        if state is None:
            _finish(execution, ExecutionStatus.FAILED, "The waiting widget is gone.")
            return False, None
        outcome = outcome_for(execution, state)
        if outcome is None:
            return False, None
        return True, _advance(execution, states, state, outcome)


def _resume_and_call(execution_id: int, outcome_for: OutcomeFor) -> bool:
    resumed, io = _resume(execution_id, outcome_for)
    perform_calls(execution_id, io)
    return resumed


def execution_reply(execution_id: int, message: Message) -> bool:
    """Deliver a customer's message to the execution waiting for it. False: it was not
    waiting for a reply (the message is logged on it as not taken)."""

    def outcome_for(execution: Execution, state: dict) -> Outcome | None:
        if Step.objects.filter(inbound_message=message).exists():
            return None  # another worker took this message first
        if execution.waiting != Waiting.REPLY:
            _log_ignored(execution, message)
            return None
        return widgets.resume_reply(_run_for(execution, state), message)

    return _resume_and_call(execution_id, outcome_for)


def execution_timeout(execution_id: int) -> bool:
    """The tick found the execution's wait past its deadline."""

    def outcome_for(execution: Execution, state: dict) -> Outcome | None:
        if execution.wait_until is None or execution.wait_until > timezone.now():
            return None
        if execution.waiting == Waiting.REPLY:
            return widgets.resume_timeout(_run_for(execution, state))
        if execution.waiting == Waiting.IO:
            return widgets.io_lost(state["type"])
        return None

    return _resume_and_call(execution_id, outcome_for)


def execution_delivery_failed(execution_id: int, message: Message) -> bool:
    """The message a send-and-wait is waiting behind failed: take deliveryFailure."""

    def outcome_for(execution: Execution, state: dict) -> Outcome | None:
        if execution.wait_message_id != message.pk or execution.waiting != Waiting.REPLY:
            return None
        return widgets.resume_delivery_failure(_run_for(execution, state), message)

    return _resume_and_call(execution_id, outcome_for)


def execution_end(execution_id: int, *, reason: str) -> bool:
    """End an active execution on request (API, admin)."""
    with transaction.atomic():
        execution = _locked(execution_id)
        if execution is None:
            return False
        _finish(execution, ExecutionStatus.ENDED, reason)
        return True


def perform_calls(execution_id: int, io: IoRequest | None) -> None:
    """Perform outside calls one after the other until the execution waits or ends."""
    while io is not None:
        result = _perform(io)
        io = _io_returned(execution_id, io, result)


def _perform(io: IoRequest) -> Any:
    if io.kind == "http":
        return http_call(io.http, allowed_hosts=allowed_hosts(), timeout=widgets.IO_TIMEOUT_SECONDS)
    call = FunctionCall(context=io.context, parameters=io.parameters, environment=io.environment)
    return function_run(io.function, call, timeout=widgets.IO_TIMEOUT_SECONDS)


def _io_returned(execution_id: int, io: IoRequest, result: Any) -> IoRequest | None:
    def outcome_for(execution: Execution, state: dict) -> Outcome | None:
        if execution.step_count != io.token or execution.waiting != Waiting.IO:
            return None  # ended meanwhile, or the tick already gave up on this call
        return widgets.io_outcome(io.kind, result)

    return _resume(execution_id, outcome_for)[1]


# ---------------------------------------------------------------- the loop


def _run_for(execution: Execution, state: dict) -> WidgetRun:
    return WidgetRun(
        execution=execution, state=state, now=timezone.now(), tz=_zone(execution.flow.time_zone)
    )


@lru_cache(maxsize=64)
def _zone(name: str) -> zoneinfo.ZoneInfo:
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo("UTC")


def _advance(
    execution: Execution, states: dict[str, dict], state: dict, outcome: Outcome
) -> IoRequest | None:
    """Record `outcome` of `state`, then run widgets until one waits or the flow ends.
    Returns the outside call to perform, if the execution now waits for one."""
    steps: list[Step] = []
    started = time.perf_counter()
    try:
        while True:
            if outcome.data is not None:
                execution.context["widgets"][state["name"]] = outcome.data
            if outcome.wait:
                _wait(execution, state, outcome)
                return outcome.io
            steps.append(_step(execution, state, outcome, started))
            if outcome.end:
                _finish(execution, ExecutionStatus.ENDED, outcome.end)
                return None
            next_name = _next(state, outcome)
            if not next_name:
                _finish(execution, ExecutionStatus.ENDED, f"Reached the end at {state['name']}.")
                return None
            state = states.get(next_name)
            if state is None:
                _finish(execution, ExecutionStatus.FAILED, f"No state {next_name!r}.")
                return None
            limit = _enter(execution, state)
            if limit:
                _finish(execution, ExecutionStatus.FAILED, limit)
                return None
            started = time.perf_counter()
            outcome = _run_widget(execution, state)
    except WidgetError as error:
        steps.append(_step(execution, state, Outcome(error=str(error)), time.perf_counter()))
        _finish(execution, ExecutionStatus.FAILED, str(error))
        return None
    finally:
        _save_steps(execution, steps)


def _enter(execution: Execution, state: dict) -> str:
    """Count the step against the limits; the reason to stop, or ''."""
    execution.step_count += 1
    if execution.step_count > MAX_STEPS:
        return f"The execution reached {MAX_STEPS} steps, the limit."
    if execution.current_state == state["name"]:
        execution.repeat_count += 1
    else:
        execution.repeat_count = 1
    execution.current_state = state["name"]
    if execution.repeat_count > MAX_REPEATS:
        return f"The widget {state['name']} ran {MAX_REPEATS} times in a row, the limit."
    return ""


def _next(state: dict, outcome: Outcome) -> str:
    transition = outcome.transition
    if transition is None:
        transition = next(
            (t for t in state.get("transitions") or [] if t.get("event") == outcome.event), None
        )
    return (transition or {}).get("next") or ""


def _run_widget(execution: Execution, state: dict) -> Outcome:
    run = _run_for(execution, state)
    kind = state.get("type")
    if kind == "send-message":
        return widgets.send_message(run)
    if kind == "send-and-wait-for-reply":
        return widgets.send_and_wait(run)
    if kind == "split-based-on":
        return widgets.split(run)
    if kind == "set-variables":
        return widgets.set_variables(run)
    if kind == "make-http-request":
        return widgets.make_http_request(run, execution.step_count)
    if kind == "run-function":
        try:
            environment = function_environment(run.prop("function"))
        except FunctionUnavailable as unavailable:
            environment = str(unavailable)
        return widgets.run_function(run, execution.step_count, environment)
    if kind == "run-subflow":
        return _run_subflow(run)
    if kind == "send-to-agent":
        return send_to_agent(run)
    if kind == "trigger":
        raise WidgetError(f"Widget {state['name']}: a transition leads back to the trigger.")
    raise WidgetError(f"Widget {state['name']}: type {kind!r} is not supported.")


def _wait(execution: Execution, state: dict, outcome: Outcome) -> None:
    execution.current_state = state["name"]
    execution.waiting = outcome.wait
    execution.wait_until = outcome.wait_until
    execution.wait_message = outcome.wait_message
    execution.save()


def _step(execution: Execution, state: dict, outcome: Outcome, started: float) -> Step:
    return Step(
        execution=execution,
        index=execution.step_count,
        name=state["name"],
        widget_type=state.get("type", ""),
        event=outcome.event,
        next_state=_next(state, outcome) if outcome.event else "",
        data=_step_data(outcome),
        error=outcome.error,
        inbound_message=outcome.inbound,
        duration_ms=(time.perf_counter() - started) * 1000,
    )


def _step_data(outcome: Outcome) -> dict:
    data = outcome.data or {}
    brief = {k: data[k] for k in ("outbound", "status_code", "input", "task_sid") if k in data}
    if outcome.inbound is not None:
        brief["inbound"] = {"Sid": outcome.inbound.sid, "Body": outcome.inbound.body[:500]}
    if "error" in data:
        brief["error"] = data["error"]
    return brief


def _save_steps(execution: Execution, steps: list[Step]) -> None:
    if steps:
        Step.objects.bulk_create(steps)


def _log_ignored(execution: Execution, message: Message) -> None:
    """A message that arrived while the execution was busy: kept on the execution's log
    (the message itself is in the conversation), never silently lost."""
    try:
        with transaction.atomic():
            Step.objects.create(
                execution=execution,
                index=execution.step_count,
                name=execution.current_state,
                widget_type="",
                event="",
                data={"ignored": {"Sid": message.sid, "Body": message.body[:500]}},
                error="The execution was not waiting for a reply.",
                inbound_message=message,
            )
    except IntegrityError:
        pass  # a redelivery of a message already logged


def _finish(execution: Execution, status: str, reason: str) -> None:
    execution.status = status
    execution.ended_reason = reason[:255]
    execution.waiting = Waiting.NOTHING
    execution.wait_until = None
    execution.date_ended = timezone.now()
    execution.save()
    if execution.parent_id:
        _return_to_parent(execution)


# ---------------------------------------------------------------- subflows


def _run_subflow(run: WidgetRun) -> Outcome:
    execution = run.execution
    if execution.parent_id is not None:
        return _subflow_failed("A subflow cannot run another subflow (one level of nesting).")
    flow = Flow.objects.filter(account=execution.flow.account, sid=run.prop("flow_sid")).first()
    if flow is None or flow.pk == execution.flow_id:
        return _subflow_failed(f"No other flow {run.prop('flow_sid')!r} in this account.")
    revision = _subflow_revision(flow, run.prop("flow_revision") or "LatestPublished")
    if revision is None:
        return _subflow_failed(f"The flow {flow.sid} has no such published revision.")
    parameters = run.pairs("parameters")
    start = Start(event="incomingParent", trigger={"parent": {"parameters": parameters}})
    try:
        child = execution_create(
            flow=flow,
            revision=revision,
            contact_address=execution.contact_address,
            business_address=execution.business_address,
            start=start,
            conversation=execution.conversation,
            parent=execution,
        )
    except IntegrityError:
        return _subflow_failed(f"The flow {flow.sid} already runs for this contact.")
    io = execution_begin(child, start)
    if child.status != ExecutionStatus.ACTIVE:
        return _child_outcome(child)  # it ran to its end at once
    if io is not None:
        # The child's outside call runs once this transaction commits.
        transaction.on_commit(lambda: perform_calls(child.pk, io))
    return Outcome(wait=Waiting.SUBFLOW)


def _subflow_revision(flow: Flow, wanted: str) -> FlowRevision | None:
    revisions = FlowRevision.objects.filter(flow=flow)
    if wanted in ("", "LatestPublished"):
        return revisions.filter(revision=flow.published_revision).first()
    try:
        return revisions.filter(revision=int(wanted)).first()
    except ValueError:
        return None


def _subflow_failed(message: str) -> Outcome:
    return Outcome("failed", {"status": "failed", "error": message}, error=message)


def _return_to_parent(child: Execution) -> None:
    parent = _locked(child.parent_id)
    if parent is None:
        return
    found = _waiting_state(parent, Waiting.SUBFLOW)
    if found is None:
        return
    states, state = found
    io = _advance(parent, states, state, _child_outcome(child))
    if io is not None:
        transaction.on_commit(lambda: perform_calls(parent.pk, io))


def _child_outcome(child: Execution) -> Outcome:
    """The run-subflow widget's result: the child's variables out, completed or failed."""
    variables = child.context.get("flow", {}).get("variables", {})
    completed = child.status == ExecutionStatus.ENDED
    data = {**variables, "status": "completed" if completed else "failed", "variables": variables}
    return Outcome(
        "completed" if completed else "failed",
        data,
        error="" if completed else child.ended_reason,
    )


def execution_expire(execution_id: int) -> bool:
    """End an execution past its 30-day lifetime (the tick calls this)."""
    with transaction.atomic():
        execution = (
            Execution.objects.select_for_update()
            .filter(pk=execution_id, status=ExecutionStatus.ACTIVE, expires_at__lte=timezone.now())
            .first()
        )
        if execution is None:
            return False
        _finish(execution, ExecutionStatus.FAILED, "The execution reached its 30-day lifetime.")
        return True
