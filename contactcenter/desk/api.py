"""The desk's and the supervisor console's REST endpoints (docs/desk.md): snapshots to
resync from and the actions of the pages. Session auth; Django's CSRF check on writes.

Thin: parse and check the input, call one service or selector, answer JSON. Every error is
`{"code", "message", "field"}` with its HTTP status; nothing here answers a 500 for input.
"""

import json
from collections.abc import Callable
from datetime import timedelta
from functools import wraps
from typing import Any

from django.core.files.uploadedfile import UploadedFile
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from contactcenter.desk import selectors, services, supervision
from contactcenter.desk.uploads import attachment_store
from messaging import encoding
from messaging.errors import MessagingError
from routing.errors import RoutingError
from routing.models import Worker

MAX_BODY_CHARS = 1600
MAX_JSON_BYTES = 64 * 1024


class BadRequest(Exception):
    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.message, self.field = message, field


def _error(code: int, message: str, status: int, field: str | None = None) -> JsonResponse:
    return JsonResponse({"code": code, "message": message, "field": field}, status=status)


def endpoint(*, methods: tuple[str, ...], allow: Callable[[Any], bool]):
    """Auth (401 JSON, not a redirect), the role check, JSON input and errors as data."""

    def decorate(view):
        @require_http_methods(list(methods))
        @wraps(view)
        def wrapped(request: HttpRequest, *args, **kwargs):
            if not request.user.is_authenticated:
                return _error(20003, "Sign in first.", 401)
            if not allow(request.user):
                return _error(20403, "Your role does not give access to this.", 403)
            try:
                return view(request, *args, **kwargs)
            except BadRequest as error:
                return _error(20001, error.message, 400, error.field)
            except (RoutingError, MessagingError) as error:
                return _error(error.code, error.message, error.http_status, error.field)

        return wrapped

    return decorate


def _input(request: HttpRequest) -> dict[str, Any]:
    if request.content_type and request.content_type.startswith("multipart/"):
        return {k: request.POST.get(k) for k in request.POST}
    if len(request.body) > MAX_JSON_BYTES:
        raise BadRequest("The request body is larger than 64 KB.")
    if not request.body:
        return {}
    try:
        data = json.loads(request.body)
    except ValueError as error:
        raise BadRequest(f"The request body is not valid JSON: {error}") from error
    if not isinstance(data, dict):
        raise BadRequest("The request body must be a JSON object.")
    return data


def _text(data: dict, key: str, *, required: bool = False, limit: int = 4000) -> str:
    value = data.get(key, "")
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise BadRequest(f"{key} must be text.", key)
    if "\x00" in value:
        raise BadRequest(f"{key} must not contain NUL characters.", key)
    if required and not value.strip():
        raise BadRequest(f"{key} is required.", key)
    if len(value) > limit:
        raise BadRequest(f"{key} is at most {limit} characters.", key)
    return value


def _variables(data: dict) -> dict[str, str]:
    raw = data.get("content_variables") or {}
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError as error:
            raise BadRequest(
                "content_variables must be a JSON object.", "content_variables"
            ) from error
    if not isinstance(raw, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in raw.items()
    ):
        raise BadRequest("content_variables must map names to text.", "content_variables")
    return raw


agent_or_supervisor = selectors.is_desk_user


# ---------------------------------------------------------------- desk


@endpoint(methods=("GET",), allow=agent_or_supervisor)
def state(request):
    return JsonResponse(selectors.desk_state(request.user))


@endpoint(methods=("GET",), allow=agent_or_supervisor)
def conversation(request, sid: str):
    # Reading the snapshot does not mark it read: the page resyncs every held conversation,
    # and only opening one (POST read) means the agent saw it.
    return JsonResponse(selectors.conversation_detail(request.user, sid))


@endpoint(methods=("POST",), allow=agent_or_supervisor)
def message_send(request, sid: str):
    data = _input(request)
    body = _text(data, "body", limit=MAX_BODY_CHARS)
    content_sid = _text(data, "content_sid", limit=34)
    upload: UploadedFile | None = request.FILES.get("file")
    media = (attachment_store(upload, request=request),) if upload else ()
    if not (body.strip() or content_sid or media):
        raise BadRequest("Write a message, attach a file or choose a template.", "body")
    message = services.agent_message_send(
        user=request.user,
        conversation_sid=sid,
        body=body,
        content_sid=content_sid,
        content_variables=_variables(data) if content_sid else None,
        media_urls=media,
    )
    return JsonResponse({"message": selectors.message_json(message)}, status=201)


@endpoint(methods=("POST",), allow=agent_or_supervisor)
def note_create(request, sid: str):
    data = _input(request)
    note = services.note_add(
        user=request.user, conversation_sid=sid, body=_text(data, "body", required=True)
    )
    return JsonResponse({"note": selectors.note_json(note)}, status=201)


