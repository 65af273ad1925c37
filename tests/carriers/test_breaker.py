"""The per-carrier-account circuit breaker against the real Redis: its states, its one probe, and its state
shared with another process (every worker sees the same breaker)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from carriers import breaker

ACCOUNT = 987_654  # no database row needed: the breaker is keyed by the id alone
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def fast_breaker(settings):
    settings.CARRIER_BREAKER_FAILURES = 3
    settings.CARRIER_BREAKER_OPEN_SECONDS = 0.3
    settings.CARRIER_BREAKER_OPEN_MAX_SECONDS = 1.0
    settings.CARRIER_BREAKER_PROBE_SECONDS = 0.5
    breaker.reset(account_id=ACCOUNT)
    yield settings
    breaker.reset(account_id=ACCOUNT)


def _fail(n: int) -> str:
    state = ""
    for _ in range(n):
        state = breaker.record_failure(account_id=ACCOUNT)
    return state


def _wait_until_probe_due() -> None:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if float(breaker.state(account_id=ACCOUNT)["open_until"]) <= time.time():
            return
        time.sleep(0.02)
    raise AssertionError("the open interval never ended")


def test_consecutive_failures_open_it_and_a_success_in_between_resets_the_count(fast_breaker):
    assert _fail(2) == breaker.CLOSED
    breaker.record_success(account_id=ACCOUNT)
    assert _fail(2) == breaker.CLOSED and breaker.check(account_id=ACCOUNT).action == breaker.GO
    assert _fail(1) == breaker.OPEN
    verdict = breaker.check(account_id=ACCOUNT)
    assert verdict.action == breaker.WAIT and 0 < verdict.wait <= 0.3 * 1.2


def test_after_the_interval_exactly_one_caller_probes_and_its_success_closes_it(fast_breaker):
    _fail(3)
    _wait_until_probe_due()
    verdicts = [breaker.check(account_id=ACCOUNT).action for _ in range(5)]
    assert verdicts == [breaker.PROBE] + [breaker.WAIT] * 4
    assert breaker.state(account_id=ACCOUNT)["state"] == breaker.HALF_OPEN
    breaker.record_success(account_id=ACCOUNT)
    assert breaker.check(account_id=ACCOUNT).action == breaker.GO
    assert breaker.is_closed(account_id=ACCOUNT)


def test_a_failed_probe_reopens_it_for_twice_as_long_up_to_the_maximum(fast_breaker):
    _fail(3)
    intervals = []
    for _ in range(4):
        _wait_until_probe_due()
        assert breaker.check(account_id=ACCOUNT).action == breaker.PROBE
        assert breaker.record_failure(account_id=ACCOUNT) == breaker.OPEN
        intervals.append(float(breaker.state(account_id=ACCOUNT)["interval"]))
    assert intervals == [0.6, 1.0, 1.0, 1.0]
    assert int(breaker.state(account_id=ACCOUNT)["opened"]) == 5


def test_a_probe_that_never_reports_back_is_handed_to_the_next_caller(fast_breaker):
    _fail(3)
    _wait_until_probe_due()
    assert breaker.check(account_id=ACCOUNT).action == breaker.PROBE  # its worker dies: no report
    assert breaker.check(account_id=ACCOUNT).action == breaker.WAIT
    time.sleep(0.6)  # the probe lease (0.5 s) has run out
    assert breaker.check(account_id=ACCOUNT).action == breaker.PROBE


def test_a_released_probe_lets_the_next_caller_probe_at_once(fast_breaker):
    _fail(3)
    _wait_until_probe_due()
    assert breaker.check(account_id=ACCOUNT).action == breaker.PROBE
    breaker.release_probe(account_id=ACCOUNT)
    assert breaker.check(account_id=ACCOUNT).action == breaker.PROBE


def test_another_process_sees_the_same_breaker(fast_breaker, settings):
    # given: this process opened the breaker (a long interval, so it is still open in the child)
    settings.CARRIER_BREAKER_OPEN_SECONDS = 60
    _fail(3)
    code = (
        "import django; django.setup(); from carriers import breaker; "
        f"v = breaker.check(account_id={ACCOUNT}); print(v.action, round(v.wait)); "
        f"breaker.record_success(account_id={ACCOUNT})"
    )
    # when: another process (as another worker would) asks, then reports a success
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", "REDIS_KEY_PREFIX": settings.REDIS_KEY_PREFIX},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout.split()
    # then: it was told to wait, and its success closed the breaker for this process too
    assert out[0] == breaker.WAIT and 40 <= int(out[1]) <= 72
    assert breaker.check(account_id=ACCOUNT).action == breaker.GO


def test_the_admin_shows_an_accounts_breaker(fast_breaker, admin_client):
    from django.urls import reverse

    from tests import factories

    account = factories.CarrierAccountFactory()
    change = reverse("admin:carriers_carrieraccount_change", args=[account.pk])
    assert "closed" in admin_client.get(change).content.decode()
    for _ in range(3):
        breaker.record_failure(account_id=account.pk)
    fast_breaker.CARRIER_BREAKER_OPEN_SECONDS = 60
    assert (
        "OPEN: sends paused" in admin_client.get(reverse("admin:carriers_carrieraccount_changelist")).content.decode()
    )
    assert "OPEN: sends paused" in admin_client.get(change).content.decode()
    breaker.reset(account_id=account.pk)
