"""The one module that publishes live events to the desk and the supervisor console.

Every event type is a frozen dataclass whose fields are JSON types (checked when the class
is declared, and the payload is serialised once when it is published). Events go to streams:
one per agent (`agent:<worker sid>`), one per conversation (`conversation:<sid>`) and one for
supervisors (`supervisor`). Each stream has a sequence number in Redis that increases by one
per frame, and an epoch that changes if Redis lost the counter; a browser that sees a gap,
a new epoch or a reconnect resyncs that stream from its REST snapshot (docs/desk.md). So
nothing here has to be reliable: the channel layer may drop a frame and nothing is lost.

Publishing happens after commit (`transaction.on_commit`): a rolled-back change is never
announced, and a browser that refetches on the event reads the committed data.
"""

import asyncio
import dataclasses
import json
import logging
import os
import threading
import types
import typing
import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any, ClassVar, Union

from asgiref.sync import SyncToAsync, async_to_sync
from channels.layers import DEFAULT_CHANNEL_LAYER, channel_layers, get_channel_layer
from django.db import transaction
from django.utils import timezone

from messaging.delivery import store

log = logging.getLogger(__name__)

SUPERVISOR_STREAM = "supervisor"
# A stream nobody writes to for this long forgets its counter; its next frame starts a new
# epoch, which a browser still watching treats as "resync". Keeps Redis from growing with
# every conversation ever held.
STREAM_TTL_SECONDS = 7 * 24 * 3600

_JSON_LEAVES = (str, int, float, bool, type(None))


def agent_stream(worker_sid: str) -> str:
    return f"agent:{worker_sid}"


def conversation_stream(conversation_sid: str) -> str:
    return f"conversation:{conversation_sid}"


def group_name(stream: str) -> str:
    """Channel-layer group of a stream (group names allow letters, digits, `-_.`)."""
    return "desk." + stream.replace(":", ".")


# ---------------------------------------------------------------- schemas


def _check_json_type(hint: Any, where: str) -> None:
    origin = typing.get_origin(hint)
    if hint in _JSON_LEAVES or hint is Any:
        return
    if origin in (Union, types.UnionType):
        for arg in typing.get_args(hint):
            _check_json_type(arg, where)
        return
    if origin is list:
        (item,) = typing.get_args(hint) or (Any,)
        _check_json_type(item, where)
        return
    if origin is dict or hint is dict:
        key, value = typing.get_args(hint) or (str, Any)
        if key is not str:
            raise TypeError(f"{where}: JSON object keys are strings, not {key}")
        _check_json_type(value, where)
        return
    raise TypeError(f"{where}: {hint!r} is not a JSON type")


EVENT_TYPES: dict[str, type["LiveEvent"]] = {}


