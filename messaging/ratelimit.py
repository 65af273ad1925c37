"""Per-line pacing: a token bucket in Redis shared by every send worker (one Lua script, atomic).

Units are message segments (recipients × segments): US carriers pace a long code at about one
segment per second, and a 3-part text costs three. The bucket holds at most `burst` seconds of the
line's rate (at least one message's worth), so an idle line may send a short burst and then paces.
A taker asks for up to `want` units and gets what is available now (possibly 0) plus how long to wait
for the next unit; units it took but could not use (a lost claim) go back with `refund`.
See docs/send-pipeline.md.
"""

from __future__ import annotations

import time
from functools import lru_cache

import redis
from django.conf import settings

# KEYS[1] bucket; ARGV: rate/s, capacity, want, now (s, float), min_grant.
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
return {grant, tostring(wait)}
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


def capacity(rate: float, min_grant: int = 1) -> float:
    return max(rate * BURST_SECONDS, float(min_grant), 1.0)


def take(*, line_id: int, rate: float, want: int, min_grant: int = 1) -> tuple[int, float]:
    """Take up to `want` units now. Returns (granted, seconds until `min_grant` more are available).

    min_grant: the smallest useful grant (the first message's segments); below it nothing is taken,
    so a 3-segment text is never split across refills.
    """
    take_script, _ = _scripts()
    granted, wait = take_script(
        keys=[_key(line_id)], args=[rate, capacity(rate, min_grant), want, time.time(), min_grant]
    )
    return int(granted), float(wait)


def refund(*, line_id: int, rate: float, units: int) -> None:
    if units <= 0:
        return
    _, refund_script = _scripts()
    refund_script(keys=[_key(line_id)], args=[units, capacity(rate)])


def reset(*, line_id: int) -> None:
    _client().delete(_key(line_id))
