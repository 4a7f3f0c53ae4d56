"""Sending at the slot: a pump's dispatcher thread, apart from its database work.

The pump's own thread plans (a few queries per batch) and records outcomes (a few more);
each of those can take tens of milliseconds. Were the sends on that thread, every slot due
meanwhile would go late, and a sender paced at its limit can never catch up (its window is
full), so each stall would be lost for good. The dispatcher sleeps until the next slot and
sends; it touches no database. Python switches threads at least every few milliseconds, and
the database calls wait on sockets without holding the interpreter, so slots keep time.
"""

import heapq
import itertools
import logging
import math
import threading
import time
from collections import deque
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol

from messaging.delivery.content import content_for
from messaging.models import Message
from messaging.providers import ProviderAdapter, ProviderError

log = logging.getLogger(__name__)


@dataclass
class Outcome:
    message: Message
    provider_message_id: str = ""
    error: ProviderError | None = None


IN_FLIGHT = math.inf
RECHECK_SECONDS = 0.005  # when the send that must leave the window is still in flight


class SendWindow:
    """A sender's actual sends over the last window (local ms): a message may go only when
    the segments already in (now - length, now] plus its own stay within the limit. The
    reserved slots already respect this; the window keeps late sends from bunching up.

    A send counts from when it starts until its provider call returns (`begin`, then
    `finished`): the provider received it somewhere in between, so a send that waits for
    the return to leave the window cannot share a second with it at the provider either,
    however long a thread was kept from running."""

    def __init__(self, *, limit: int, length_ms: float, earlier=()) -> None:
        self.limit = limit
        self.length_ms = length_ms
        self._sends: deque[list] = deque()  # [time ms or IN_FLIGHT, segments], by start
        self._total = 0
        for at_ms, segments in earlier:
            self.add(at_ms, segments)

    def _expire(self, now_ms: float) -> None:
        # From the head only: a call still in flight there holds later ones a moment longer,
        # which can only over-count.
        while self._sends and self._sends[0][0] <= now_ms - self.length_ms:
            self._total -= self._sends.popleft()[1]

    def _live(self, now_ms: float) -> list[list]:
        return sorted(
            (e for e in list(self._sends) if e[0] > now_ms - self.length_ms), key=lambda e: e[0]
        )

    def earliest(self, now_ms: float, segments: int) -> float:
        """The first moment from now on at which `segments` more fit."""
        self._expire(now_ms)
        excess = self._total + segments - self.limit
        if excess <= 0 or not self._sends:
            return now_ms  # (a message longer than the limit goes alone)
        # The oldest sends must leave: all of them, so the latest of their times counts
        # (network calls may return out of order). One still in flight: look again soon.
        latest = -math.inf
        for at_ms, count in self._sends:
            if at_ms == IN_FLIGHT:
                break
            latest = max(latest, at_ms)
            excess -= count
            if excess <= 0:
                return max(now_ms, latest + self.length_ms)
        return now_ms + RECHECK_SECONDS * 1000

    def add(self, at_ms: float, segments: int) -> list:
        """A send known to have reached the provider by `at_ms`."""
        entry = [at_ms, segments]
        self._sends.append(entry)
        self._total += segments
        return entry

    def begin(self, segments: int) -> list:
        """A send starting now; it counts until `finished`."""
        return self.add(IN_FLIGHT, segments)

    @staticmethod
    def finished(entry: list, at_ms: float) -> None:
        entry[0] = at_ms

    def sends_since(self, since_ms: float, now_ms: float) -> list[tuple[float, int]]:
        """Finished sends at or after `since_ms` still in the window, oldest first."""
        return [(at, k) for at, k in self._live(now_ms) if since_ms <= at < IN_FLIGHT]


class Lane(Protocol):
    """What the dispatcher needs of a sender (the engine's SenderPlan)."""

    window: SendWindow
    paused_until: float  # local seconds
    held_until: float  # local seconds: a deferred message of this lane goes first
    adapter: ProviderAdapter | None
    adapter_error: ProviderError | None


