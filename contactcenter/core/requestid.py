"""Request ids: one per HTTP request, carried into every log line written while serving it."""

import logging
import re
import uuid
from contextvars import ContextVar

from asgiref.sync import iscoroutinefunction, markcoroutinefunction

request_id_var: ContextVar[str] = ContextVar("request_id", default="-")

# Accept a caller's id (a proxy's X-Request-ID) only when it is short and plain.
_SAFE_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
HEADER = "X-Request-ID"


def _incoming_or_new(request) -> str:
    incoming = request.headers.get(HEADER, "")
    return incoming if _SAFE_ID.match(incoming) else uuid.uuid4().hex


class RequestIdMiddleware:
    """Sets request.id and the logging context; echoes the id in the response header.

    Sync and async capable so that it adds no thread switch on async views.
    """

    sync_capable = True
    async_capable = True

    def __init__(self, get_response):
        self.get_response = get_response
        if iscoroutinefunction(get_response):
            markcoroutinefunction(self)

    def __call__(self, request):
        if iscoroutinefunction(self):
            return self.__acall__(request)
        self._start(request)
        response = self.get_response(request)
        response[HEADER] = request.id
        return response

    async def __acall__(self, request):
        self._start(request)
        response = await self.get_response(request)
        response[HEADER] = request.id
        return response

    @staticmethod
    def _start(request) -> None:
        # Not reset on the way out: Django logs 4xx/5xx responses after the middleware
        # chain returns, and those lines must carry the id too. Under ASGI each request
        # runs in its own context; a sync thread's next request sets a new id.
        request.id = _incoming_or_new(request)
        request_id_var.set(request.id)


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        return True


class OneLineFormatter(logging.Formatter):
    """One event, one line: newlines in messages and tracebacks are escaped."""

    def format(self, record: logging.LogRecord) -> str:
        return super().format(record).replace("\r", "\\r").replace("\n", "\\n")
