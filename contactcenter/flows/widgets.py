"""The widgets: what each one does when the execution enters it, and when what it waits
for arrives. Widgets return an Outcome; the engine (engine.py) records it and moves on.

Widgets that talk to the outside (run-function, make-http-request) only prepare their call
here; the engine performs it outside the database transaction and hands the result back
(`resume_io`), so a slow API never holds a lock.
"""

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from contactcenter.flows import liquid
from contactcenter.flows.context import clipped, message_fields
from contactcenter.flows.definition import CONTENT_TYPE_FORM, WAIT_TIMEOUT_DEFAULT, WAIT_TIMEOUT_MAX
from contactcenter.flows.http_request import HttpCall
from contactcenter.flows.models import Execution, Waiting
from contactcenter.flows.operators import condition_matches
from messaging.errors import MessagingError
from messaging.models import Direction, Message
from messaging.services.messages import MessageRequest, message_create

IO_TIMEOUT_SECONDS = 10.0
# An execution whose worker died mid-call is failed by the tick after this much longer.
IO_GRACE_SECONDS = 60


class WidgetError(Exception):
    """A widget that cannot run at all (a template that fails to render, a bad property):
    the execution ends as failed, with this message on the step."""


@dataclass
class IoRequest:
    kind: str  # "http" | "function"
    token: int  # the execution's step count when the call began: stale results are dropped
    http: HttpCall | None = None
    function: str = ""
    parameters: dict[str, str] = field(default_factory=dict)
    environment: dict[str, str] = field(default_factory=dict)
    context: dict[str, Any] = field(default_factory=dict)


@dataclass
class Outcome:
    event: str = ""  # the transition to follow
    data: dict[str, Any] | None = None  # becomes widgets.<name>
    transition: dict | None = None  # a split names the very transition that matched
    wait: str = ""  # Waiting.*: stop here until it arrives
    wait_until: datetime | None = None
    wait_message: Message | None = None
    io: IoRequest | None = None
    end: str = ""  # end the execution here (a hand-off), with this reason
    inbound: Message | None = None  # the inbound message this step consumed
    error: str = ""


@dataclass
class WidgetRun:
    """What a widget gets: the execution (locked), its state and a renderer."""

    execution: Execution
    state: dict
    now: datetime
    tz: ZoneInfo

    @property
    def name(self) -> str:
        return self.state["name"]

    @property
    def props(self) -> dict:
        return self.state.get("properties") or {}

    def render(self, source: Any) -> str:
        try:
            return liquid.render(source, self.execution.context)
        except liquid.TemplateError as error:
            raise WidgetError(f"Widget {self.name}: {error}") from error

    def prop(self, key: str, default: str = "") -> str:
        value = self.props.get(key)
        return self.render(value).strip() if value not in (None, "") else default

    def int_prop(self, key: str, default: int, low: int, high: int) -> int:
        text = self.prop(key)
        if not text:
            return default
        try:
            value = int(float(text))
        except ValueError as error:
            raise WidgetError(f"Widget {self.name}: {key} {text!r} is not a number.") from error
        if not low <= value <= high:
            raise WidgetError(f"Widget {self.name}: {key} {value} is not between {low} and {high}.")
        return value

    def pairs(self, key: str) -> dict[str, str]:
        rendered = {}
        for item in self.props.get(key) or []:
            if isinstance(item, dict) and item.get("key"):
                rendered[str(item["key"])] = self.render(item.get("value", ""))
        return rendered


# ---------------------------------------------------------------- messages


def _send(run: WidgetRun) -> Message:
    """Send the widget's message through the normal outbound pipeline (opt-out, windows,
    pacing...). From defaults to the flow's address, To to the contact's."""
    execution = run.execution
    service = run.prop("service")
    media = run.prop("media_url")
    request = MessageRequest(
        to=run.prop("to", execution.contact_address),
        from_=run.prop("from", execution.business_address) or None,
        # Studio writes {{trigger.message.InstanceSid}} here; only a service sid is one.
        messaging_service_sid=service if service.startswith("MG") else None,
        body=run.prop("body") or None,
        media_urls=[media] if media else (),
        tags={"flow": execution.flow.sid, "execution": execution.sid},
        direction=Direction.OUTBOUND_REPLY,
    )
    # message_create writes in its own atomic block: a refusal leaves nothing behind.
    return message_create(account=execution.flow.account, request=request, source="flow")


def _outbound(message: Message) -> dict:
    return {
        "Sid": message.sid,
        "Body": message.body,
        "To": message.to_address,
        "From": message.from_address,
        "Status": message.status,
        "MessagingServiceSid": message.service.sid if message.service_id else "",
    }


def _error(error: MessagingError) -> dict:
    return {"code": error.code, "message": error.message}


def send_message(run: WidgetRun) -> Outcome:
    try:
        message = _send(run)
    except MessagingError as error:
        return Outcome("failed", {"error": _error(error)}, error=error.message)
    return Outcome("sent", {"outbound": _outbound(message)})


