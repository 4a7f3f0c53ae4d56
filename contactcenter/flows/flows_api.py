"""Studio's Flow resource: `/v2/Flows`, `/v2/Flows/{sid}`, `/v2/Flows/{sid}/Revisions`,
`/v2/Flows/Validate`. Integrators keep flows in their own repositories and deploy them here:
`Definition` is Studio's JSON (an export imports as it is), `Status=published` publishes.
Errors list every problem with its path (`details.errors`)."""

import json

from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse, JsonResponse

from contactcenter.flows.api import account_flow, flows_endpoint, request_params
from contactcenter.flows.models import ExecutionStatus, Flow, FlowRevision
from contactcenter.flows.selectors import draft_is_published
from contactcenter.flows.services import FlowError, definition_errors, flow_publish
from contactcenter.flows.studio import studio_import
from messaging.api.auth import Principal

BASE = "/v2/Flows"
MAX_DEFINITION_BYTES = 1024 * 1024


def flow_json(flow: Flow) -> dict:
    published = bool(draft_is_published(flow))
    url = f"{BASE}/{flow.sid}"
    return {
        "sid": flow.sid,
        "account_sid": flow.account.sid,
        "friendly_name": flow.friendly_name,
        "definition": flow.definition,
        "status": "published" if published else "draft",
        "revision": flow.published_revision,
        "time_zone": flow.time_zone,
        "date_created": flow.date_created.isoformat(),
        "date_updated": flow.date_updated.isoformat(),
        "url": url,
        "links": {"revisions": f"{url}/Revisions", "executions": f"{url}/Executions"},
    }


def revision_json(revision: FlowRevision) -> dict:
    return {
        "sid": revision.flow.sid,
        "revision": revision.revision,
        "definition": revision.definition,
        "status": "published",
        "published_by": revision.published_by,
        "date_created": revision.date_created.isoformat(),
        "url": f"{BASE}/{revision.flow.sid}/Revisions/{revision.revision}",
    }


def _params(request: HttpRequest) -> dict:
    if len(request.body) > MAX_DEFINITION_BYTES:
        raise FlowError(20422, 400, "The request is larger than 1 MB.")
    return request_params(request)


def _text(params: dict, name: str, *, required: bool = False, limit: int = 64) -> str | None:
    value = params.get(name)
    if value is None or value == "":
        if required:
            raise FlowError(20422, 400, f"{name} is required.", name)
        return None
    if not isinstance(value, str) or "\x00" in value or len(value) > limit:
        raise FlowError(20422, 400, f"{name} must be text of at most {limit} characters.", name)
    return value.strip()


def _definition(params: dict, flow: Flow) -> dict | None:
    """The Definition parameter as our JSON (a Studio export imports as it is); 20422 with
    every problem listed when it is not a valid flow."""
    raw = params.get("Definition")
    if raw is None or raw == "":
        return None
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError as error:
            raise FlowError(20422, 400, f"Definition is not JSON: {error}", "Definition") from error
    result = studio_import(raw)
    errors = [
        *({"path": "states", "message": f"Not supported: {name}"} for name in result.unsupported),
        *(
            {"path": e.path, "message": e.message}
            for e in definition_errors(flow, result.definition)
        ),
    ]
    if errors:
        raise FlowError(
            20422,
            400,
            "The flow definition is not valid: " + "; ".join(e["message"] for e in errors[:5]),
            "Definition",
            extra={"details": {"errors": errors}},
        )
    return result.definition


def _status(params: dict) -> str | None:
    status = _text(params, "Status")
    if status not in (None, "draft", "published"):
        raise FlowError(20422, 400, "Status must be draft or published.", "Status")
    return status


@flows_endpoint(("GET", "POST"))
def flows(request: HttpRequest, principal: Principal) -> JsonResponse:
    account = principal.account
    if request.method == "GET":
        listed = Flow.objects.filter(account=account).select_related("account").order_by("id")
        return JsonResponse(
            {"flows": [flow_json(f) for f in listed[:200]], "meta": {"key": "flows"}}
        )
    params = _params(request)
    name = _text(params, "FriendlyName", required=True)
    status = _status(params)
    flow = Flow(account=account, friendly_name=name)
    definition = _definition(params, flow)
    if definition is None:
        raise FlowError(20422, 400, "Definition is required.", "Definition")
    flow.definition = definition
    try:
        with transaction.atomic():
            flow.save()
            if status == "published":
                flow_publish(flow, by=_by(principal))
    except IntegrityError:
        raise FlowError(
            20409, 409, f"A flow named {name!r} already exists.", "FriendlyName"
        ) from None
    flow.refresh_from_db()
    return JsonResponse(flow_json(flow), status=201)


def _by(principal: Principal) -> str:
    return principal.api_key.sid if principal.api_key else principal.account.sid


@flows_endpoint(("GET", "POST", "DELETE"))
def flow_detail(request: HttpRequest, principal: Principal, flow_sid: str) -> HttpResponse:
    flow = account_flow(principal, flow_sid)
    if request.method == "DELETE":
        if flow.executions.filter(status=ExecutionStatus.ACTIVE).exists():
            raise FlowError(20409, 409, f"Flow {flow.sid} has active executions: end them first.")
        flow.delete()
        return HttpResponse(status=204)
    if request.method == "POST":
        params = _params(request)
        status = _status(params)
        with transaction.atomic():
            name = _text(params, "FriendlyName")
            if name:
                flow.friendly_name = name
            definition = _definition(params, flow)
            if definition is not None:
                flow.definition = definition
            try:
                flow.save()
            except IntegrityError:
                raise FlowError(20409, 409, f"A flow named {name!r} already exists.") from None
            if status == "published":
                flow_publish(flow, by=_by(principal))
        flow.refresh_from_db()
    return JsonResponse(flow_json(flow))


@flows_endpoint(("GET",))
def flow_revisions(request: HttpRequest, principal: Principal, flow_sid: str) -> JsonResponse:
    flow = account_flow(principal, flow_sid)
    revisions = flow.revisions.select_related("flow").order_by("-revision")
    return JsonResponse(
        {"revisions": [revision_json(r) for r in revisions], "meta": {"key": "revisions"}}
    )


@flows_endpoint(("GET",))
def flow_revision(
    request: HttpRequest, principal: Principal, flow_sid: str, revision: int
) -> JsonResponse:
    flow = account_flow(principal, flow_sid)
    found = flow.revisions.select_related("flow").filter(revision=revision).first()
    if found is None:
        raise FlowError(20404, 404, f"Flow {flow.sid} has no revision {revision}.")
    return JsonResponse(revision_json(found))


@flows_endpoint(("POST",))
def flow_validate(request: HttpRequest, principal: Principal) -> JsonResponse:
    """Studio's FlowValidate: `{"valid": true}`, or 400 listing every problem."""
    params = _params(request)
    _text(params, "FriendlyName", required=True)
    if _definition(params, Flow(account=principal.account)) is None:
        raise FlowError(20422, 400, "Definition is required.", "Definition")
    return JsonResponse({"valid": True})
