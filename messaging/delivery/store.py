"""The delivery engine's shared state in Redis: one atomic Lua script per operation.

- `pace:<sender>`  the sender's GCRA "theoretical arrival time" (ms, Redis clock): the first
  moment its next segment may go. Every process reserves slots through `reserve`, so pacing
  is global across Celery workers, never per worker.
- `due`            a sorted set of senders with queued work, scored by the time they should
  next be planned. A pump *leases* a sender by pushing its score into the future, so two
  pumps never plan the same sender at once.
- `window:<sender>` the sender's sends in the last window ("t:k"), so that a message of k
  segments never pushes a one-second window over the limit (GCRA alone would, by k - 1).
- `dirty:<sender>` set when a message is queued; a pump that finds it on release keeps the
  sender due, so a message queued while its sender was leased is never stranded.
- `depth:<sender>` queued segments, for the queue-full refusal (21611/30001); reconciled from
  the database by the tick, so a crash can only skew it for a few seconds.
- `pumps`          live pump tokens scored by expiry: at most DELIVERY_PUMPS pumps run.

Times are milliseconds since the epoch on the Redis server's clock (`TIME`), the one clock
every process shares.
"""

import os
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import redis
from django.conf import settings

_lock = threading.Lock()
_client: tuple[int, str, redis.Redis] | None = None


def client() -> redis.Redis:
    """One Redis client per process, shared by its threads (redis-py's pool is thread-safe):
    under ASGI each request runs in a fresh thread, and a client per thread would open a
    connection per request. Keyed by pid so a forked Celery child never shares sockets."""
    global _client
    pid, url = os.getpid(), settings.REDIS_URL
    cached = _client
    if cached is None or cached[0] != pid or cached[1] != url:
        with _lock:
            cached = _client
            if cached is None or cached[0] != pid or cached[1] != url:
                cached = (pid, url, redis.Redis.from_url(url, socket_timeout=10))
                _client = cached
    return cached[2]


def key(*parts: object) -> str:
    # Read at call time: tests give each test its own prefix.
    return ":".join([settings.DELIVERY_KEY_PREFIX, *map(str, parts)])


_scripts: dict[tuple[int, str], object] = {}


def registered_script(source: str):
    """The script, loaded once per client and then called by its SHA."""
    r = client()
    cache_key = (id(r), source)
    if cache_key not in _scripts:
        _scripts[cache_key] = r.register_script(source)
    return _scripts[cache_key]


_NOW = "local t = redis.call('TIME') local now = t[1] * 1000 + t[2] / 1000\n"

# KEYS[1] pace key (the GCRA time), KEYS[2] window log ("t:k" sends, oldest first).
# ARGV: interval ms per segment, segments per window, window ms, horizon ms, tolerance ms,
# then one segment count per message in queue order. Each message goes at the GCRA time
# (never before the previous send), later if the sends already in its window (t - window, t]
# plus its own segments would pass the limit: GCRA alone lets a k-segment message overshoot
# a window by k - 1. Reserves as many messages as start within the horizon; returns
# {now, next free time, n, the n earlier sends t, k, ..., slots}.
_RESERVE = (
    _NOW
    + """
local interval, limit = tonumber(ARGV[1]), tonumber(ARGV[2])
local window, horizon = tonumber(ARGV[3]), now + tonumber(ARGV[4])
local tolerance = tonumber(ARGV[5])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
-- A sender paused for less than the tolerance (a pump handing over) may catch up.
if tat < now - tolerance then tat = now - tolerance end
local ts, ks = {}, {}
for _, entry in ipairs(redis.call('LRANGE', KEYS[2], 0, -1)) do
  local t, k = string.match(entry, '([^:]+):(%d+)')
  t = tonumber(t)
  if t > now - window then ts[#ts + 1] = t ks[#ks + 1] = tonumber(k) end
end
local result = {string.format('%.3f', now), '', tostring(#ts)}
for i = 1, #ts do
  result[#result + 1] = string.format('%.3f', ts[i])
  result[#result + 1] = tostring(ks[i])
end
local head, total = 1, 0
for i = 1, #ts do total = total + ks[i] end
local reserved = false
for i = 6, #ARGV do
  local k = tonumber(ARGV[i])
  local t = math.max(tat, now)
  if #ts > 0 and ts[#ts] > t then t = ts[#ts] end  -- never before an earlier send
  while true do
    while head <= #ts and ts[head] <= t - window do total = total - ks[head] head = head + 1 end
    if total + k <= limit or head > #ts then break end
    t = ts[head] + window  -- wait for the oldest send in the window to leave it
  end
  if t > horizon then break end
  ts[#ts + 1] = t ks[#ks + 1] = k total = total + k
  result[#result + 1] = string.format('%.3f', t)
  -- The GCRA time moves on from where it was, not from a slot the window delayed: else each
  -- long message would cost a slot for good. The window still bounds every second, and the
  -- lag is capped at one window so that a backlog never turns into a burst.
  tat = math.max(tat, t - window) + k * interval
  reserved = true
end
result[2] = string.format('%.3f', tat)
if reserved then
  local ttl = math.ceil(tat - now) + 3600000
  redis.call('SET', KEYS[1], string.format('%.3f', tat), 'PX', ttl)
  redis.call('DEL', KEYS[2])
  for i = head, #ts do redis.call('RPUSH', KEYS[2], string.format('%.3f:%d', ts[i], ks[i])) end
  redis.call('PEXPIRE', KEYS[2], ttl)
end
return result
"""
)

