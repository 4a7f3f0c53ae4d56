"""Errors are data: a stable numeric code (Twilio's where one exists), an HTTP status and a
human message. The APIs render them; services raise them."""

from dataclasses import dataclass

from django.utils.translation import gettext_noop

MORE_INFO = "https://www.twilio.com/docs/errors/{code}"

# code → (HTTP status, default message). The API answers in English (the wire format);
# pages translate the message where they show it: gettext(error_message(code)).
CODES: dict[int, tuple[int, str]] = {
    20003: (401, gettext_noop("Authentication Error - invalid username or password")),
    20004: (405, gettext_noop("Method not allowed")),
    20404: (404, gettext_noop("The requested resource was not found")),
    20422: (400, gettext_noop("Invalid parameter")),
    20429: (429, gettext_noop("Too many requests")),
    21211: (400, gettext_noop("Invalid 'To' Phone Number")),
    21408: (400, gettext_noop("Permission to send to this region is not enabled")),
    21602: (400, gettext_noop("Message body is required")),
    21603: (400, gettext_noop("A 'From' phone number or a MessagingServiceSid is required")),
    21604: (400, gettext_noop("A 'To' phone number is required")),
    21606: (
        400,
        gettext_noop("The 'From' address is not a sender of this account for this channel"),
    ),
    21609: (400, gettext_noop("Invalid StatusCallback URL")),
    21610: (400, gettext_noop("Attempt to send to unsubscribed recipient")),
    21611: (
        400,
        gettext_noop("This 'From' number has exceeded the maximum number of queued messages"),
    ),
    21617: (400, gettext_noop("The concatenated message body exceeds the 1600 character limit")),
    21620: (400, gettext_noop("Invalid media URL(s)")),
    21623: (400, gettext_noop("Number of media files exceeds allowed limit")),
    21624: (400, gettext_noop("Invalid validity period value")),
    21655: (400, gettext_noop("The ContentSid is invalid")),
    21656: (400, gettext_noop("The ContentVariables parameter is invalid")),
    21701: (404, gettext_noop("The Messaging Service does not exist")),
    21704: (
        400,
        gettext_noop("The Messaging Service contains no sender that can reach this recipient"),
    ),
    30001: (400, gettext_noop("Queue overflow")),
    30003: (400, gettext_noop("Unreachable destination handset")),
    30005: (400, gettext_noop("Unknown destination handset")),
    30006: (400, gettext_noop("Landline or unreachable carrier")),
    30007: (400, gettext_noop("Message filtered by the carrier")),
    30008: (400, gettext_noop("Unknown error")),
    30036: (400, gettext_noop("Validity period expired")),
    35111: (400, gettext_noop("SendAt is required when ScheduleType is set")),
    35114: (400, gettext_noop("SendAt must be more than 300 seconds in the future")),
    35115: (400, gettext_noop("SendAt cannot be more than 35 days in the future")),
    35116: (400, gettext_noop("ScheduleType must be 'fixed'")),
    35118: (400, gettext_noop("A MessagingServiceSid is required to schedule a message")),
    63016: (400, gettext_noop("Outside the customer service window: use a template")),
}


@dataclass
class MessagingError(Exception):
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

    def as_twilio(self) -> dict:
        return {
            "code": self.code,
            "message": self.message,
            "more_info": MORE_INFO.format(code=self.code),
            "status": self.http_status,
        }


def error_message(code: int | None) -> str:
    if code is None:
        return ""
    return CODES.get(code, (400, "Error"))[1]
