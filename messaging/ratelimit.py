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

import math
import time
from functools import lru_cache
from typing import NamedTuple

import redis
from django.conf import settings

# KEYS[1] bucket; ARGV: rate/s, capacity, want, now (s, float), min_grant, spacing (s). → {granted, wait,
# tokens left}. State: "tokens" and "ts" in one hash, refill computed lazily from the elapsed time; "call",
# when the line's last batched carrier call started (mark_call): a taker with spacing > 0 gets nothing
# until `spacing` after it.
_TAKE = """
local rate = tonumber(ARGV[1])
local cap = tonumber(ARGV[2])
local want = tonumber(ARGV[3])
local now = tonumber(ARGV[4])
local min_grant = tonumber(ARGV[5])
local spacing = tonumber(ARGV[6])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts', 'call')
local tokens = tonumber(state[1])
local ts = tonumber(state[2])
local call = tonumber(state[3])
if tokens == nil then tokens = cap; ts = now end
if now > ts then tokens = math.min(cap, tokens + (now - ts) * rate); ts = now end
local early = 0
if spacing > 0 and call ~= nil and now < call + spacing then early = call + spacing - now end
local grant = math.min(want, math.floor(tokens))
if grant < min_grant or early > 0 then grant = 0 end
tokens = tokens - grant
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(ts))
redis.call('EXPIRE', KEYS[1], math.ceil(cap / rate) + 60)
local wait = 0
if grant < want then
  local need = math.max(min_grant, 1)
  wait = math.max(0, (need - tokens) / rate, early)
end
return {grant, tostring(wait), tostring(tokens)}
"""

# Never moves the mark back: a call's answer (mark_answered) may come after a later call of the line started.
_MARK_CALL = """
local at = tonumber(ARGV[1])
local cur = tonumber(redis.call('HGET', KEYS[1], 'call'))
if cur == nil or at > cur then redis.call('HSET', KEYS[1], 'call', ARGV[1]) end
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[2]))
return 1
"""

_REFUND = """
local cap = tonumber(ARGV[2])
local tokens = tonumber(redis.call('HGET', KEYS[1], 'tokens'))
if tokens == nil then return 0 end
redis.call('HSET', KEYS[1], 'tokens', tostring(math.min(cap, tokens + tonumber(ARGV[1]))))
return 1
"""

# Added to W between two batched calls of a line (take_detail's spacing): the carrier stamps a call when
# it has read it, a few ms after we start it, and a line's first call (new connection, cold caches) lags
# more than the next; 50 ms keeps two batches out of one 1 s window at the carrier. It costs nothing to a
# single send group, whose remainder is re-published after its call returns (later than this anyway).
CALL_SPACING_SLACK_S = 0.05
# Seconds of rate an idle line may send at once. One second keeps a 1/s line at one message per
# second even after a pause, which is what a long code tolerates.
BURST_SECONDS = 1.0


@lru_cache(maxsize=1)
def _client() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL)


@lru_cache(maxsize=1)
def _scripts():
    client = _client()
    return client.register_script(_TAKE), client.register_script(_REFUND), client.register_script(_MARK_CALL)


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


def take_detail(*, line_id: int, rate: float, want: int, min_grant: int = 1, spacing: float = 0.0) -> Grant:
    """Take up to `want` units now, none if fewer than `min_grant` are there.

    min_grant: the smallest useful grant (the first message's segments, or a blast's whole batch);
    below it nothing is taken, so a 3-segment text is never split across refills and a blast never
    calls the carrier for a sliver of its batch.
    spacing: nothing either until this long after the line's last batched call started (mark_call). The
    bucket spaces grants, but the carrier sees calls: two send groups of one line waiting for the same
    refill each call it a second apart give or take their own latency (a first call with cold caches
    is the slow one), and a 1 s window at the carrier then holds two batches. Spaced from the previous
    call's start, a batch cannot reach the carrier less than W after the one before it.
    """
    take_script, _, _ = _scripts()
    granted, wait, left = take_script(
        keys=[_key(line_id)], args=[rate, capacity(rate, min_grant), want, time.time(), min_grant, spacing]
    )
    return Grant(int(granted), float(wait), float(left))


def mark_call(*, line_id: int, rate: float, at: float | None = None) -> float:
    """A batched carrier call of the line starts now, or at `at` (the `spacing` of the next batched take
    counts from the latest mark). Returns the time marked (unix seconds)."""
    _, _, mark_script = _scripts()
    at = time.time() if at is None else at
    mark_script(keys=[_key(line_id)], args=[at, math.ceil(capacity(rate) / rate) + 60])
    return at


def mark_answered(*, line_id: int, rate: float, answered_at: float) -> float:
    """The line's batched call was answered at `answered_at`: the carrier stamped it before that. The next
    batched take waits `spacing` (W + slack) from the call's start and at least W from its answer (the
    mark moves to answered_at − slack when that is later). A call that took longer than the slack to
    reach the carrier (under load: 90 ms, bench_lines) otherwise let the next one, due W + slack after
    this one started, arrive less than W after it: two batches in one 1 s window at the carrier.
    Returns the mark: the next batched take gets nothing before it + spacing."""
    return mark_call(line_id=line_id, rate=rate, at=answered_at - CALL_SPACING_SLACK_S)


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
    _, refund_script, _ = _scripts()
    refund_script(keys=[_key(line_id)], args=[units, capacity(rate)])


def reset(*, line_id: int) -> None:
    _client().delete(_key(line_id))