# KEYS[1] pace key. ARGV[1] a floor (ms): the sender's next slot is at least then. Used after
# sending (actual send time + its slots) and on provider throttling (a pause).
_FLOOR = (
    _NOW
    + """
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
local floor = tonumber(ARGV[1])
if floor > tat then
  redis.call('SET', KEYS[1], tostring(floor), 'PX', math.ceil(math.max(floor - now, 0)) + 3600000)
  return tostring(floor)
end
return tostring(tat)
"""
)

# KEYS[1] due set, KEYS[2] dirty prefix. ARGV: lease ms, limit. Leases the senders due now.
_LEASE = (
    _NOW
    + """
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[2]))
for _, id in ipairs(ids) do
  redis.call('ZADD', KEYS[1], 'XX', now + tonumber(ARGV[1]), id)
  redis.call('DEL', KEYS[2] .. id)
end
return {tostring(now), ids}
"""
)

# KEYS[1] due set, KEYS[2] dirty key, KEYS[3] window log. ARGV: sender id, next planning time
# (ms) or '' when the pump found no more work, the first slot this lease reserved (ms) or '',
# then the sends this lease actually made ("t:k"). Work queued meanwhile (dirty) keeps the
# sender due. The log's entries from this lease become the actual send times, so the next
# reservation (by any pump) counts what really happened, late sends included.
_RELEASE = (
    _NOW
    + """
local nxt = ARGV[2]
if redis.call('DEL', KEYS[2]) == 1 then
  if nxt == '' then nxt = tostring(now) end
end
if nxt == '' then
  redis.call('ZREM', KEYS[1], ARGV[1])
else
  redis.call('ZADD', KEYS[1], tonumber(nxt), ARGV[1])
end
if ARGV[3] ~= '' then
  local since = tonumber(ARGV[3])
  local kept = {}
  for _, entry in ipairs(redis.call('LRANGE', KEYS[3], 0, -1)) do
    if tonumber(string.match(entry, '([^:]+):')) < since then kept[#kept + 1] = entry end
  end
  for i = 4, #ARGV do kept[#kept + 1] = ARGV[i] end
  local ttl = redis.call('PTTL', KEYS[3])
  redis.call('DEL', KEYS[3])
  if #kept > 0 then
    redis.call('RPUSH', KEYS[3], unpack(kept))
    redis.call('PEXPIRE', KEYS[3], math.max(ttl, 3600000))
  end
end
return 1
"""
)

# KEYS[1] due set, KEYS[2] dirty key, KEYS[3] depth key. ARGV: sender id, segments.
_MARK = (
    _NOW
    + """
redis.call('SET', KEYS[2], '1', 'EX', 3600)
redis.call('ZADD', KEYS[1], 'NX', now, ARGV[1])
if tonumber(ARGV[2]) ~= 0 then redis.call('INCRBY', KEYS[3], ARGV[2]) end
return 1
"""
)

# KEYS[1] pumps set. ARGV: token, ttl ms, max pumps.
_ACQUIRE = (
    _NOW
    + """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
  return 1
end
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
return 1
"""
)


@dataclass(frozen=True)
class Reservation:
    now_ms: float  # Redis clock when the slots were reserved
    next_free_ms: float  # the sender's next free slot after these
    earlier: tuple[tuple[float, int], ...]  # sends already in the window: (time ms, segments)
    slots_ms: tuple[float, ...]  # one per message that fits the horizon, in queue order


@dataclass(frozen=True)
class ReserveRequest:
    sender_id: int
    interval_ms: float  # per segment
    limit: int  # segments in any window
    window_ms: float
    horizon_ms: float
    segments: Sequence[int]
    tolerance_ms: float = 0.0  # how far behind now the GCRA time may stay (catch-up)


def _reservation(raw: list) -> Reservation:
    values = [float(v) for v in raw]
    count = int(values[2])
    pairs = values[3 : 3 + 2 * count]
    return Reservation(
        now_ms=values[0],
        next_free_ms=values[1],
        earlier=tuple((pairs[i], int(pairs[i + 1])) for i in range(0, len(pairs), 2)),
        slots_ms=tuple(values[3 + 2 * count :]),
    )