class Dispatcher:
    def __init__(self, *, threads: int) -> None:
        self._threads = threads
        self._heap: list[tuple[float, int, Message, Lane]] = []
        self._seq = itertools.count()
        self._wake = threading.Condition()
        self._stopping = False
        self._outcomes: deque[Outcome] = deque()
        self._executor: ThreadPoolExecutor | None = None
        self._thread = threading.Thread(target=self._run, name="delivery-dispatch", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------ the pump's side

    def schedule(self, entries: Iterable[tuple[float, Message, Lane]]) -> None:
        """Send each message at its slot (local epoch seconds), no earlier."""
        with self._wake:
            for slot, message, lane in entries:
                heapq.heappush(self._heap, (slot, next(self._seq), message, lane))
            self._wake.notify()

    def withdraw(self, lane: Lane) -> list[Message]:
        """Take back this lane's messages that have not been sent yet."""
        with self._wake:
            mine = [entry for entry in self._heap if entry[3] is lane]
            if mine:
                self._heap = [entry for entry in self._heap if entry[3] is not lane]
                heapq.heapify(self._heap)
        return [entry[2] for entry in mine]

    def collect(self) -> list[Outcome]:
        taken = []
        while self._outcomes:
            taken.append(self._outcomes.popleft())
        return taken

    def stop(self) -> list[Message]:
        """Stop sending; wait for calls in flight. Returns the messages never sent."""
        with self._wake:
            self._stopping = True
            self._wake.notify()
        self._thread.join()
        if self._executor is not None:
            self._executor.shutdown(wait=True)
        unsent = [entry[2] for entry in self._heap]
        self._heap.clear()
        return unsent

    # ------------------------------------------------------------ the thread

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._stopping:
                    pause = self._heap[0][0] - time.time() if self._heap else None
                    if pause is not None and pause <= 0:
                        break
                    self._wake.wait(pause)
                if self._stopping:
                    return
                _, _, message, lane = heapq.heappop(self._heap)
            try:
                self._dispatch(message, lane)
            except Exception as exc:  # a bug here must not strand the message: retry it
                log.exception("delivery: dispatching %s failed", message.sid)
                error = ProviderError(30008, str(exc), permanent=False)
                self._outcomes.append(Outcome(message=message, error=error))

    def _dispatch(self, message: Message, lane: Lane) -> None:
        now = time.time()
        segments = max(message.num_segments, 1)
        allowed = max(
            lane.window.earliest(now * 1000, segments) / 1000, lane.paused_until, lane.held_until
        )
        if allowed > now:  # late sends bunched up, or a throttle pause: wait
            # Later messages of the lane wait behind this one (same time, later in the heap),
            # so a short message never overtakes a long one that did not fit yet.
            lane.held_until = allowed
            self.schedule([(allowed, message, lane)])
            return
        entry = lane.window.begin(segments)
        if lane.adapter is None:
            self._outcomes.append(Outcome(message=message, error=lane.adapter_error))
        elif lane.adapter.network:
            future = self._pool().submit(send_one, lane.adapter, message)
            future.add_done_callback(lambda done: self._finished(entry, done.result()))
        else:
            self._finished(entry, send_one(lane.adapter, message))

    def _finished(self, entry: list, outcome: Outcome) -> None:
        SendWindow.finished(entry, time.time() * 1000)
        self._outcomes.append(outcome)

    def _pool(self) -> ThreadPoolExecutor:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(
                max_workers=self._threads, thread_name_prefix="delivery-send"
            )
        return self._executor


def send_one(adapter: ProviderAdapter, message: Message) -> Outcome:
    try:
        result = adapter.send(message, content=content_for(message), idempotency_key=message.sid)
    except ProviderError as exc:
        return Outcome(message=message, error=exc)
    except Exception as exc:  # an adapter bug or an unexpected network failure: retry
        log.exception("delivery: %s raised while sending %s", type(adapter).__name__, message.sid)
        return Outcome(message=message, error=ProviderError(30008, str(exc), permanent=False))
    return Outcome(message=message, provider_message_id=result.provider_message_id)
