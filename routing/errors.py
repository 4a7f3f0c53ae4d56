"""Errors are data: a stable code, an HTTP status and a human message. Services raise them;
the API renders them as `{"code", "message", "field", "status"}`."""

from dataclasses import dataclass

from django.utils.translation import gettext_noop

# code → (HTTP status, default message). Codes follow Twilio's where one exists.
CODES: dict[int, tuple[int, str]] = {
    20001: (400, gettext_noop("Invalid parameter")),
    20003: (401, gettext_noop("Authentication required")),
    20403: (403, gettext_noop("You may not act on this resource")),
    20404: (404, gettext_noop("The requested resource was not found")),
    20409: (409, gettext_noop("The resource is not in a state that allows this")),
}


@dataclass
class RoutingError(Exception):
    code: int
    message: str = ""
    field: str | None = None

    def __post_init__(self) -> None:
        if not self.message:
            self.message = CODES.get(self.code, (400, "Error"))[1]
        super().__init__(f"{self.code}: {self.message}")

    @property
    def http_status(self) -> int:
        return CODES.get(self.code, (400, ""))[0]


def invalid(field: str | None, message: str) -> RoutingError:
    return RoutingError(20001, message, field)


def conflict(message: str) -> RoutingError:
    return RoutingError(20409, message)