@endpoint(methods=("POST",), allow=agent_or_supervisor)
def conversation_read(request, sid: str):
    services.conversation_mark_read(user=request.user, conversation_sid=sid)
    return JsonResponse({"unread": 0})


def _target(data: dict) -> services.TransferTarget:
    return services.TransferTarget(
        queue_sid=_text(data, "queue_sid", limit=34), worker_sid=_text(data, "worker_sid", limit=34)
    )


@endpoint(methods=("POST",), allow=agent_or_supervisor)
def conversation_transfer(request, sid: str):
    handoff = services.conversation_transfer(
        user=request.user, conversation_sid=sid, target=_target(_input(request))
    )
    return JsonResponse({"task_sid": handoff.task.sid})


@endpoint(methods=("POST",), allow=agent_or_supervisor)
def conversation_wrapup(request, sid: str):
    data = _input(request)
    services.conversation_wrapup(
        user=request.user,
        conversation_sid=sid,
        disposition=_text(data, "disposition", limit=40),
        notes=_text(data, "notes"),
    )
    return JsonResponse({"task_status": "wrapping"})


@endpoint(methods=("POST",), allow=agent_or_supervisor)
def conversation_complete(request, sid: str):
    services.conversation_complete(user=request.user, conversation_sid=sid)
    return JsonResponse({"task_status": "completed"})


@endpoint(methods=("POST",), allow=agent_or_supervisor)
def reservation_accept(request, sid: str):
    handoff = services.offer_accept(user=request.user, reservation_sid=sid)
    return JsonResponse({"conversation_sid": handoff.conversation.sid if handoff else None})


@endpoint(methods=("POST",), allow=agent_or_supervisor)
def reservation_reject(request, sid: str):
    services.offer_reject(user=request.user, reservation_sid=sid)
    return JsonResponse({"status": "rejected"})


@endpoint(methods=("POST",), allow=agent_or_supervisor)
def activity(request):
    worker = selectors.worker_of_user(request.user)
    if worker is None:
        raise RoutingError(20404, "You are not set up as a worker; ask an admin to link one.")
    data = _input(request)
    worker = services.activity_change(
        user=request.user,
        worker=worker,
        activity_sid=_text(data, "activity_sid", required=True, limit=34),
    )
    return JsonResponse(selectors.worker_json(worker))


@endpoint(methods=("GET",), allow=agent_or_supervisor)
def encoding_preview(request):
    body = request.GET.get("body", "")[:MAX_BODY_CHARS]
    plain = encoding.analyze(body)
    smart = encoding.analyze(body, smart_encoding=True)
    return JsonResponse(
        {
            "encoding": plain.encoding,
            "segments": plain.segments,
            "characters": len(body),
            "smart_encoding": {
                "encoding": smart.encoding,
                "segments": smart.segments,
                "body": encoding.smart_encode(body),
            },
        }
    )


@endpoint(methods=("GET",), allow=agent_or_supervisor)
def transfer_targets(request):
    return JsonResponse(selectors.transfer_targets(request.user))


# ---------------------------------------------------------------- supervisor


@endpoint(methods=("GET",), allow=selectors.is_supervisor)
def supervisor_state(request):
    workspace = _text(request.GET.dict(), "workspace", limit=34)
    return JsonResponse(selectors.console_state(now=timezone.now(), workspace_sid=workspace))


@endpoint(methods=("GET",), allow=selectors.is_supervisor)
def supervisor_analytics(request):
    raw = request.GET.get("days", "7")
    if raw not in ("1", "7", "30", "90"):
        raise BadRequest("days must be 1, 7, 30 or 90.", "days")
    end = timezone.now()
    return JsonResponse(
        supervision.messaging_analytics(start=end - timedelta(days=int(raw)), end=end)
    )


@endpoint(methods=("POST",), allow=selectors.is_supervisor)
def supervisor_task_transfer(request, sid: str):
    handoff = services.task_transfer(
        user=request.user, task_sid=sid, target=_target(_input(request))
    )
    return JsonResponse({"task_sid": handoff.task.sid})


@endpoint(methods=("POST",), allow=selectors.is_supervisor)
def supervisor_worker_activity(request, sid: str):
    worker = Worker.objects.filter(sid=sid).select_related("activity").first()
    if worker is None:
        raise RoutingError(20404, f"No worker {sid}.")
    data = _input(request)
    worker = services.activity_change(
        user=request.user,
        worker=worker,
        activity_sid=_text(data, "activity_sid", required=True, limit=34),
    )
    return JsonResponse(selectors.worker_json(worker))
