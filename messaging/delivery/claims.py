"""The delivery engine's database work, in a few statements per batch of senders.

A pump plans many senders at once; a statement per sender (or per message) would cost more
than the sends. So: one SELECT for every sender's next ready messages, one conditional
UPDATE … RETURNING that claims them and writes their history, one UPDATE that records a
batch as sent. PostgreSQL (production) gets statements it plans once whatever the batch
size (arrays, LATERAL, data-modifying CTEs); other databases (SQLite, the embedded default)
get portable SQL, which they plan cheaply anyway.
"""

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from django.db import connection

from messaging.models import Message, MessageStatusChange
from messaging.statuses import Status

# SQLite allows 500 members in a compound SELECT.
SENDERS_PER_UNION = 100


@dataclass(frozen=True)
class Candidate:
    id: int
    sender_id: int
    segments: int
    to_address: str
    # A keyword's answer (the STOP confirmation) goes out although its recipient is blocked.
    keyword_reply: bool = False


def _postgres() -> bool:
    return connection.vendor == "postgresql"


@functools.cache
def _columns() -> dict[str, str]:
    def column(model, name: str) -> str:
        return connection.ops.quote_name(model._meta.get_field(name).column)

    names = (
        "id",
        "sender",
        "num_segments",
        "to_address",
        "keyword_reply",
        "status",
        "not_before",
        "expires_at",
    )
    history = ("message", "status", "source", "error_code", "at")
    return {
        "message": connection.ops.quote_name(Message._meta.db_table),
        "history": connection.ops.quote_name(MessageStatusChange._meta.db_table),
        **{name: column(Message, name) for name in names},
        **{f"h_{name}": column(MessageStatusChange, name) for name in history},
    }


# ---------------------------------------------------------------- candidates


def ready_candidates(wanted: dict[int, int], *, now: datetime) -> list[Candidate]:
    """Up to `wanted[sender_id]` ready queued messages per sender, oldest first (FIFO).

    Ready: queued, past any retry back-off, not expired. Each sender's part reads its
    partial queue index (sender, id) WHERE status = 'queued', so the cost follows what is
    taken, not how long the queues are."""
    if not wanted:
        return []
    stamp = connection.ops.adapt_datetimefield_value(now)
    if _postgres():
        rows = _fetch(
            _ready_lateral_sql(),
            [list(wanted), [max(int(n), 1) for n in wanted.values()], stamp, stamp],
        )
    else:
        rows = []
        items = list(wanted.items())
        for start in range(0, len(items), SENDERS_PER_UNION):
            chunk = items[start : start + SENDERS_PER_UNION]
            member = f"SELECT * FROM ({_ready_member_sql()}) AS q"
            params: list = []
            for sender_id, limit in chunk:
                params += [sender_id, stamp, stamp, max(int(limit), 1)]
            rows += _fetch(" UNION ALL ".join([member] * len(chunk)), params)
    return [Candidate(*row[:4], keyword_reply=bool(row[4])) for row in rows]


def _ready_where() -> str:
    c = _columns()
    return (
        f"{c['status']} = '{Status.QUEUED.value}' "
        f"AND ({c['not_before']} IS NULL OR {c['not_before']} <= %s) "
        f"AND ({c['expires_at']} IS NULL OR {c['expires_at']} > %s)"
    )


@functools.cache
def _ready_lateral_sql() -> str:
    # One plan for any number of senders; a UNION of N members costs N plans (0.2 ms each).
    c = _columns()
    return (
        f"SELECT m.{c['id']}, m.{c['sender']}, m.{c['num_segments']}, m.{c['to_address']}, "
        f"m.{c['keyword_reply']} "
        "FROM unnest(%s::bigint[], %s::int[]) AS w(sender_id, n) CROSS JOIN LATERAL ("
        f"SELECT {c['id']}, {c['sender']}, {c['num_segments']}, {c['to_address']}, "
        f"{c['keyword_reply']} "
        f"FROM {c['message']} WHERE {c['sender']} = w.sender_id AND {_ready_where()} "
        f"ORDER BY {c['id']} LIMIT w.n) AS m"
    )


@functools.cache
def _ready_member_sql() -> str:
    c = _columns()
    return (
        f"SELECT {c['id']}, {c['sender']}, {c['num_segments']}, {c['to_address']}, "
        f"{c['keyword_reply']} "
        f"FROM {c['message']} WHERE {c['sender']} = %s AND {_ready_where()} "
        f"ORDER BY {c['id']} LIMIT %s"
    )


