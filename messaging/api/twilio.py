"""The Twilio-compatible REST surface: `/2010-04-01/Accounts/{AccountSid}/Messages...`.

Plain Django views rather than DRF: the wire format is Twilio's (form-encoded input with
repeated keys, Twilio's error body), and these are hot endpoints where every layer costs.
"""

import json
from collections.abc import Callable
from datetime import UTC, datetime, time, timedelta
from functools import wraps
from urllib.parse import urlencode

from django.http import HttpRequest, JsonResponse
from django.utils.dateparse import parse_date, parse_datetime
from django.views.decorators.csrf import csrf_exempt

from messaging.api.auth import Principal, authenticate
from messaging.api.representations import BASE, message_json, rfc2822
from messaging.errors import MessagingError
from messaging.models import Media, Message
from messaging.selectors import message_get, messages_list
from messaging.services.media import media_file_response
from messaging.services.messages import (
    MessageRequest,
    message_cancel,
    message_create,
    message_redact,
)
from messaging.validators import refuse_nul

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000


def error_response(error: MessagingError) -> JsonResponse:
    response = JsonResponse(error.as_twilio(), status=error.http_status)
    if error.http_status == 401:
        response["WWW-Authenticate"] = 'Basic realm="contactcenter"'
    return response


def twilio_endpoint(methods: tuple[str, ...]) -> Callable:
    """Authenticate, check the account in the path, turn MessagingError into Twilio's body."""

    def decorate(view):
        @csrf_exempt
        @wraps(view)
        def wrapper(request: HttpRequest, account_sid: str, **kwargs):
            try:
                if request.method not in methods:
                    raise MessagingError(20004, f"Method {request.method} not allowed.")
                principal = authenticate(request.headers.get("Authorization", ""))
                _refuse_nul_in_filters(request)
                if principal.account.sid != account_sid:
                    raise MessagingError(20404, f"Account {account_sid} was not found.")
                return view(request, principal, **kwargs)
            except MessagingError as error:
                return error_response(error)

        return wrapper

    return decorate


# ---------------------------------------------------------------- parsing


def _refuse_nul_in_filters(request: HttpRequest) -> None:
    # List filters go straight into queries; message_create guards what it writes.
    refuse_nul(**{name: values for name, values in request.GET.lists()})
    if any("\x00" in name for name in request.POST):
        raise MessagingError(20422, "A parameter name contains a NUL character.")


def _bool(value: str | None, name: str) -> bool | None:
    if value is None or value == "":
        return None
    lowered = value.strip().lower()
    if lowered in ("true", "1"):
        return True
    if lowered in ("false", "0"):
        return False
    raise MessagingError(20422, f"{name} must be true or false, not {value!r}.", name)


def _int(value: str | None, name: str, code: int = 20422) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError as exc:
        raise MessagingError(code, f"{name} must be an integer, not {value!r}.", name) from exc


def parse_iso_datetime(value: str | None, name: str) -> datetime | None:
    """ISO 8601; a value without an offset is UTC, as Twilio reads it."""
    if value is None or value.strip() == "":
        return None
    try:
        parsed = parse_datetime(value.strip().replace(" ", "T", 1))
    except ValueError:
        parsed = None
    if parsed is None:
        raise MessagingError(
            20422, f"{name} {value!r} is not an ISO 8601 date-time (2026-11-22T10:00:00Z).", name
        )
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _json_object(value: str | None, name: str, code: int) -> dict | None:
    if value is None or value == "":
        return None
    try:
        parsed = json.loads(value)
    except ValueError as exc:
        raise MessagingError(code, f"{name} is not valid JSON: {exc}.", name) from exc
    if not isinstance(parsed, dict):
        raise MessagingError(code, f"{name} must be a JSON object.", name)
    if any(isinstance(v, dict | list) for v in parsed.values()):
        raise MessagingError(code, f"{name} values must be strings or numbers.", name)
    return {str(k): "" if v is None else str(v) for k, v in parsed.items()}


def _create_request(data) -> MessageRequest:
    return MessageRequest(
        to=data.get("To", ""),
        from_=data.get("From") or None,
        messaging_service_sid=data.get("MessagingServiceSid") or None,
        body=data.get("Body"),
        media_urls=[url for url in data.getlist("MediaUrl") if url != ""],
        content_sid=data.get("ContentSid") or None,
        content_variables=_json_object(data.get("ContentVariables"), "ContentVariables", 21656),
        status_callback=data.get("StatusCallback") or None,
        validity_period=_int(data.get("ValidityPeriod"), "ValidityPeriod", 21624),
        smart_encoded=_bool(data.get("SmartEncoded"), "SmartEncoded"),
        schedule_type=data.get("ScheduleType") or None,
        send_at=parse_iso_datetime(data.get("SendAt"), "SendAt"),
        tags=_json_object(data.get("Tags"), "Tags", 20422) or {},
    )


# ---------------------------------------------------------------- views


@twilio_endpoint(methods=("GET", "POST"))
def messages_collection(request: HttpRequest, principal: Principal):
    if request.method == "POST":
        message = message_create(account=principal.account, request=_create_request(request.POST))
        return _message_response(message, principal, status=201)
    return _list_response(request, principal)


