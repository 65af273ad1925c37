"""The outbox's admin: backlog and dead letters, re-run after a fix (postprocessing/admin.py)."""

from postprocessing.events import EventType
from postprocessing.models import EventProcessing
from postprocessing.services import events_drain, events_record
from tests.factories import UserFactory


def test_admin_shows_backlog_and_reruns_dead_letters(db, client, temp_processor):
    # given a dead letter and a pending event
    state = {"fixed": False}

    def flaky(events):
        if not state["fixed"]:
            raise RuntimeError("kaput")

    temp_processor(EventType.LINK_CLICKED, name="t_admin", fn=flaky)
    events_record(type=EventType.LINK_CLICKED)
    events_drain()
    EventProcessing.objects.update(state="dead")
    events_record(type=EventType.MESSAGE_RECEIVED)
    admin = UserFactory(is_staff=True, is_superuser=True)
    client.force_login(admin)
    # when
    page = client.get("/admin/postprocessing/eventprocessing/")
    # then
    html = page.content.decode()
    assert page.status_code == 200
    assert "pending event(s)" in html and "dead letters: <strong>1</strong>" in html and "kaput" in html
    assert client.get("/admin/postprocessing/event/").status_code == 200
    # re-run from the admin action, after the fix
    state["fixed"] = True
    pid = EventProcessing.objects.get().pk
    resp = client.post("/admin/postprocessing/eventprocessing/", {"action": "rerun", "_selected_action": [pid]})
    assert resp.status_code == 302
    assert EventProcessing.objects.get().state == "retry"
    events_drain()
    assert not EventProcessing.objects.exists()