def reserve_many(requests: Sequence[ReserveRequest]) -> list[Reservation]:
    """One script run per sender (atomic per sender), all in one round trip."""
    script = registered_script(_RESERVE)
    pipe = client().pipeline(transaction=False)
    for r in requests:
        script(
            keys=[key("pace", r.sender_id), key("window", r.sender_id)],
            args=[r.interval_ms, r.limit, r.window_ms, r.horizon_ms, r.tolerance_ms]
            + [int(k) for k in r.segments],
            client=pipe,
        )
    return [_reservation(raw) for raw in pipe.execute()]


def reserve(
    sender_id: int,
    *,
    interval_ms: float,
    horizon_ms: float,
    segments: Sequence[int],
    limit: int | None = None,
    window_ms: float = 1000.0,
    tolerance_ms: float = 0.0,
) -> Reservation:
    if limit is None:  # no window limit beyond the GCRA spacing
        limit = sum(segments) + 1_000_000
    request = ReserveRequest(
        sender_id, interval_ms, limit, window_ms, horizon_ms, segments, tolerance_ms
    )
    return reserve_many([request])[0]


def pace_floor(sender_id: int, floor_ms: float) -> float:
    return float(registered_script(_FLOOR)(keys=[key("pace", sender_id)], args=[repr(floor_ms)]))


def lease_due(*, lease_ms: int, limit: int) -> tuple[float, list[int]]:
    script = registered_script(_LEASE)
    now, ids = script(keys=[key("due"), key("dirty", "")], args=[lease_ms, limit])
    return float(now), [int(i) for i in ids]


@dataclass(frozen=True)
class Release:
    sender_id: int
    next_ms: float | None  # when to plan the sender again; None: its queue had no more
    since_ms: float | None = None  # the first slot this lease reserved
    sends: Sequence[tuple[float, int]] = ()  # what this lease actually sent (Redis ms, k)


def release_many(releases: Iterable[Release]) -> None:
    script = registered_script(_RELEASE)
    pipe = client().pipeline(transaction=False)
    count = 0
    for r in releases:
        settle = [] if r.since_ms is None else [f"{r.since_ms:.3f}"]
        settle += [f"{t:.3f}:{int(k)}" for t, k in r.sends] if r.since_ms is not None else []
        script(
            keys=[key("due"), key("dirty", r.sender_id), key("window", r.sender_id)],
            args=[r.sender_id, "" if r.next_ms is None else repr(r.next_ms), *(settle or [""])],
            client=pipe,
        )
        count += 1
    if count:
        pipe.execute()


def release(sender_id: int, *, next_ms: float | None) -> None:
    release_many([Release(sender_id, next_ms)])


def mark_queued(sender_id: int, *, segments: int = 0) -> None:
    """A message is waiting for this sender (call after the commit that queued it)."""
    registered_script(_MARK)(
        keys=[key("due"), key("dirty", sender_id), key("depth", sender_id)],
        args=[sender_id, int(segments)],
    )


def due_count(*, within_ms: float = 0) -> int:
    """Senders due now, or within `within_ms` (not leased, not paced further ahead)."""
    return int(client().zcount(key("due"), "-inf", f"{redis_now_ms() + within_ms:.3f}"))


def redis_now_ms() -> float:
    seconds, micros = client().time()
    return seconds * 1000 + micros / 1000


def depth(sender_id: int) -> int:
    return int(client().get(key("depth", sender_id)) or 0)


def depth_add(amounts: Iterable[tuple[int, int]]) -> None:
    pipe = client().pipeline(transaction=False)
    for sender_id, segments in amounts:
        if segments:
            pipe.incrby(key("depth", sender_id), segments)
    pipe.execute()


def depth_reset(depths: dict[int, int]) -> None:
    """Replace every depth counter with the database's figures (the tick's reconciliation)."""
    r = client()
    existing = {k.decode() for k in r.scan_iter(match=key("depth", "*"), count=1000)}
    wanted = {key("depth", sid): value for sid, value in depths.items()}
    pipe = r.pipeline(transaction=False)
    for stale in existing - set(wanted):
        pipe.delete(stale)
    for name, value in wanted.items():
        pipe.set(name, value)
    pipe.execute()


def pump_acquire(token: str, *, ttl_ms: int, max_pumps: int) -> bool:
    return bool(registered_script(_ACQUIRE)(keys=[key("pumps")], args=[token, ttl_ms, max_pumps]))


def pump_release(token: str) -> None:
    client().zrem(key("pumps"), token)


def pumps_running() -> int:
    r = client()
    r.zremrangebyscore(key("pumps"), "-inf", f"{redis_now_ms():.3f}")
    return int(r.zcard(key("pumps")))


def kick_debounced(window_ms: int) -> bool:
    """True for the first caller in each window: only it needs to start a pump."""
    return bool(client().set(key("kick"), "1", nx=True, px=window_ms))
