"""The message lifecycle as an explicit state machine (REFERENCE.md 1).

Delivery receipts arrive out of order, so a transition is applied only when it moves the
message forward: a late `sent` after `delivered` is ignored, never an error.
"""

from enum import StrEnum


class Status(StrEnum):
    ACCEPTED = "accepted"
    SCHEDULED = "scheduled"
    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    DELIVERED = "delivered"
    UNDELIVERED = "undelivered"
    FAILED = "failed"
    READ = "read"
    CANCELED = "canceled"
    RECEIVING = "receiving"
    RECEIVED = "received"


S = Status

# Allowed forward moves. Anything else is stale (ignored) or invalid.
TRANSITIONS: dict[Status, frozenset[Status]] = {
    S.SCHEDULED: frozenset({S.ACCEPTED, S.QUEUED, S.FAILED, S.CANCELED}),
    S.ACCEPTED: frozenset({S.QUEUED, S.FAILED, S.CANCELED}),
    S.QUEUED: frozenset({S.SENDING, S.SENT, S.DELIVERED, S.UNDELIVERED, S.FAILED, S.READ}),
    S.SENDING: frozenset({S.SENT, S.DELIVERED, S.UNDELIVERED, S.FAILED, S.READ}),
    S.SENT: frozenset({S.DELIVERED, S.UNDELIVERED, S.FAILED, S.READ}),
    S.DELIVERED: frozenset({S.READ}),
    S.UNDELIVERED: frozenset(),
    S.FAILED: frozenset(),
    S.READ: frozenset(),
    S.CANCELED: frozenset(),
    S.RECEIVING: frozenset({S.RECEIVED}),
    S.RECEIVED: frozenset(),
}

OUTBOUND_INITIAL = frozenset({S.ACCEPTED, S.SCHEDULED, S.QUEUED})
TERMINAL = frozenset(s for s, nxt in TRANSITIONS.items() if not nxt)
# Not yet handed to a provider: these may still be canceled, expired or refused.
UNDISPATCHED = frozenset({S.SCHEDULED, S.ACCEPTED, S.QUEUED})
FAILURES = frozenset({S.FAILED, S.UNDELIVERED})


def can_move(current: str, new: str) -> bool:
    return Status(new) in TRANSITIONS[Status(current)]


def is_terminal(status: str) -> bool:
    return Status(status) in TERMINAL
