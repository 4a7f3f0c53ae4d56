"""DRF glue for the native API: who is calling (a `Principal`), and errors as data.

Authentication: HTTP Basic with the account sid + auth token or an API key sid + secret (the
same check as the Twilio-compatible API), or else the Django session of a signed-in staff
user, who acts for the deployment's default account. Every error body has one shape:
`{"code", "message", "field", "status"}`.
"""

import re
from typing import Any

from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions, status
from rest_framework.authentication import BaseAuthentication, SessionAuthentication
from rest_framework.parsers import JSONParser
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import set_rollback

from messaging.api.auth import Principal, authenticate
from messaging.errors import MessagingError

REALM = "contactcenter"

# HTTP status → our code, for DRF's own exceptions (Twilio's 20xxx family).
_CODE_FOR_STATUS = {
    400: 20422,
    401: 20003,
    403: 20403,
    404: 20404,
    405: 20004,
    406: 20406,
    415: 20415,
    429: 20429,
}


class PrincipalAuthenticationFailed(exceptions.AuthenticationFailed):
    """Basic credentials were refused; carries the MessagingError that said why."""

    def __init__(self, error: MessagingError) -> None:
        super().__init__(error.message)
        self.error = error


class MessagingAuthentication(BaseAuthentication):
    """`request.auth` becomes a `Principal`; `request.user` is the staff user or anonymous."""

    def authenticate(self, request: Request) -> tuple[Any, Principal] | None:
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if header:
            try:
                principal = authenticate(header)
            except MessagingError as error:
                raise PrincipalAuthenticationFailed(error) from error
            return AnonymousUser(), principal
        return self._session(request)

    def _session(self, request: Request) -> tuple[Any, Principal] | None:
        # The Django request's user, set by AuthenticationMiddleware from the session cookie.
        user = getattr(request._request, "user", None)
        if user is None or not user.is_authenticated:
            return None
        if not (user.is_active and (user.is_staff or user.is_superuser)):
            raise exceptions.PermissionDenied(
                "Only administrators may use the API with a signed-in session; "
                "use an API key instead."
            )
        SessionAuthentication().enforce_csrf(request)
        from messaging.services.accounts import account_get_or_create_default

        return user, Principal(account=account_get_or_create_default())

    def authenticate_header(self, request: Request) -> str:
        return f'Basic realm="{REALM}"'


class SafeJSONParser(JSONParser):
    """DRF's JSON parser lets a deeply nested body escape as RecursionError (a 500)."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context=None) -> Any:
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError as error:
            raise exceptions.ParseError("JSON parse error - nested too deeply") from error


class HasPrincipal(BasePermission):
    def has_permission(self, request: Request, view: Any) -> bool:
        return isinstance(request.auth, Principal)


class MessagingAuthenticationScheme(OpenApiAuthenticationExtension):
    """How drf-spectacular documents `MessagingAuthentication`."""

    target_class = MessagingAuthentication
    name = ["basicAuth", "cookieAuth"]

    def get_security_requirement(self, auto_schema: Any) -> list[dict]:
        return [{name: []} for name in self.name]  # either one, not both

    def get_security_definition(self, auto_schema: Any) -> list[dict]:
        return [
            {
                "type": "http",
                "scheme": "basic",
                "description": "Account sid + auth token, or API key sid (SK…) + secret.",
            },
            {
                "type": "apiKey",
                "in": "cookie",
                "name": "sessionid",
                "description": "The session of a signed-in administrator.",
            },
        ]


# ---------------------------------------------------------------- errors


def error_body(*, code: int, message: str, field: str | None, http_status: int) -> dict:
    return {"code": code, "message": message, "field": field, "status": http_status}


def _first_error(detail: Any, path: tuple[str, ...] = ()) -> tuple[tuple[str, ...], str, str]:
    """The first (field path, message, DRF code) of a DRF error detail, nested or not."""
    if isinstance(detail, dict):
        for key, value in detail.items():
            return _first_error(value, (*path, str(key)))
    if isinstance(detail, list):
        for value in detail:
            return _first_error(value, path)
        return path, "Invalid input.", "invalid"
    return path, str(detail), getattr(detail, "code", "invalid") or "invalid"


def validation_error(
    detail: Any, error_codes: dict[tuple[str, str], int] | None = None
) -> MessagingError:
    """A DRF validation error detail as a MessagingError.

    `error_codes` maps (field, DRF code) to a domain code, e.g. a missing `to` → 21604.
    """
    path, text, drf_code = _first_error(detail)
    path = tuple(p for p in path if p != "non_field_errors")
    field = path[0] if path else None
    code = (error_codes or {}).get((field or "", drf_code), 20422)
    label = ".".join(path)
    return MessagingError(code, f"{label}: {text}" if label else text, field)


def native_field(name: str | None) -> str | None:
    """The services name fields as Twilio's API does (`To`, `MediaUrl`); ours are snake_case."""
    if not name or not name[0].isupper():
        return name
    if name == "MediaUrl":
        return "media_urls"
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _messaging_error(exc: Exception) -> MessagingError | None:
    if isinstance(exc, PrincipalAuthenticationFailed):
        return exc.error
    if isinstance(exc, MessagingError):
        return MessagingError(exc.code, exc.message, native_field(exc.field))
    if isinstance(exc, exceptions.ValidationError):
        return validation_error(exc.detail)
    if isinstance(exc, DjangoValidationError):
        detail = exc.message_dict if hasattr(exc, "error_dict") else exc.messages
        return validation_error(detail)
    return None


def native_exception_handler(exc: Exception, context: dict) -> Response | None:
    """Render every client error as `{"code", "message", "field", "status"}`.

    Anything else is left to Django (a 500 and the logs): it is a bug, not bad input.
    """
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()

    headers: dict[str, str] = {}
    error = _messaging_error(exc)
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
        if isinstance(exc, exceptions.Throttled) and exc.wait is not None:
            headers["Retry-After"] = str(int(exc.wait))
    else:
        return None

    if http_status == status.HTTP_401_UNAUTHORIZED:
        headers["WWW-Authenticate"] = getattr(exc, "auth_header", None) or (
            f'Basic realm="{REALM}"'
        )
    set_rollback()
    return Response(body, status=http_status, headers=headers)
