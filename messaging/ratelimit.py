"""Per-line pacing: a token bucket in Redis shared by every send worker (one Lua script, atomic).

Units are message segments (recipients × segments): US carriers pace a long code at about one
segment per second, and a 3-part text costs three. The bucket holds at most one second of the line's
rate, or one batching window of it when the window is longer (at least one message's worth), so an
idle line may send a short burst and then paces: over any T seconds a line sends at most
capacity + rate × T.
A taker asks for up to `want` units and gets what is available now, or nothing below `min_grant`, plus
how long to wait for `min_grant` more (`take_detail` also returns the units left, to compute the wait
of a different need); units it took but could not use (a lost claim) go back with `refund`.
A blast asks for a whole batch (`batch_units`: the line's rate × the batching window
SEND_BATCH_WINDOW_SECONDS) as its `min_grant`, so it goes out in carrier calls of about r × W
recipients; a conversation message asks for its own segments and goes as soon as they are there.
See docs/send-pipeline.md ("Batching window").
"""

from __future__ import annotations

import time
from functools import lru_cache
from typing import NamedTuple

import redis
from django.conf import settings

# KEYS[1] bucket; ARGV: rate/s, capacity, want, now (s, float), min_grant. → {granted, wait, tokens left}
# State: "tokens" and "ts" in one hash; refill is computed lazily from the elapsed time.
_TAKE = """
local rate = tonumber(ARGV[1])
local cap = tonumber(ARGV[2])
local want = tonumber(ARGV[3])
local now = tonumber(ARGV[4])
local min_grant = tonumber(ARGV[5])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1])
local ts = tonumber(state[2])
if tokens == nil then tokens = cap; ts = now end
if now > ts then tokens = math.min(cap, tokens + (now - ts) * rate); ts = now end
local grant = math.min(want, math.floor(tokens))
if grant < min_grant then grant = 0 end
tokens = tokens - grant
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(ts))
redis.call('EXPIRE', KEYS[1], math.ceil(cap / rate) + 60)
local wait = 0
if grant < want then
  local need = math.max(min_grant, 1)
  wait = math.max(0, (need - tokens) / rate)
end
return {grant, tostring(wait), tostring(tokens)}
"""

_REFUND = """
local cap = tonumber(ARGV[2])
local tokens = tonumber(redis.call('HGET', KEYS[1], 'tokens'))
if tokens == nil then return 0 end
redis.call('HSET', KEYS[1], 'tokens', tostring(math.min(cap, tokens + tonumber(ARGV[1]))))
return 1
"""

# Seconds of rate an idle line may send at once. One second keeps a 1/s line at one message per
# second even after a pause, which is what a long code tolerates.
BURST_SECONDS = 1.0


@lru_cache(maxsize=1)
def _client() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL)


@lru_cache(maxsize=1)
def _scripts():
    client = _client()
    return client.register_script(_TAKE), client.register_script(_REFUND)


def _key(line_id: int) -> str:
    return f"{settings.REDIS_KEY_PREFIX}:ratelimit:line:{line_id}"


def window() -> float:
    """The batching window W in seconds (setting SEND_BATCH_WINDOW_SECONDS; 0 turns batching off)."""
    return max(0.0, float(settings.SEND_BATCH_WINDOW_SECONDS))


def capacity(rate: float, min_grant: int = 1) -> float:
    """One second of rate, or one window of it if the window is longer: the bucket must be able to hold
    a whole batch, or a blast waiting for one would wait forever."""
    return max(rate * max(BURST_SECONDS, window()), float(min_grant), 1.0)


def batch_units(rate: float) -> int:
    """The units a blast waits for before it calls the carrier: r × W, at least 1 and never above the
    capacity, so the bucket can always hold it. (A call's 1,000 recipients are prepare's group size.)"""
    return max(1, min(int(rate * window()), int(capacity(rate))))


class Grant(NamedTuple):
    granted: int
    wait: float  # seconds until `min_grant` more units are there (0 when all of `want` was granted)
    left: float  # units left in the bucket after the grant


def take_detail(*, line_id: int, rate: float, want: int, min_grant: int = 1) -> Grant:
    """Take up to `want` units now, none if fewer than `min_grant` are there.

    min_grant: the smallest useful grant (the first message's segments, or a blast's whole batch);
    below it nothing is taken, so a 3-segment text is never split across refills and a blast never
    calls the carrier for a sliver of its batch.
    """
    take_script, _ = _scripts()
    granted, wait, left = take_script(
        keys=[_key(line_id)], args=[rate, capacity(rate, min_grant), want, time.time(), min_grant]
    )
    return Grant(int(granted), float(wait), float(left))


def wait_for(*, rate: float, need: int, left: float) -> float:
    """Seconds until `need` units are in a bucket that holds `left` now (what a remainder waits)."""
    return max(0.0, (min(float(need), capacity(rate, need)) - left) / rate)


def take(*, line_id: int, rate: float, want: int, min_grant: int = 1) -> tuple[int, float]:
    """take_detail's (granted, seconds until `min_grant` more are available)."""
    g = take_detail(line_id=line_id, rate=rate, want=want, min_grant=min_grant)
    return g.granted, g.wait


def refund(*, line_id: int, rate: float, units: int) -> None:
    if units <= 0:
        return
    _, refund_script = _scripts()
    refund_script(keys=[_key(line_id)], args=[units, capacity(rate)])


def reset(*, line_id: int) -> None:
    _client().delete(_key(line_id))
