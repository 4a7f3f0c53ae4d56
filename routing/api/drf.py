"""DRF glue of the routing API: who is calling, what each operation requires, errors as data.

Authentication: HTTP Basic with a username and password, or the Django session of a
signed-in user (CSRF enforced on writes). Unauthenticated calls get 401 (20003).

Permissions are declared per operation with `@access(rule)`; the rules are the engine's
selectors. Object-level checks (an agent and its own worker, reservation or task) happen in
the view, after the lookup, through `worker_for_actor` and friends.

Every error body has one shape: `{"code", "message", "field", "status"}`.
"""

import json
import re
from collections.abc import Callable, Mapping
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError
from django.db.models import ProtectedError, QuerySet
from django.http import Http404
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import OpenApiResponse
from rest_framework import exceptions, serializers, status
from rest_framework.authentication import BasicAuthentication, SessionAuthentication
from rest_framework.parsers import JSONParser
from rest_framework.permissions import IsAuthenticated
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView, set_rollback

from routing.api.serializers import RoutingErrorOutput
from routing.errors import RoutingError
from routing.models import Workspace
from routing.selectors import can_configure, can_supervise, get_by_sid, worker_of_user
from routing.sids import is_sid

REALM = "contactcenter"

# What a ReservationOutput reads, to fetch in a few queries for a whole list.
RESERVATION_RELATED = ("worker", "queue", "task__workflow", "task__task_channel", "task__queue")

# HTTP status → our code, for DRF's own exceptions (Twilio's 20xxx family).
_CODE_FOR_STATUS = {
    400: 20001,
    401: 20003,
    403: 20403,
    404: 20404,
    405: 20004,
    406: 20406,
    409: 20409,
    415: 20415,
}

# Services name model fields; the API names its inputs. Report the name the caller sent.
_API_FIELD = {
    "activity": "activity_sid",
    "workflow": "workflow_sid",
    "default_activity": "default_activity_sid",
    "timeout_activity": "timeout_activity_sid",
}

_UNSAFE_TEXT = re.compile("[\x00\ud800-\udfff]")


# ---------------------------------------------------------------- authentication


class RoutingBasicAuthentication(BasicAuthentication):
    """Username and password (not the messaging API keys: those act for an account)."""

    www_authenticate_realm = REALM

    def authenticate_credentials(self, userid: str, password: str, request: Any = None) -> tuple:
        # PostgreSQL cannot even compare a NUL: refuse it before the user lookup.
        if _UNSAFE_TEXT.search(userid) or _UNSAFE_TEXT.search(password):
            raise exceptions.AuthenticationFailed("Invalid username/password.")
        return super().authenticate_credentials(userid, password, request)


class RoutingSessionAuthentication(SessionAuthentication):
    """The signed-in user's session; DRF enforces the CSRF token on unsafe methods."""


class RoutingBasicScheme(OpenApiAuthenticationExtension):
    target_class = RoutingBasicAuthentication
    name = "routingBasicAuth"

    def get_security_definition(self, auto_schema: Any) -> dict:
        return {"type": "http", "scheme": "basic", "description": "Username and password."}


class RoutingSessionScheme(OpenApiAuthenticationExtension):
    target_class = RoutingSessionAuthentication
    name = "routingCookieAuth"

    def get_security_definition(self, auto_schema: Any) -> dict:
        return {
            "type": "apiKey",
            "in": "cookie",
            "name": "sessionid",
            "description": "The session of a signed-in user; writes need the CSRF token "
            "(X-CSRFToken header).",
        }


