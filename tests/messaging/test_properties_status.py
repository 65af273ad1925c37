"""Property tests of the message status machine (messaging/status.py) and of the one code path that
applies it (messages_apply_statuses), against the real database.

"Rank" here is the progress phase of a message, written independently of the code:
  0 queued · 1 ours, before the carrier (scheduled, prepared, sending) · 2 sent · 3 unknown · 4 verdict.
Inside phase 1 the table deliberately allows two retreats — PREPARED → SCHEDULED (quiet hours found at
send time) and SENDING → PREPARED (a claim whose carrier call provably never left) — so the phase, not
the finer step, is what may never go down.
"""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from messaging.models import Message
from messaging.services.status import _ALLOWED_PAIRS, _RANK, StatusUpdate, messages_apply_statuses
from messaging.status import (
    FINAL,
    TRANSITIONS,
    IllegalTransition,
    MessageStatus,
    can_transition,
    check_transition,
    sources_for,
)
from postprocessing.events import STATUS_EVENTS
from postprocessing.models import Event
from tests.factories import MessageFactory

S = MessageStatus
ALL = list(S.values)
PHASE = {
    S.QUEUED: 0,
    S.SCHEDULED: 1,
    S.PREPARED: 1,
    S.SENDING: 1,
    S.SENT: 2,
    S.UNKNOWN: 3,
    S.DELIVERED: 4,
    S.UNDELIVERED: 4,
    S.FAILED: 4,
    S.BLOCKED: 4,
    S.CANCELED: 4,
    S.RECEIVED: 4,
}
# Statuses nothing may move out of.
TERMINAL = {s for s in ALL if not TRANSITIONS[s]}
CARRIER_VERDICTS = {S.DELIVERED, S.UNDELIVERED, S.FAILED}
RETREATS = {(S.PREPARED, S.SCHEDULED), (S.SENDING, S.PREPARED)}

status = st.sampled_from(ALL)
batches = st.lists(st.lists(status, min_size=1, max_size=4), min_size=1, max_size=6)


def test_every_status_has_a_row_and_a_phase():
    assert set(TRANSITIONS) == set(ALL) == set(PHASE) == set(_RANK)


# Every (from, to) pair, 12 × 12 = 144: exhaustive is cheap, so nothing is left to sampling.
PAIRS = [(src, dst) for src in ALL for dst in ALL]


def test_the_pairs_are_all_144():
    assert len(ALL) == 12 and len(set(PAIRS)) == 144


def test_table_moves_never_lower_the_phase():
    for src, dst in PAIRS:
        if can_transition(src, dst):
            assert PHASE[dst] >= PHASE[src], (src, dst)
            # the finer rank used to pick among duplicates only goes down on the two documented retreats
            assert _RANK[dst] > _RANK[src] or (src, dst) in RETREATS, (src, dst)
        # nothing leaves a terminal status, and a move to itself is never a move
        if src in TERMINAL or src == dst:
            assert not can_transition(src, dst), (src, dst)


def test_sources_for_is_the_table_read_backwards():
    for target in ALL:
        assert sources_for(target) == tuple(sorted(s for s in ALL if target in TRANSITIONS[s]))
    for src, dst in PAIRS:
        assert (src in sources_for(dst)) == can_transition(src, dst), (src, dst)


def test_check_transition_raises_exactly_off_table():
    for src, dst in PAIRS:
        if dst in TRANSITIONS[src]:
            check_transition(src, dst)
            assert f"{src}>{dst}" in _ALLOWED_PAIRS
        else:
            with pytest.raises(IllegalTransition):
                check_transition(src, dst)
            assert f"{src}>{dst}" not in _ALLOWED_PAIRS, (src, dst)
    assert len(_ALLOWED_PAIRS) == sum(len(t) for t in TRANSITIONS.values())


def test_final_statuses():
    # Terminal statuses are final; "unknown" is final for bookkeeping but a carrier verdict still wins.
    assert TERMINAL <= FINAL
    assert {S.UNKNOWN} == FINAL - TERMINAL
    assert TRANSITIONS[S.UNKNOWN] == CARRIER_VERDICTS


@pytest.mark.django_db
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(start=status, batches=batches)
def test_applying_any_sequence_only_moves_forward(start, batches):
    # given: a message in any status
    message = MessageFactory(status=start)
    current = start
    for batch in batches:
        events_before = Event.objects.filter(message_id=message.pk).count()
        # when: any batch of reports, legal or not, duplicated or not, arrives
        changed = messages_apply_statuses(updates=[StatusUpdate(message.pk, s) for s in batch])
        new = Message.objects.values_list("status", flat=True).get(pk=message.pk)
        # then
        assert PHASE[new] >= PHASE[current], (current, batch, new)
        if current in TERMINAL:
            assert new == current
        if current == S.UNKNOWN:
            assert new in CARRIER_VERDICTS | {S.UNKNOWN}
        if new != current:
            assert can_transition(current, new)
            assert new in batch
            assert changed == {message.pk: new}
            expected_events = 1 if new in STATUS_EVENTS else 0
            assert Event.objects.filter(message_id=message.pk).count() == events_before + expected_events
        else:
            assert changed == {}
            assert Event.objects.filter(message_id=message.pk).count() == events_before
        current = new