def send_and_wait(run: WidgetRun) -> Outcome:
    timeout = run.int_prop("timeout", WAIT_TIMEOUT_DEFAULT, 1, WAIT_TIMEOUT_MAX)
    try:
        message = _send(run)
    except MessagingError as error:
        return Outcome("deliveryFailure", {"error": _error(error)}, error=error.message)
    return Outcome(
        data={"outbound": _outbound(message)},
        wait=Waiting.REPLY,
        wait_until=run.now + timedelta(seconds=timeout),
        wait_message=message,
    )


def resume_reply(run: WidgetRun, message: Message) -> Outcome:
    data = dict(run.execution.context["widgets"].get(run.name) or {})
    data["inbound"] = message_fields(message)
    return Outcome("incomingMessage", data, inbound=message)


def resume_timeout(run: WidgetRun) -> Outcome:
    return Outcome("timeout", run.execution.context["widgets"].get(run.name))


def resume_delivery_failure(run: WidgetRun, message: Message) -> Outcome:
    data = dict(run.execution.context["widgets"].get(run.name) or {})
    data["error"] = {"code": message.error_code, "message": message.error_message}
    return Outcome(
        "deliveryFailure",
        data,
        error=f"Message {message.sid} {message.status}: {message.error_code}",
    )


# ---------------------------------------------------------------- logic


def split(run: WidgetRun) -> Outcome:
    value = run.prop("input")
    for transition in run.state.get("transitions") or []:
        if transition.get("event") != "match":
            continue
        conditions = transition.get("conditions") or []
        if conditions and all(_condition(run, value, c) for c in conditions):
            return Outcome("match", {"input": value}, transition=transition)
    return Outcome("noMatch", {"input": value})


def _condition(run: WidgetRun, value: str, condition: dict) -> bool:
    arguments = condition.get("arguments") or []
    tested = run.render(arguments[0]) if arguments else value
    expected = run.render(condition.get("value", ""))
    return condition_matches(
        str(condition.get("type", "")), tested, expected, tz=run.tz, now=run.now
    )


def set_variables(run: WidgetRun) -> Outcome:
    variables = run.execution.context["flow"]["variables"]
    warnings = []
    for item in run.props.get("variables") or []:
        key = str(item.get("key", "")).strip()
        if not key:
            continue
        value: Any = run.render(item.get("value", ""))
        if item.get("type") == "json":
            try:
                value = json.loads(value)
            except ValueError as error:
                warnings.append(f"{key}: not JSON ({error}); kept as text")
        variables[key] = value
    return Outcome("next", {"warnings": warnings} if warnings else None)


# ---------------------------------------------------------------- outside calls


def make_http_request(run: WidgetRun, token: int) -> Outcome:
    method = (run.prop("method") or "GET").upper()
    if method not in ("GET", "POST"):
        raise WidgetError(f"Widget {run.name}: method {method} is not GET or POST.")
    call = HttpCall(
        method=method,
        url=run.prop("url"),
        content_type=run.prop("content_type") or CONTENT_TYPE_FORM,
        parameters=list(run.pairs("parameters").items()),
        body=run.prop("body"),
    )
    return _io(run, IoRequest(kind="http", token=token, http=call))


def run_function(run: WidgetRun, token: int, environment: dict[str, str] | str) -> Outcome:
    """`environment` is the function's variables and secrets, or why it may not run."""
    name = run.prop("function")
    if isinstance(environment, str):
        return Outcome("fail", {"status_code": 500, "error": environment}, error=environment)
    request = IoRequest(
        kind="function",
        token=token,
        function=name,
        parameters=run.pairs("parameters"),
        environment=environment,
        context=run.execution.context,
    )
    return _io(run, request)


def _io(run: WidgetRun, request: IoRequest) -> Outcome:
    deadline = run.now + timedelta(seconds=IO_TIMEOUT_SECONDS + IO_GRACE_SECONDS)
    return Outcome(wait=Waiting.IO, wait_until=deadline, io=request)


def io_outcome(kind: str, result: Any) -> Outcome:
    """The widget's transition and data once its call has returned."""
    if kind == "http":
        data = {
            "status_code": result.status_code,
            "body": clipped(result.body),
            "parsed": result.parsed,
            "content_type": result.content_type,
        }
        event = "success" if result.ok else "failed"
    else:
        data = {
            "status_code": 200 if result.ok else 500,
            "body": clipped(result.body),
            "parsed": result.parsed,
        }
        event = "success" if result.ok else "fail"
    if result.error:
        data["error"] = result.error
    data["elapsed_ms"] = round(result.elapsed_ms, 1)
    return Outcome(event, data, error=result.error)


def io_lost(kind: str) -> Outcome:
    """The call's worker never came back (it crashed or was killed)."""
    http = kind == "make-http-request"
    message = "The call was interrupted (the worker stopped) and was not retried."
    data = {"status_code": None if http else 500, "error": message}
    return Outcome("failed" if http else "fail", data, error=message)
