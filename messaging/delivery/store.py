"""The delivery engine's shared state in Redis: one atomic Lua script per operation.

- `pace:<sender>`  the sender's GCRA "theoretical arrival time" (ms, Redis clock): the first
  moment its next segment may go. Every process reserves slots through `reserve`, so pacing
  is global across Celery workers, never per worker.
- `due`            a sorted set of senders with queued work, scored by the time they should
  next be planned. A pump *leases* a sender by pushing its score into the future, so two
  pumps never plan the same sender at once.
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

_local = threading.local()


def client() -> redis.Redis:
    """A Redis client per process (and thread): a forked Celery child never shares sockets."""
    pid = os.getpid()
    cached = getattr(_local, "client", None)
    if cached is None or cached[0] != pid:
        cached = (pid, redis.Redis.from_url(settings.REDIS_URL, socket_timeout=10))
        _local.client = cached
    return cached[1]


def key(*parts: object) -> str:
    # Read at call time: tests give each test its own prefix.
    return ":".join([settings.DELIVERY_KEY_PREFIX, *map(str, parts)])


_scripts: dict[tuple[int, str], object] = {}


def _script(source: str):
    r = client()
    cache_key = (id(r), source)
    if cache_key not in _scripts:
        _scripts[cache_key] = r.register_script(source)
    return _scripts[cache_key]


_NOW = "local t = redis.call('TIME') local now = t[1] * 1000 + t[2] / 1000\n"

# KEYS[1] pace key. ARGV: interval ms per segment, horizon ms, then one segment count per
# message in queue order. Reserves consecutive slots for as many messages as start within
# the horizon; returns {now, next free time, slot...}.
_RESERVE = (
    _NOW
    + """
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local interval = tonumber(ARGV[1])
local horizon = now + tonumber(ARGV[2])
local result = {tostring(now), '', }
for i = 3, #ARGV do
  if tat > horizon then break end
  result[#result + 1] = tostring(tat)
  tat = tat + tonumber(ARGV[i]) * interval
end
result[2] = tostring(tat)
redis.call('SET', KEYS[1], tostring(tat), 'PX', math.ceil(tat - now) + 3600000)
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

# KEYS[1] due set, KEYS[2] dirty key. ARGV: sender id, next planning time (ms) or '' when the
# pump found no more work. Work queued meanwhile (dirty) keeps the sender due.
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
    slots_ms: tuple[float, ...]  # one per message that fits the horizon, in queue order


def reserve(sender_id: int, *, interval_ms: float, horizon_ms: float, segments: Sequence[int]):
    raw = _script(_RESERVE)(
        keys=[key("pace", sender_id)], args=[repr(interval_ms), repr(horizon_ms), *segments]
    )
    values = [float(v) for v in raw]
    return Reservation(now_ms=values[0], next_free_ms=values[1], slots_ms=tuple(values[2:]))


def pace_floor(sender_id: int, floor_ms: float) -> float:
    return float(_script(_FLOOR)(keys=[key("pace", sender_id)], args=[repr(floor_ms)]))


def lease_due(*, lease_ms: int, limit: int) -> tuple[float, list[int]]:
    now, ids = _script(_LEASE)(keys=[key("due"), key("dirty", "")], args=[lease_ms, limit])
    return float(now), [int(i) for i in ids]


def release(sender_id: int, *, next_ms: float | None) -> None:
    _script(_RELEASE)(
        keys=[key("due"), key("dirty", sender_id)],
        args=[sender_id, "" if next_ms is None else repr(next_ms)],
    )


def mark_queued(sender_id: int, *, segments: int = 0) -> None:
    """A message is waiting for this sender (call after the commit that queued it)."""
    _script(_MARK)(
        keys=[key("due"), key("dirty", sender_id), key("depth", sender_id)],
        args=[sender_id, int(segments)],
    )


def due_count() -> int:
    """Senders due now (not leased, not paced into the future)."""
    return int(client().zcount(key("due"), "-inf", f"{redis_now_ms():.3f}"))


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
    return bool(_script(_ACQUIRE)(keys=[key("pumps")], args=[token, ttl_ms, max_pumps]))


def pump_release(token: str) -> None:
    client().zrem(key("pumps"), token)


def pumps_running() -> int:
    r = client()
    r.zremrangebyscore(key("pumps"), "-inf", f"{redis_now_ms():.3f}")
    return int(r.zcard(key("pumps")))


def kick_debounced(window_ms: int) -> bool:
    """True for the first caller in each window: only it needs to start a pump."""
    return bool(client().set(key("kick"), "1", nx=True, px=window_ms))
