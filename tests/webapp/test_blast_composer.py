"""The web app's blast composer (issue 16): audience (all, filter, pasted or uploaded CSV), merge-field
preview, the confirm step with the API's preview (segments, opt-outs, quiet-hours deferrals), schedule or
send now, edit and delete a draft, cancel a running blast. Through the API's services; bad input shows the
field and the reason and changes nothing; CSRF on every form."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.utils import timezone

from messaging.models import Blast, BlastRecipient, BlastStatus, Contact, Message, OptOut
from messaging.status import MessageStatus as S
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def line(org):
    return factories.LineFactory(organization=org)


def _form(the_line, **overrides):
    data = {
        "name": "Sale",
        "line": the_line.pk,
        "audience": "all",
        "body": "Hi {first_name}, sale today!",
        "when": "now",
    }
    data.update(overrides)
    return data


def test_compose_all_contacts_then_review_then_launch_through_the_send_pipeline(
    agent, org, line, member, django_capture_on_commit_callbacks
):
    # given: three contacts, one opted out; quiet hours off so that nothing is deferred
    org.quiet_hours_enabled = False
    org.save()
    ada = factories.ContactFactory(organization=org, first_name="Ada")
    factories.ContactFactory(organization=org)
    opted = factories.ContactFactory(organization=org)
    OptOut.objects.create(organization=org, phone_number=opted.phone_number, source="keyword")
    # when: the composer saves a draft
    response = agent.post("/blasts/new/", _form(line))
    blast = Blast.objects.get(organization=org)
    assert response.status_code == 302 and response["Location"] == f"/blasts/{blast.pk}/review/"
    assert blast.status == BlastStatus.DRAFT and blast.recipient_count == 3 and blast.created_by == member.user
    # then: the confirm step shows what the API's preview says
    html = agent.get(response["Location"]).content.decode()
    assert '<dd id="sendable">2</dd>' in html
    assert "Hi Ada, sale today!" in html  # the sample recipient is the first of the audience
    assert "none deferred" in html and "Confirm: send to 2 now" in html
    assert ada.first_name in html
    # when: confirmed
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = agent.post(f"/blasts/{blast.pk}/launch/")
    # then: launched by blast_launch (prepare chunks enqueued after commit), the report page follows
    assert response.status_code == 302 and response["Location"] == f"/blasts/{blast.pk}/"
    blast.refresh_from_db()
    assert blast.status == BlastStatus.SENDING and blast.launched_at is not None
    assert len(callbacks) == 1
    # a second launch (a double click) is refused and sends nothing twice
    assert agent.post(f"/blasts/{blast.pk}/launch/").status_code == 302
    blast.refresh_from_db()
    assert blast.status == BlastStatus.SENDING


def test_review_shows_how_many_quiet_hours_defer_and_until_when(agent, org, line):
    # given: quiet hours 21:00-08:00, contacts in Austin (Central time), a blast scheduled for 23:00 there
    zone = "America/Chicago"
    org.time_zone = zone
    org.save()
    for _ in range(3):
        factories.ContactFactory(organization=org, phone_number=factories.next_number("512"))
    tomorrow = (timezone.now().astimezone(ZoneInfo(zone)) + timedelta(days=1)).date()
    send_at = datetime.combine(tomorrow, time(23, 0))
    response = agent.post("/blasts/new/", _form(line, when="later", send_at=send_at.strftime("%Y-%m-%dT%H:%M")))
    blast = Blast.objects.get(organization=org)
    assert response.status_code == 302
    assert blast.send_at == send_at.replace(tzinfo=ZoneInfo(zone))  # the organization's wall time
    # when
    html = agent.get(f"/blasts/{blast.pk}/review/").content.decode()
    # then: all three would wait until 08:00 the next morning, local time
    resume = (tomorrow + timedelta(days=1)).strftime("%b %-d")
    assert f"3 would wait until {resume}, 08:00" in html
    assert "Confirm: schedule for" in html


def test_review_says_links_are_shortened_without_a_negative_saving(agent, org, line):
    """A URL shorter than a short link (the demo's short host is prly.localhost:8000) once read "Links are
    shortened: -11 characters saved"; the confirm step now says what shortening does to the segments."""
    # given
    factories.ContactFactory(organization=org, first_name="Ada")
    agent.post("/blasts/new/", _form(line, body="Hi {first_name}, https://ex.io/a"))
    blast = Blast.objects.get(organization=org)
    # when
    html = agent.get(f"/blasts/{blast.pk}/review/").content.decode()
    # then
    assert (
        '<p class="muted small" id="links-note">Links are shortened when sent (the sample: 1 → 1 segment).</p>' in html
    )
    assert "characters saved" not in html


def test_filter_audience_by_custom_field_and_created_since(agent, org, line):
    austin = factories.ContactFactory(organization=org, custom_fields={"city": "Austin", "tier": "gold"})
    factories.ContactFactory(organization=org, custom_fields={"city": "Dallas"})
    response = agent.post("/blasts/new/", _form(line, audience="filter", filter_fields="city=Austin\n tier = gold "))
    assert response.status_code == 302
    blast = Blast.objects.get(organization=org)
    assert list(BlastRecipient.objects.filter(blast=blast).values_list("contact_id", flat=True)) == [austin.pk]


def test_pasted_csv_imports_new_numbers_and_makes_them_the_audience(agent, org, line):
    known = factories.ContactFactory(organization=org, first_name="Known")
    factories.ContactFactory(organization=org)  # not in the CSV
    csv_text = f"phone_number,first_name,city\n{known.phone_number},,\n(512) 555-0199,New,Austin\n"
    response = agent.post("/blasts/new/", _form(line, audience="csv", csv_text=csv_text))
    assert response.status_code == 302, response.content.decode()
    new = Contact.objects.get(organization=org, phone_number="+15125550199")
    assert new.first_name == "New" and new.custom_fields == {"city": "Austin"}
    blast = Blast.objects.get(organization=org)
    assert set(BlastRecipient.objects.filter(blast=blast).values_list("contact_id", flat=True)) == {known.pk, new.pk}
    known.refresh_from_db()
    assert known.first_name == "Known"  # existing contacts are left as they are


def test_uploaded_csv_file(agent, org, line):
    upload = SimpleUploadedFile("list.csv", b"phone_number\n+15125550123\n", content_type="text/csv")
    response = agent.post("/blasts/new/", {**_form(line, audience="csv"), "csv_file": upload})
    assert response.status_code == 302
    assert Blast.objects.get(organization=org).recipient_count == 1


@pytest.mark.parametrize(
    ("overrides", "field", "reason"),
    [
        ({"body": ""}, "body", "This field is required."),
        ({"body": "x" * 1601}, "body", "at most 1600 characters"),
        ({"line": "999999"}, "line", "Select a valid choice"),
        ({"audience": "filter"}, "filter_fields", "Give at least one name=value"),
        ({"audience": "filter", "filter_fields": "city"}, "filter_fields", "Line 1: write name=value."),
        ({"audience": "filter", "filter_fields": "city=Nowhere"}, "audience", "No contact of this organization"),
        ({"audience": "csv"}, "csv_text", "Paste a CSV or choose a file."),
        ({"audience": "csv", "csv_text": "name\nAda\n"}, "csv_text", "phone_number column"),
        (
            {"audience": "csv", "csv_text": "phone_number\n+15125550177\nnot-a-number\n"},
            "csv_text",
            "row 2: phone_number",
        ),
        ({"when": "later"}, "send_at", "Give the date and time to send."),
        ({"when": "later", "send_at": "2020-01-01T10:00"}, "send_at", "This time has passed"),
        ({"when": "later", "send_at": "tomorrow"}, "send_at", "Enter a valid date/time."),
    ],
)
def test_bad_input_names_the_field_and_changes_nothing(agent, org, line, overrides, field, reason):
    factories.ContactFactory(organization=org)
    contacts = Contact.objects.count()
    response = agent.post("/blasts/new/", _form(line, **overrides))
    html = response.content.decode()
    assert response.status_code == 400
    assert f'data-field="{field}"' in html, html[html.find("error") - 200 : html.find("error") + 400]
    assert reason in html.replace("&#x27;", "'")
    assert not Blast.objects.exists() and Contact.objects.count() == contacts  # a CSV's import undone too


def test_an_archived_line_or_another_organizations_line_is_not_offered_nor_accepted(agent, org, other_org):
    archived = factories.LineFactory(organization=org, is_active=False)
    theirs = factories.LineFactory(organization=other_org)
    factories.ContactFactory(organization=org)
    html = agent.get("/blasts/new/").content.decode()
    assert archived.phone_number not in html and theirs.phone_number not in html
    for line in (archived, theirs):
        response = agent.post("/blasts/new/", _form(line))
        assert response.status_code == 400 and 'data-field="line"' in response.content.decode()
    assert not Blast.objects.exists()


def test_compose_preview_renders_the_body_for_a_sample_contact(agent, org):
    factories.ContactFactory(organization=org, first_name="Ada", custom_fields={"city": "Austin"})
    response = agent.post("/blasts/compose-preview/", {"body": "Hi {first_name} in {city}! {coupon}"})
    html = response.content.decode()
    assert response.status_code == 200
    assert "Hi Ada in Austin! " in html and "1 segment" in html and "GSM" in html.upper()
    assert "has no coupon" in html
    html = agent.post("/blasts/compose-preview/", {"body": "Grüße 👋"}).content.decode()
    assert "UCS" in html.upper()


def test_edit_a_draft_keeps_or_changes_its_audience(agent, org, line):
    a = factories.ContactFactory(organization=org, custom_fields={"vip": "yes"})
    factories.ContactFactory(organization=org)
    agent.post("/blasts/new/", _form(line))
    blast = Blast.objects.get(organization=org)
    assert blast.recipient_count == 2
    html = agent.get(f"/blasts/{blast.pk}/edit/").content.decode()
    assert "Hi {first_name}, sale today!" in html and 'value="keep"' in html
    # keep the audience, change the text
    response = agent.post(f"/blasts/{blast.pk}/edit/", _form(line, audience="keep", body="New text"))
    assert response.status_code == 302
    blast.refresh_from_db()
    assert blast.body == "New text" and blast.recipient_count == 2
    # choose again
    agent.post(f"/blasts/{blast.pk}/edit/", _form(line, audience="filter", filter_fields="vip=yes", body="New text"))
    blast.refresh_from_db()
    assert blast.recipient_count == 1
    assert list(BlastRecipient.objects.filter(blast=blast).values_list("contact_id", flat=True)) == [a.pk]
    # a bad edit changes nothing
    response = agent.post(f"/blasts/{blast.pk}/edit/", _form(line, audience="keep", body=""))
    assert response.status_code == 400
    blast.refresh_from_db()
    assert blast.body == "New text"


def test_delete_a_draft_but_not_a_launched_blast(agent, org, line):
    factories.ContactFactory(organization=org)
    agent.post("/blasts/new/", _form(line))
    draft = Blast.objects.get(organization=org)
    assert agent.post(f"/blasts/{draft.pk}/delete/").status_code == 302
    assert not Blast.objects.filter(pk=draft.pk).exists()
    launched = factories.BlastFactory(organization=org, line=line, status=BlastStatus.SENDING)
    response = agent.post(f"/blasts/{launched.pk}/delete/")
    assert response.status_code == 409 and "only a draft can be deleted" in response.content.decode()
    assert Blast.objects.filter(pk=launched.pk).exists()


def test_cancel_a_running_blast_stops_what_has_not_reached_the_carrier(agent, org, line):
    blast = factories.BlastFactory(organization=org, line=line, status=BlastStatus.SENDING, launched_at=timezone.now())
    contact = factories.ContactFactory(organization=org)
    conversation = factories.ConversationFactory(organization=org, line=line, contact=contact)
    queued = factories.MessageFactory(conversation=conversation, blast=blast, status=S.QUEUED)
    sent = factories.MessageFactory(conversation=conversation, blast=blast, status=S.SENT)
    response = agent.post(f"/blasts/{blast.pk}/cancel/")
    assert response.status_code == 302
    blast.refresh_from_db()
    queued.refresh_from_db()
    sent.refresh_from_db()
    assert blast.status == BlastStatus.CANCELED
    assert (queued.status, sent.status) == (S.CANCELED, S.SENT)
    html = agent.get(f"/blasts/{blast.pk}/").content.decode()
    assert 'id="cancel"' not in html and "Canceled" in html
    # canceling again is refused with the reason
    response = agent.post(f"/blasts/{blast.pk}/cancel/")
    assert response.status_code == 409 and "already canceled" in response.content.decode()


def test_every_blast_form_needs_the_csrf_token(org, member, line):
    factories.ContactFactory(organization=org)
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(member.user)
    draft = factories.BlastFactory(organization=org, line=line)
    running = factories.BlastFactory(organization=org, line=line, status=BlastStatus.SENDING)
    for url, data in (
        ("/blasts/new/", _form(line)),
        (f"/blasts/{draft.pk}/edit/", _form(line, audience="keep")),
        (f"/blasts/{draft.pk}/launch/", {}),
        (f"/blasts/{draft.pk}/delete/", {}),
        (f"/blasts/{running.pk}/cancel/", {}),
        ("/blasts/compose-preview/", {"body": "x"}),
    ):
        assert strict.post(url, data).status_code == 403, url
    assert Blast.objects.count() == 2 and not Message.objects.exists()
    draft.refresh_from_db()
    running.refresh_from_db()
    assert (draft.status, running.status) == (BlastStatus.DRAFT, BlastStatus.SENDING)
    # and every page with a form carries it
    for url in ("/blasts/new/", f"/blasts/{draft.pk}/review/", f"/blasts/{running.pk}/"):
        assert 'name="csrfmiddlewaretoken"' in strict.get(url).content.decode(), url


def test_a_launched_blast_is_not_edited(agent, org, line):
    blast = factories.BlastFactory(organization=org, line=line, status=BlastStatus.SENDING, body="Sent text")
    response = agent.post(f"/blasts/{blast.pk}/edit/", _form(line, audience="keep", body="Changed"))
    assert response.status_code == 302 and response["Location"] == f"/blasts/{blast.pk}/"
    blast.refresh_from_db()
    assert blast.body == "Sent text"