@twilio_endpoint(methods=("GET", "POST"))
def message_instance(request: HttpRequest, principal: Principal, sid: str):
    message = message_get(account=principal.account, sid=sid)
    if request.method == "POST":
        status = request.POST.get("Status")
        if status is not None:
            if status != "canceled":
                raise MessagingError(20422, "Status may only be set to canceled.", "Status")
            message = message_cancel(message=message)
        if "Body" in request.POST:
            if request.POST["Body"] != "":
                raise MessagingError(20422, "Body may only be set to an empty string.", "Body")
            message = message_redact(message=message)
    return _message_response(message, principal)


@twilio_endpoint(methods=("GET",))
def message_media(request: HttpRequest, principal: Principal, sid: str):
    message = message_get(account=principal.account, sid=sid)
    base = f"{BASE.format(account=principal.account.sid)}/Messages/{message.sid}/Media"
    items = [
        {
            "sid": media.sid,
            "account_sid": principal.account.sid,
            "parent_sid": message.sid,
            "content_type": media.content_type or None,
            "uri": f"{base}/{media.sid}.json",
        }
        for media in Media.objects.filter(message=message).order_by("id")
    ]
    return JsonResponse(
        {
            "media_list": items,
            "page": 0,
            "page_size": len(items),
            "first_page_uri": f"{base}.json",
            "next_page_uri": None,
            "previous_page_uri": None,
            "uri": f"{base}.json",
            "start": 0,
            "end": max(len(items) - 1, 0),
        }
    )


def _media_of(principal: Principal, sid: str, media_sid: str) -> Media:
    message = message_get(account=principal.account, sid=sid)
    media = Media.objects.filter(message=message, sid=media_sid).first()
    if media is None:
        raise MessagingError(20404, f"Media {media_sid} of message {sid} was not found.")
    return media


@twilio_endpoint(methods=("GET",))
def message_media_instance(request: HttpRequest, principal: Principal, sid: str, media_sid: str):
    media = _media_of(principal, sid, media_sid)
    base = f"{BASE.format(account=principal.account.sid)}/Messages/{sid}/Media"
    return JsonResponse(
        {
            "sid": media.sid,
            "account_sid": principal.account.sid,
            "parent_sid": sid,
            "content_type": media.content_type or None,
            "date_created": rfc2822(media.date_created),
            "uri": f"{base}/{media.sid}.json",
        }
    )


@twilio_endpoint(methods=("GET",))
def message_media_content(request: HttpRequest, principal: Principal, sid: str, media_sid: str):
    """The file itself, as Twilio serves `.../Media/ME...` (with the account's credentials)."""
    media = _media_of(principal, sid, media_sid)
    return media_file_response(media)


def _message_response(message: Message, principal: Principal, status: int = 200) -> JsonResponse:
    service_sid = message.service.sid if message.service_id else None
    return JsonResponse(message_json(message, principal.account.sid, service_sid), status=status)


def _instant(value: str, name: str) -> datetime:
    """A date (midnight UTC) or an ISO 8601 date-time."""
    day = parse_date(value)
    if day is not None:
        return datetime.combine(day, time.min, tzinfo=UTC)
    return parse_iso_datetime(value, name)


def _date_sent_range(query) -> dict:
    """Twilio's `DateSent` (that day, or that second), `DateSent>` (on or after) and
    `DateSent<` (before), combined into one half-open range."""
    afters, befores = [], []
    if query.get("DateSent"):
        start = _instant(query["DateSent"], "DateSent")
        span = timedelta(days=1) if parse_date(query["DateSent"]) else timedelta(seconds=1)
        afters.append(start)
        befores.append(start + span)
    if query.get("DateSent>"):
        afters.append(_instant(query["DateSent>"], "DateSent>"))
    if query.get("DateSent<"):
        befores.append(_instant(query["DateSent<"], "DateSent<"))
    return {
        "date_sent_after": max(afters) if afters else None,
        "date_sent_before": min(befores) if befores else None,
    }


def _list_response(request: HttpRequest, principal: Principal) -> JsonResponse:
    query = request.GET
    page_size = _int(query.get("PageSize"), "PageSize") or DEFAULT_PAGE_SIZE
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        raise MessagingError(20422, f"PageSize must be 1 to {MAX_PAGE_SIZE}.", "PageSize")
    page = _int(query.get("Page"), "Page") or 0
    token = query.get("PageToken") or None
    result = messages_list(
        account=principal.account,
        to=query.get("To") or None,
        from_=query.get("From") or None,
        page_size=page_size,
        page_token=token,
        **_date_sent_range(query),
    )
    base = f"{BASE.format(account=principal.account.sid)}/Messages.json"
    kept = {
        k: query.get(k)
        for k in ("To", "From", "DateSent", "DateSent<", "DateSent>")
        if query.get(k)
    }

    def page_uri(page_number: int, page_token: str | None) -> str:
        params = {**kept, "PageSize": page_size, "Page": page_number}
        if page_token:
            params["PageToken"] = page_token
        return f"{base}?{urlencode(params)}"

    start = page * page_size
    return JsonResponse(
        {
            "messages": [
                message_json(m, principal.account.sid, m.service.sid if m.service_id else None)
                for m in result.items
            ],
            "page": page,
            "page_size": page_size,
            "start": start,
            "end": start + max(len(result.items) - 1, 0),
            "uri": page_uri(page, token),
            "first_page_uri": page_uri(0, None),
            "next_page_uri": page_uri(page + 1, result.next_token) if result.next_token else None,
            "previous_page_uri": None,
        }
    )
