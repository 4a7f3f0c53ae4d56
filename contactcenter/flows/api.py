"""Studio's REST surface (`/v2/Flows/{FlowSid}/Executions…`), Twilio's wire format:
form-encoded `To`, `From`, `Parameters` (a JSON object as text), Basic auth with the
account sid and auth token (or an API key), Twilio's error body."""

import json
from functools import wraps

from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from contactcenter.flows import engine
from contactcenter.flows.models import Execution, ExecutionStatus, Flow
from contactcenter.flows.services import FlowError, execution_start_rest
from messaging.api.auth import Principal, authenticate
from messaging.api.twilio import error_response
from messaging.errors import MessagingError

BASE = "/v2/Flows"
PAGE_SIZE = 50


def flows_endpoint(methods: tuple[str, ...]):
    """Method check, Basic auth (the view gets the principal), Twilio's error body for
    FlowError and MessagingError (messaging's renderer: 401 names the realm)."""

    def decorate(view):
        @csrf_exempt
        @wraps(view)
        def wrapper(request: HttpRequest, **kwargs):
            try:
                if request.method not in methods:
                    raise FlowError(20004, 405, f"Method {request.method} not allowed.")
                principal = authenticate(request.headers.get("Authorization", ""))
                return view(request, principal, **kwargs)
            except MessagingError as error:
                return error_response(error)
            except FlowError as error:
                return JsonResponse(error.as_twilio(), status=error.status)

        return wrapper

    return decorate


def account_flow(principal: Principal, sid: str) -> Flow:
    flow = Flow.objects.select_related("account").filter(account=principal.account, sid=sid).first()
    if flow is None:
        raise FlowError(20404, 404, f"Flow {sid} was not found.")
    return flow


def studio_endpoint(methods: tuple[str, ...]):
    """flows_endpoint for views under one flow: they get the account's flow in the path."""

    def decorate(view):
        @flows_endpoint(methods)
        @wraps(view)
        def with_flow(request: HttpRequest, principal: Principal, flow_sid: str, **kwargs):
            return view(request, account_flow(principal, flow_sid), **kwargs)

        return with_flow

    return decorate


def execution_json(execution: Execution) -> dict:
    url = f"{BASE}/{execution.flow.sid}/Executions/{execution.sid}"
    return {
        "sid": execution.sid,
        "account_sid": execution.flow.account.sid,
        "flow_sid": execution.flow.sid,
        "contact_channel_address": execution.contact_address,
        "business_channel_address": execution.business_address,
        # Studio's two statuses; ours says also why (`ended_reason`, failed vs ended).
        "status": "active" if execution.status == ExecutionStatus.ACTIVE else "ended",
        "outcome": execution.status,
        "ended_reason": execution.ended_reason,
        "current_widget": execution.current_state,
        "waiting_for": execution.waiting,
        "revision": execution.revision.revision if execution.revision_id else None,
        "draft": execution.draft_definition is not None,
        "date_created": execution.date_created.isoformat(),
        "date_updated": execution.date_updated.isoformat(),
        "url": url,
        "links": {"steps": f"{url}/Steps", "execution_context": f"{url}/Context"},
    }


def request_params(request: HttpRequest) -> dict:
    """The request's parameters: Twilio's form encoding, or a JSON object."""
    if request.content_type != "application/json":
        return request.POST.dict()
    try:
        data = json.loads(request.body or b"{}")
    except ValueError as error:
        raise FlowError(20422, 400, f"The body is not JSON: {error}") from error
    if not isinstance(data, dict):
        raise FlowError(20422, 400, "The body must be a JSON object.")
    return data


def _parameters(request: HttpRequest) -> tuple[str, str, dict]:
    data = request_params(request)
    raw = data.get("Parameters") or {}
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError as error:
            raise FlowError(20422, 400, f"Parameters is not JSON: {error}", "Parameters") from error
    if not isinstance(raw, dict):
        raise FlowError(20422, 400, "Parameters must be a JSON object.", "Parameters")
    to, from_ = data.get("To", ""), data.get("From", "")
    if not isinstance(to, str) or not isinstance(from_, str):
        raise FlowError(20422, 400, "To and From must be text.")
    if "\x00" in to + from_ or _has_nul(raw):
        raise FlowError(20422, 400, "A parameter contains a NUL character.")
    return to, from_, raw


def _has_nul(value) -> bool:
    """NUL anywhere in a parsed JSON value (keys too): PostgreSQL cannot store it."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


@studio_endpoint(("GET", "POST"))
def executions(request: HttpRequest, flow: Flow) -> JsonResponse:
    if request.method == "POST":
        to, from_, parameters = _parameters(request)
        execution = execution_start_rest(flow=flow, to=to, from_=from_, parameters=parameters)
        return JsonResponse(execution_json(execution), status=201)
    listed = flow.executions.select_related("flow", "flow__account", "revision").order_by(
        "-date_created"
    )
    if request.GET.get("Status") in ("active", "ended"):
        active = request.GET["Status"] == "active"
        listed = (
            listed.filter(status=ExecutionStatus.ACTIVE)
            if active
            else listed.exclude(status=ExecutionStatus.ACTIVE)
        )
    page = [execution_json(e) for e in listed[:PAGE_SIZE]]
    return JsonResponse({"executions": page, "meta": {"page_size": PAGE_SIZE, "key": "executions"}})


def _execution(flow: Flow, sid: str) -> Execution:
    execution = (
        Execution.objects.select_related("flow", "flow__account", "revision")
        .filter(flow=flow, sid=sid)
        .first()
    )
    if execution is None:
        raise FlowError(20404, 404, f"Execution {sid} was not found.")
    return execution


@studio_endpoint(("GET", "POST"))
def execution_detail(request: HttpRequest, flow: Flow, execution_sid: str) -> JsonResponse:
    execution = _execution(flow, execution_sid)
    if request.method == "POST":
        if request_params(request).get("Status") != "ended":
            raise FlowError(20422, 400, "Status must be 'ended'.", "Status")
        engine.execution_end(execution.pk, reason="Ended through the API.")
        execution.refresh_from_db()
    return JsonResponse(execution_json(execution))


@studio_endpoint(("GET",))
def execution_steps(request: HttpRequest, flow: Flow, execution_sid: str) -> JsonResponse:
    execution = _execution(flow, execution_sid)
    steps = [
        {
            "sid": step.sid,
            "execution_sid": execution.sid,
            "name": step.name,
            "widget_type": step.widget_type,
            "transitioned_from": step.name,
            "transitioned_to": step.next_state or "Ended",
            "event": step.event,
            "context": step.data,
            "error": step.error,
            "date_created": step.date_created.isoformat(),
        }
        for step in execution.steps.order_by("index", "id")
    ]
    return JsonResponse({"steps": steps, "meta": {"key": "steps"}})


@studio_endpoint(("GET",))
def execution_context(request: HttpRequest, flow: Flow, execution_sid: str) -> JsonResponse:
    execution = _execution(flow, execution_sid)
    return JsonResponse(
        {"execution_sid": execution.sid, "flow_sid": flow.sid, "context": execution.context}
    )