class RoutingJSONParser(JSONParser):
    """DRF's JSON parser lets a deeply nested body escape as RecursionError (a 500)."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context=None) -> Any:
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError as error:
            raise exceptions.ParseError("JSON parse error - nested too deeply") from error


# ---------------------------------------------------------------- access rules

Rule = Callable[[Any], bool]


def configure(user: Any) -> bool:
    """Admins: create, change and delete configuration."""
    return can_configure(user)


def supervise(user: Any) -> bool:
    """Supervisors and admins: any task, reservation or worker; statistics and events."""
    return can_supervise(user)


def signed_in(user: Any) -> bool:
    """Any signed-in user; the view then checks the object (an agent's own worker...)."""
    return bool(user and user.is_authenticated)


_REFUSALS = {
    configure: "Only administrators may change the routing configuration.",
    supervise: "Only supervisors and administrators may do this.",
}


def access(rule: Rule) -> Callable:
    """Declare who may call an operation (a view method)."""

    def decorate(method: Callable) -> Callable:
        method.access = rule
        return method

    return decorate


# ---------------------------------------------------------------- errors


def error_body(*, code: int, message: str, field: str | None, http_status: int) -> dict:
    return {"code": code, "message": message, "field": field, "status": http_status}


def _first_error(detail: Any, path: tuple[str, ...] = ()) -> tuple[tuple[str, ...], str]:
    """The first (field path, message) of a DRF error detail, nested or not."""
    if isinstance(detail, dict):
        for key, value in detail.items():
            return _first_error(value, (*path, str(key)))
    if isinstance(detail, list):
        for value in detail:
            return _first_error(value, path)
        return path, "Invalid input."
    return path, str(detail)


def validation_error(detail: Any) -> RoutingError:
    path, text = _first_error(detail)
    path = tuple(p for p in path if p not in ("non_field_errors", "__all__"))
    label = ".".join(path)
    return RoutingError(20001, f"{label}: {text}" if label else text, path[0] if path else None)


def _routing_error(exc: Exception) -> RoutingError | None:
    if isinstance(exc, RoutingError):
        return RoutingError(exc.code, exc.message, _API_FIELD.get(exc.field, exc.field))
    if isinstance(exc, exceptions.ValidationError):
        return validation_error(exc.detail)
    if isinstance(exc, DjangoValidationError):
        return validation_error(exc.message_dict if hasattr(exc, "error_dict") else exc.messages)
    if isinstance(exc, ProtectedError):
        return RoutingError(20409, "Other resources still use this one; remove them first.")
    if isinstance(exc, IntegrityError):
        # A uniqueness race that slipped past validation: the other request won.
        return RoutingError(20409, "This conflicts with an existing resource.")
    return None


def routing_exception_handler(exc: Exception, context: dict) -> Response | None:
    """Render every client error as `{"code", "message", "field", "status"}`; anything else
    is left to Django (a 500 and the logs): it is a bug, not bad input."""
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()

    headers: dict[str, str] = {}
    error = _routing_error(exc)
    if error is not None:
        http_status = error.http_status
        body = error_body(
            code=error.code, message=error.message, field=error.field, http_status=http_status
        )
    elif isinstance(exc, exceptions.APIException):
        http_status = exc.status_code
        if isinstance(exc, exceptions.ParseError):
            message = f"The request body is not valid JSON: {exc.detail}"
        else:
            message = str(exc.detail)
        body = error_body(
            code=_CODE_FOR_STATUS.get(http_status, 20000 + http_status),
            message=message,
            field=None,
            http_status=http_status,
        )
    else:
        return None

    if http_status == status.HTTP_401_UNAUTHORIZED:
        headers["WWW-Authenticate"] = f'Basic realm="{REALM}"'
    set_rollback()
    return Response(body, status=http_status, headers=headers)


# ---------------------------------------------------------------- the base view


def require_sid(sid: str, label: str, prefix: str, *, field: str | None = None) -> str:
    """A sid that cannot exist is a 404 before any query (and NUL never reaches SQL)."""
    if not isinstance(sid, str) or not is_sid(sid, prefix):
        raise RoutingError(20404, f"No {label} {sid!r}.", field)
    return sid


def lookup(
    queryset: QuerySet, sid: Any, *, label: str, prefix: str, field: str | None = None
) -> Any:
    """The object with this sid in `queryset` (already scoped to the workspace), or 20404."""
    require_sid(sid, label, prefix, field=field)
    try:
        return get_by_sid(queryset, sid, label=label)
    except RoutingError as error:
        raise RoutingError(error.code, error.message, field) from error


class RoutingApi(APIView):
    """Authentication, access rules, JSON in and out and the error body, for every view."""

    authentication_classes = [RoutingBasicAuthentication, RoutingSessionAuthentication]
    permission_classes = [IsAuthenticated]
    parser_classes = [RoutingJSONParser]
    renderer_classes = [JSONRenderer]
    throttle_classes: list = []
    # No OPTIONS: DRF's would describe operations without checking who asks.
    http_method_names = ["get", "post", "patch", "delete", "head"]

    def get_exception_handler(self):
        return routing_exception_handler

    def check_permissions(self, request: Request) -> None:
        super().check_permissions(request)  # signed in, else 401
        method = (request.method or "").lower()
        handler = getattr(self, method, None)
        if handler is None or method not in self.http_method_names:
            return  # dispatch answers 405
        rule = getattr(handler, "access", None)
        if rule is None:  # every operation declares its rule; none means nobody
            raise RoutingError(20403)
        if not rule(request.user):
            raise RoutingError(20403, _REFUSALS.get(rule, "You may not do this."))

    @property
    def actor(self) -> str:
        return f"user:{self.request.user.get_username()}"

    @property
    def workspace(self) -> Workspace:
        """The workspace of the URL (every routing path is under one)."""
        if not hasattr(self, "_workspace"):
            self._workspace = lookup(
                Workspace.objects.select_related("default_activity", "timeout_activity"),
                self.kwargs.get("workspace_sid"),
                label="workspace",
                prefix="WS",
            )
        return self._workspace

    def require_member(self) -> None:
        """Supervisors, or a person who works in the URL's workspace (the agent's desk)."""
        user = self.request.user
        if not (can_supervise(user) or worker_of_user(self.workspace, user) is not None):
            raise RoutingError(20403, "You have no worker in this workspace.")

    def body(self, serializer_class: type[serializers.Serializer], *, partial=False) -> dict:
        return self.parse(serializer_class, self.request.data, partial=partial)

    def query(self, serializer_class: type[serializers.Serializer]) -> dict:
        return self.parse(serializer_class, self.request.query_params, strict=False)

    def parse(
        self,
        serializer_class: type[serializers.Serializer],
        data: Any,
        *,
        partial: bool = False,
        strict: bool = True,
    ) -> dict[str, Any]:
        """Validated input, or a 20001 naming the first field at fault. `strict`: a body key
        the operation does not take is refused, so a typo is reported, not ignored."""
        serializer = serializer_class(data=data, partial=partial)
        if strict and isinstance(data, Mapping):
            writable = {name for name, field in serializer.fields.items() if not field.read_only}
            unknown = [key for key in data if key not in writable]
            if unknown:
                # Printable (control characters escaped) and short, whatever was sent.
                name = json.dumps(str(unknown[0])[:64])[1:-1]
                raise RoutingError(
                    20001,
                    f"{name}: not a field this operation accepts "
                    f"({', '.join(sorted(writable)) or 'none'}).",
                    name,
                )
        if not serializer.is_valid():
            raise validation_error(serializer.errors)
        return dict(serializer.validated_data)


# ---------------------------------------------------------------- schema helpers

_ERROR_DESCRIPTIONS = {
    400: "Invalid input (20001), naming the field.",
    401: "Missing or refused credentials (20003).",
    403: "Signed in, but not allowed (20403); or the CSRF token is missing.",
    404: "No such resource in this workspace (20404).",
    409: "The resource is not in a state that allows this (20409).",
}


def errors(*statuses: int) -> dict:
    """The documented error responses of an operation (always 401 and 403)."""
    return {
        code: OpenApiResponse(response=RoutingErrorOutput, description=_ERROR_DESCRIPTIONS[code])
        for code in sorted({*statuses, 401, 403})
    }