def _fetch(sql: str, params: Sequence) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


# ---------------------------------------------------------------- claim


def claim(
    ids: Sequence[int], *, lease_until: datetime, now: datetime, source: str = "system"
) -> list[Message]:
    """Queued → sending for those of `ids` still queued, with a `sending` history row each.
    The conditional UPDATE is the claim, so two pumps never both take a message. Returns
    the claimed rows as they now are. Call inside a transaction."""
    if not ids:
        return []
    c = _columns()
    stamp = connection.ops.adapt_datetimefield_value
    sets = (
        f"SET {c['status']} = '{Status.SENDING.value}', lease_until = %s, "
        "attempts = attempts + 1, date_updated = %s"
    )
    still_queued = f"{c['status']} = '{Status.QUEUED.value}'"
    if _postgres():
        sql = (
            f"WITH claimed AS (UPDATE {c['message']} {sets} "
            f"WHERE {c['id']} = ANY(%s) AND {still_queued} RETURNING *), "
            f"history AS ({_history_insert_sql('claimed', Status.SENDING, source)}) "
            "SELECT * FROM claimed"
        )
        params = [stamp(lease_until), stamp(now), list(ids), stamp(now)]
        return list(Message.objects.raw(sql, params))
    placeholders = ", ".join(["%s"] * len(ids))
    sql = (
        f"UPDATE {c['message']} {sets} WHERE {c['id']} IN ({placeholders}) "
        f"AND {still_queued} RETURNING *"
    )
    messages = list(Message.objects.raw(sql, [stamp(lease_until), stamp(now), *ids]))
    history_add([m.id for m in messages], status=Status.SENDING, source=source)
    return messages


def _history_insert_sql(source_table: str, status: Status, source: str) -> str:
    """INSERT … SELECT of one history row per row of `source_table` (one %s: the time)."""
    c = _columns()
    return (
        f"INSERT INTO {c['history']} ({c['h_message']}, {c['h_status']}, {c['h_source']}, "
        f"{c['h_at']}) SELECT {c['id']}, '{status.value}', '{source}', %s FROM {source_table}"
    )


def history_add(
    message_ids: Iterable[int], *, status: str, source: str, error_code: int | None = None
) -> None:
    MessageStatusChange.objects.bulk_create(
        MessageStatusChange(message_id=i, status=status, source=source, error_code=error_code)
        for i in message_ids
    )


# ---------------------------------------------------------------- sent


def mark_sent(sent: Sequence[tuple[int, str]], *, now: datetime) -> set[int]:
    """Sending → sent with each provider id and a `sent` history row, for a whole batch.
    Only rows still `sending` move: one the sweeper took back is sent again (same key).
    (Django's bulk_update builds a CASE per row and costs more than the sends themselves.)
    Call inside a transaction."""
    if not sent:
        return set()
    c = _columns()
    stamp = connection.ops.adapt_datetimefield_value(now)
    sets = (
        f"SET {c['status']} = '{Status.SENT.value}', provider_message_id = v.provider_id, "
        "date_sent = COALESCE(date_sent, %s), date_updated = %s, lease_until = NULL"
    )
    match = f"{c['message']}.{c['id']} = v.id AND {c['message']}.{c['status']} = 'sending'"
    if _postgres():
        sql = (
            f"WITH marked AS (UPDATE {c['message']} {sets} "
            "FROM unnest(%s::bigint[], %s::text[]) AS v(id, provider_id) "
            f"WHERE {match} RETURNING {c['message']}.{c['id']}), "
            f"history AS ({_history_insert_sql('marked', Status.SENT, 'provider')}) "
            f"SELECT {c['id']} FROM marked"
        )
        params = [stamp, stamp, [i for i, _ in sent], [p for _, p in sent], stamp]
        return {row[0] for row in _fetch(sql, params)}
    values = ", ".join(["(%s, %s)"] * len(sent))
    sql = (
        f"UPDATE {c['message']} {sets} FROM (SELECT column1 AS id, column2 AS provider_id "
        f"FROM (VALUES {values})) AS v WHERE {match} RETURNING {c['message']}.{c['id']}"
    )
    params = [stamp, stamp]
    for message_id, provider_message_id in sent:
        params += [message_id, provider_message_id]
    updated = {row[0] for row in _fetch(sql, params)}
    history_add(sorted(updated), status=Status.SENT, source="provider")
    return updated
