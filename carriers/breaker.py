"""A circuit breaker per carrier account, shared by every worker through Redis (one Lua script per step).

    closed ──(CARRIER_BREAKER_FAILURES consecutive transient failures)──► open
    open ──(its interval has passed: the next caller is the one probe)──► half-open
    half-open ──(the probe succeeds)──► closed      half-open ──(the probe fails)──► open, interval × 2

While a carrier is down, its lines' send tasks ask `check()` before claiming anything and wait
(re-enqueued with the returned delay) instead of calling: one probe per interval reaches the carrier,
not every batch's retry. The probe is a real call (the batch or lookup of whoever got the "probe"
verdict); any success, probe or not, closes the breaker, so sends resume by themselves. 429s are the
carrier pacing us, not an outage: they are counted neither way. See docs/send-pipeline.md.
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass
from functools import lru_cache

import redis
from django.conf import settings

log = logging.getLogger(__name__)

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"
GO, PROBE, WAIT = "go", "probe", "wait"
# How often callers re-check while a probe is in flight (the probe may end any moment).
PROBE_RECHECK_SECONDS = 2.0
# Idle breaker keys expire: a closed breaker with no failures needs no key at all.
KEY_TTL_SECONDS = 86_400

# KEYS[1]: the account's hash. ARGV: now, probe lease.  → {verdict, wait}
_CHECK = """
local now = tonumber(ARGV[1])
local s = redis.call('HMGET', KEYS[1], 'state', 'open_until', 'probe_until')
local state = s[1] or 'closed'
if state == 'closed' then return {'go', '0'} end
if state == 'open' then
  local open_until = tonumber(s[2]) or 0
  if now < open_until then return {'wait', tostring(open_until - now)} end
else
  local probe_until = tonumber(s[3]) or 0
  if now < probe_until then return {'wait', tostring(math.min(probe_until - now, tonumber(ARGV[3])))} end
end
redis.call('HSET', KEYS[1], 'state', 'half_open', 'probe_until', tostring(now + tonumber(ARGV[2])))
return {'probe', '0'}
"""

# ARGV: now, threshold, min interval, max interval, jitter factor (0.8..1.2), ttl → {old state, new state}
_FAILURE = """
local now = tonumber(ARGV[1])
local s = redis.call('HMGET', KEYS[1], 'state', 'interval')
local state = s[1] or 'closed'
local interval = tonumber(s[2]) or 0
local new = state
if state == 'closed' then
  local failures = redis.call('HINCRBY', KEYS[1], 'failures', 1)
  if failures >= tonumber(ARGV[2]) then
    new = 'open'
    interval = tonumber(ARGV[3])
    redis.call('HSET', KEYS[1], 'opened_at', tostring(now))
  end
elseif state == 'half_open' then
  new = 'open'
  interval = math.min(tonumber(ARGV[4]), math.max(tonumber(ARGV[3]), interval * 2))
end
if new == 'open' and state ~= 'open' then
  redis.call('HSET', KEYS[1], 'state', 'open', 'failures', 0, 'interval', tostring(interval),
             'open_until', tostring(now + interval * tonumber(ARGV[5])))
  redis.call('HINCRBY', KEYS[1], 'opened', 1)
end
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[6]))
return {state, new}
"""

# → the state it was in. A success in any state closes; a closed breaker only forgets its failures.
_SUCCESS = """
local s = redis.call('HMGET', KEYS[1], 'state', 'failures')
local state = s[1] or 'closed'
if state == 'closed' then
  if (tonumber(s[2]) or 0) > 0 then redis.call('HSET', KEYS[1], 'failures', 0) end
  return state
end
redis.call('HSET', KEYS[1], 'state', 'closed', 'failures', 0, 'interval', 0, 'open_until', 0, 'probe_until', 0)
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[1]))
return state
"""


# A probe that made no call (its messages were taken meanwhile): the next caller may probe at once.
_RELEASE = """
if redis.call('HGET', KEYS[1], 'state') == 'half_open' then
  redis.call('HSET', KEYS[1], 'state', 'open', 'open_until', 0, 'probe_until', 0)
end
return 1
"""


@dataclass(frozen=True, slots=True)
class Verdict:
    action: str  # GO, PROBE or WAIT
    wait: float = 0.0  # WAIT: seconds until the next probe may go

    @property
    def allowed(self) -> bool:
        return self.action != WAIT


@lru_cache(maxsize=1)
def _client() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL)


@lru_cache(maxsize=1)
def _scripts():
    client = _client()
    return (
        client.register_script(_CHECK),
        client.register_script(_FAILURE),
        client.register_script(_SUCCESS),
        client.register_script(_RELEASE),
    )


def _key(account_id: int) -> str:
    return f"{settings.REDIS_KEY_PREFIX}:breaker:account:{account_id}"


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def check(*, account_id: int) -> Verdict:
    """May a call to this carrier account go now? GO (closed), PROBE (you are the half-open probe: report
    its result with record_success/record_failure) or WAIT (how long until the next probe)."""
    check_script, _, _, _ = _scripts()
    action, wait = check_script(
        keys=[_key(account_id)],
        args=[time.time(), settings.CARRIER_BREAKER_PROBE_SECONDS, PROBE_RECHECK_SECONDS],
    )
    action = _text(action)
    if action == PROBE:
        log.info("carrier account %s: breaker half-open, probing", account_id)
    return Verdict(action, max(0.0, float(_text(wait))))


def record_failure(*, account_id: int) -> str:
    """A transient failure (timeout, connection error, 5xx) of a call to the account. Returns the state."""
    _, failure_script, _, _ = _scripts()
    old, new = failure_script(
        keys=[_key(account_id)],
        args=[
            time.time(),
            settings.CARRIER_BREAKER_FAILURES,
            settings.CARRIER_BREAKER_OPEN_SECONDS,
            settings.CARRIER_BREAKER_OPEN_MAX_SECONDS,
            random.uniform(0.8, 1.2),  # noqa: S311 - jitter, not crypto
            KEY_TTL_SECONDS,
        ],
    )
    old, new = _text(old), _text(new)
    if new == OPEN and old != OPEN:
        log.warning("carrier account %s: breaker %s → open; its lines' sends pause", account_id, old)
    return new


def record_success(*, account_id: int) -> None:
    """Any answer that shows the carrier is up (2xx, or a 4xx about the request itself)."""
    _, _, success_script, _ = _scripts()
    old = _text(success_script(keys=[_key(account_id)], args=[KEY_TTL_SECONDS]))
    if old != CLOSED:
        log.warning("carrier account %s: breaker %s → closed; sends resume", account_id, old)


def release_probe(*, account_id: int) -> None:
    """The PROBE verdict was not used for a call: hand it to the next caller now."""
    *_, release_script = _scripts()
    release_script(keys=[_key(account_id)])


def state(*, account_id: int) -> dict[str, str]:
    """The breaker's fields as stored (admin, tests, logs); {} for a closed breaker that never failed."""
    raw = _client().hgetall(_key(account_id))
    return {_text(k): _text(v) for k, v in raw.items()}


def is_closed(*, account_id: int) -> bool:
    """Read-only: no probe is taken (the recovery sweep only skips carriers that are down)."""
    return state(account_id=account_id).get("state", CLOSED) == CLOSED


def reset(*, account_id: int) -> None:
    _client().delete(_key(account_id))


def reset_all() -> int:
    """Forget every account's breaker under our key prefix (tests; an operator after an incident)."""
    client = _client()
    keys = list(client.scan_iter(match=f"{settings.REDIS_KEY_PREFIX}:breaker:account:*", count=1000))
    return client.delete(*keys) if keys else 0