class LiveEvent:
    """Base of every event type; subclasses are frozen dataclasses declared with `@event`."""

    name: ClassVar[str]

    def payload(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def event(name: str):
    """Declare an event type: a frozen dataclass of JSON-typed fields, registered by name."""

    def declare(cls: type) -> type:
        cls = dataclasses.dataclass(frozen=True)(cls)
        for field_name, hint in typing.get_type_hints(cls).items():
            if field_name != "name":
                _check_json_type(hint, f"{name}.{field_name}")
        cls.name = name
        EVENT_TYPES[name] = cls
        return cls

    return declare


JSON = dict[str, Any]


@event("reservation.created")
class ReservationOffered(LiveEvent):
    reservation_sid: str
    task_sid: str
    conversation_sid: str | None
    channel: str
    customer_name: str
    customer_address: str
    queue_name: str | None
    priority: int
    waiting_since: str
    timeout_at: str


@event("reservation.updated")
class ReservationUpdated(LiveEvent):
    reservation_sid: str
    task_sid: str
    conversation_sid: str | None
    status: str
    reason: str


@event("worker.activity")
class WorkerActivityChanged(LiveEvent):
    worker_sid: str
    activity_sid: str
    activity_name: str
    available: bool
    changed_at: str


@event("message.created")
class MessageCreated(LiveEvent):
    message: JSON


@event("message.status")
class MessageStatusChanged(LiveEvent):
    sid: str
    status: str
    error_code: int | None
    error_message: str


@event("note.created")
class NoteCreated(LiveEvent):
    note: JSON


@event("conversation.updated")
class ConversationUpdated(LiveEvent):
    conversation_sid: str
    task_sid: str
    task_status: str
    agent_name: str | None


@event("routing.changed")
class RoutingChanged(LiveEvent):
    event_type: str
    task_sid: str | None
    worker_sid: str | None
    queue_sid: str | None


# ---------------------------------------------------------------- sequence numbers

# Both keys expire together; a missing epoch (Redis restarted, or the stream idled out) is
# recreated, so the frame that follows carries a new epoch and watchers resync.
_NEXT = """
local epoch = redis.call('GET', KEYS[1])
if not epoch then
  epoch = ARGV[1]
  redis.call('SET', KEYS[1], epoch, 'EX', ARGV[2])
  redis.call('DEL', KEYS[2])
else
  redis.call('EXPIRE', KEYS[1], ARGV[2])
end
local seq = redis.call('INCR', KEYS[2])
redis.call('EXPIRE', KEYS[2], ARGV[2])
return {epoch, seq}
"""

_POSITION = """
local epoch = redis.call('GET', KEYS[1])
if not epoch then
  epoch = ARGV[1]
  redis.call('SET', KEYS[1], epoch, 'EX', ARGV[2])
  redis.call('DEL', KEYS[2])
end
return {epoch, tonumber(redis.call('GET', KEYS[2]) or '0')}
"""


def _keys(stream: str) -> list[str]:
    return [store.key("desk", "epoch", stream), store.key("desk", "seq", stream)]


def _run(script: str, stream: str) -> tuple[str, int]:
    epoch, seq = store.registered_script(script)(
        keys=_keys(stream), args=[uuid.uuid4().hex[:12], STREAM_TTL_SECONDS]
    )
    return (epoch.decode() if isinstance(epoch, bytes) else str(epoch)), int(seq)


def stream_position(stream: str) -> dict[str, Any]:
    """Where a stream is now: a snapshot taken after this read includes every frame up to
    `seq`. Read it *before* reading the data of a snapshot."""
    epoch, seq = _run(_POSITION, stream)
    return {"epoch": epoch, "seq": seq}


# ---------------------------------------------------------------- publishing


def _frame(stream: str, live_event: LiveEvent) -> str:
    epoch, seq = _run(_NEXT, stream)
    return json.dumps(
        {
            "type": "event",
            "stream": stream,
            "epoch": epoch,
            "seq": seq,
            "event": live_event.name,
            "at": timezone.now().isoformat(),
            "data": live_event.payload(),
        },
        separators=(",", ":"),
        ensure_ascii=False,
    )


def publish(stream: str, live_event: LiveEvent, *, revoke: str | None = None) -> None:
    """Send `live_event` to everyone watching `stream`, after the current transaction
    commits. `revoke` names a stream the receiving sockets must leave (an agent who no
    longer holds a conversation)."""
    publish_many([(stream, live_event, revoke)])


def publish_many(items: Iterable[tuple[str, LiveEvent, str | None]]) -> None:
    batch = list(items)
    if batch:
        transaction.on_commit(lambda: _send(batch))


def _send(batch: list[tuple[str, LiveEvent, str | None]]) -> None:
    try:
        messages = [
            (group_name(stream), _group_message(stream, live_event, revoke))
            for stream, live_event, revoke in batch
        ]
        _run_on_a_loop(_group_send_all, messages)
    except Exception:  # a live event is a hint; the snapshot is the truth
        log.exception("live events not published: %s", [(s, e.name) for s, e, _ in batch])


_loop_lock = threading.Lock()
# (pid, loop, layer): the loop thread has a channel layer of its own, so that its Redis
# connections never mix with those of the process's shared layer used by other loops.
_publisher: tuple[int, asyncio.AbstractEventLoop, Any] | None = None


def _run_on_a_loop(function, *args) -> None:
    """Run the coroutine function to completion from sync code. Under daphne, on the server's loop
    (asgiref knows it). Elsewhere (Celery workers, scripts) on one long-lived loop thread
    per process: `async_to_sync` there would make a new loop, so a new Redis connection,
    for every publish (~15 ms each in the bench)."""
    if _in_sync_to_async_thread():
        async_to_sync(function)(get_channel_layer(), *args)
        return
    loop, layer = _publisher_loop()
    future = asyncio.run_coroutine_threadsafe(function(layer, *args), loop)
    future.result(timeout=10)


def _in_sync_to_async_thread() -> bool:
    """A sync thread that asgiref runs for an event loop of this process (daphne's)."""
    try:
        asyncio.get_running_loop()
        return False  # sync code called from inside a running loop: async_to_sync refuses
    except RuntimeError:
        pass
    loop = getattr(SyncToAsync.threadlocal, "main_event_loop", None)
    pid = getattr(SyncToAsync.threadlocal, "main_event_loop_pid", None)
    return loop is not None and pid == os.getpid()


def _publisher_loop() -> tuple[asyncio.AbstractEventLoop, Any]:
    global _publisher
    pid = os.getpid()
    with _loop_lock:
        if _publisher is None or _publisher[0] != pid:  # a forked child starts its own
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="desk-events", daemon=True).start()
            _publisher = (pid, loop, channel_layers.make_backend(DEFAULT_CHANNEL_LAYER))
        return _publisher[1], _publisher[2]


def _group_message(stream: str, live_event: LiveEvent, revoke: str | None) -> dict[str, Any]:
    message: dict[str, Any] = {"type": "desk.frame", "text": _frame(stream, live_event)}
    if revoke:
        message["revoke"] = revoke
    return message


async def _group_send_all(layer, messages: list[tuple[str, dict[str, Any]]]) -> None:
    for group, message in messages:  # in order: frames of one stream keep their sequence
        await layer.group_send(group, message)


def iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None
