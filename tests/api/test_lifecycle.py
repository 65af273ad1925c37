"""Blast and conversation lifecycle through the API and the admin (issue 14.8): drafts are edited and
deleted, launched blasts are not; an audience that matches nobody is refused at create; conversations
are closed, reopened and assigned; the errors are the API's usual ones."""

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from messaging.models import Blast, BlastRecipient, BlastStatus, Conversation, ConversationStatus
from tests import factories
from tests.api.conftest import error_of

LAUNCHED = [BlastStatus.SCHEDULED, BlastStatus.SENDING, BlastStatus.COMPLETED, BlastStatus.CANCELED]


@pytest.fixture
def line(org):
    return factories.LineFactory(organization=org, carrier_account=factories.CarrierAccountFactory(organization=org))


@pytest.fixture
def contacts(org):
    return [factories.ContactFactory(organization=org, custom_fields={"store": s}) for s in ("north", "north", "south")]


@pytest.fixture
def draft(api, line, contacts):
    response = api.post("/api/v1/blasts", {"line": line.pk, "body": "Hi", "audience": {"all": True}}, format="json")
    assert response.status_code == 201, response.content
    return Blast.objects.get(pk=response.json()["id"])


def _recipients(blast) -> set[int]:
    return set(BlastRecipient.objects.filter(blast=blast).values_list("contact_id", flat=True))


# --- blasts ----------------------------------------------------------------------------------------


def test_a_draft_is_edited(api, draft, org, contacts):
    other_line = factories.LineFactory(organization=org)
    response = api.patch(
        f"/api/v1/blasts/{draft.pk}",
        {"body": "New text {first_name}", "name": "Renamed", "line": other_line.pk, "send_at": "2030-01-01T10:00Z"},
        format="json",
    )
    assert response.status_code == 200, response.content
    draft.refresh_from_db()
    assert (draft.body, draft.name, draft.line_id) == ("New text {first_name}", "Renamed", other_line.pk)
    assert draft.send_at.year == 2030
    assert response.json()["body"] == "New text {first_name}"
    assert _recipients(draft) == {c.pk for c in contacts}  # the audience is untouched unless given


def test_a_drafts_audience_is_chosen_again(api, draft, contacts):
    response = api.patch(
        f"/api/v1/blasts/{draft.pk}", {"audience": {"custom_fields": {"store": "north"}}}, format="json"
    )
    assert response.status_code == 200, response.content
    assert _recipients(draft) == {contacts[0].pk, contacts[1].pk}
    assert response.json()["recipient_count"] == 2


def test_editing_to_an_empty_audience_is_refused_and_changes_nothing(api, draft, contacts):
    response = api.patch(
        f"/api/v1/blasts/{draft.pk}",
        {"body": "Changed", "audience": {"custom_fields": {"store": "nowhere"}}},
        format="json",
    )
    assert response.status_code == 400, response.content
    assert "audience" in error_of(response)["fields"]
    draft.refresh_from_db()
    assert draft.body == "Hi" and draft.recipient_count == 3
    assert _recipients(draft) == {c.pk for c in contacts}


def test_a_draft_is_deleted(api, draft):
    response = api.delete(f"/api/v1/blasts/{draft.pk}")
    assert response.status_code == 204, response.content
    assert not Blast.objects.filter(pk=draft.pk).exists()
    assert not BlastRecipient.objects.filter(blast_id=draft.pk).exists()


@pytest.mark.parametrize("status", LAUNCHED)
def test_a_launched_blast_is_neither_edited_nor_deleted(api, draft, status):
    Blast.objects.filter(pk=draft.pk).update(status=status)
    edit = api.patch(f"/api/v1/blasts/{draft.pk}", {"body": "Too late"}, format="json")
    delete = api.delete(f"/api/v1/blasts/{draft.pk}")
    for response in (edit, delete):
        assert response.status_code == 409, response.content
        error = error_of(response)
        assert error["code"] == "conflict"
        assert "only a draft" in error["fields"]["status"][0]
    draft.refresh_from_db()
    assert draft.body == "Hi"


def test_a_blast_is_not_replaced_whole(api, draft, line):
    response = api.put(
        f"/api/v1/blasts/{draft.pk}", {"line": line.pk, "body": "x", "audience": {"all": True}}, format="json"
    )
    assert response.status_code == 405


@pytest.mark.parametrize(
    "audience",
    [{"custom_fields": {"store": "nowhere"}}, {"created_since": "2999-01-01T00:00:00Z"}, {"all": True}],
)
def test_a_blast_whose_audience_matches_nobody_is_refused_at_create(api, org, line, audience):
    # given: no contact matches (for all=true: the organization has none)
    if "all" not in audience:
        factories.ContactFactory(organization=org, custom_fields={"store": "north"})
    # when
    response = api.post("/api/v1/blasts", {"line": line.pk, "body": "Hi", "audience": audience}, format="json")
    # then
    assert response.status_code == 400, response.content
    assert "audience" in error_of(response)["fields"]
    assert not Blast.objects.filter(organization=org).exists()


# --- conversations ---------------------------------------------------------------------------------


@pytest.fixture
def conversation(org, line):
    return factories.ConversationFactory(organization=org, line=line)


def test_a_conversation_is_closed_and_reopened(api, conversation):
    closed = api.post(f"/api/v1/conversations/{conversation.pk}/close")
    assert closed.status_code == 200 and closed.json()["status"] == ConversationStatus.CLOSED
    reopened = api.post(f"/api/v1/conversations/{conversation.pk}/reopen")
    assert reopened.status_code == 200, reopened.content
    assert reopened.json()["status"] == ConversationStatus.OPEN
    conversation.refresh_from_db()
    assert conversation.status == ConversationStatus.OPEN
    # reopening an open conversation is a no-op, not an error
    assert api.post(f"/api/v1/conversations/{conversation.pk}/reopen").status_code == 200


def test_a_conversation_is_assigned_to_a_member_and_unassigned(api, org, conversation):
    agent = factories.MembershipFactory(organization=org).user
    response = api.post(f"/api/v1/conversations/{conversation.pk}/assign", {"assignee": agent.pk}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["assignee"] == agent.pk
    # the inbox filter sees it
    listed = api.get(f"/api/v1/conversations?assignee={agent.pk}").json()["results"]
    assert [row["id"] for row in listed] == [conversation.pk]
    # null unassigns
    response = api.post(f"/api/v1/conversations/{conversation.pk}/assign", {"assignee": None}, format="json")
    assert response.status_code == 200 and response.json()["assignee"] is None
    conversation.refresh_from_db()
    assert conversation.assignee_id is None


@pytest.mark.parametrize("who", ["other_org_member", "no_membership", "unknown_id"])
def test_assigning_to_anyone_but_a_member_is_refused(api, org, other_org, conversation, who):
    if who == "other_org_member":
        user_id = factories.MembershipFactory(organization=other_org).user.pk
    elif who == "no_membership":
        user_id = get_user_model().objects.create_user("loner@example.com", "loner@example.com", "pw").pk
    else:
        user_id = 99_999_999
    response = api.post(f"/api/v1/conversations/{conversation.pk}/assign", {"assignee": user_id}, format="json")
    assert response.status_code == 400, response.content
    assert error_of(response)["fields"] == {"assignee": ["Not a member of this organization."]}
    assert Conversation.objects.get(pk=conversation.pk).assignee_id is None


def test_assign_needs_the_field(api, conversation):
    response = api.post(f"/api/v1/conversations/{conversation.pk}/assign", {}, format="json")
    assert response.status_code == 400
    assert "assignee" in error_of(response)["fields"]


# --- admin -----------------------------------------------------------------------------------------


@pytest.fixture
def staff(client, db):
    user = get_user_model().objects.create_superuser("root@example.com", "root@example.com", "pw-root-123456")
    client.force_login(user)
    return client


def _admin_form(staff, url, **changes) -> dict:
    """The change form as the admin renders it (whatever fields the model has today), with changes."""
    form = staff.get(url).context["adminform"].form
    data = {}
    for name, field in form.fields.items():
        value = form[name].value()
        if hasattr(field.widget, "widgets"):  # split date/time
            for index, part in enumerate(field.widget.decompress(value)):
                data[f"{name}_{index}"] = "" if part is None else part
        else:
            data[name] = "" if value is None else value
    return {**data, **changes}


@pytest.mark.parametrize("status", [BlastStatus.SENDING, BlastStatus.COMPLETED])
def test_admin_shows_a_launched_blasts_text_and_line_read_only(staff, draft, org, status):
    Blast.objects.filter(pk=draft.pk).update(status=status)
    other_line = factories.LineFactory(organization=org)
    url = reverse("admin:messaging_blast_change", args=[draft.pk])
    page = staff.get(url).content.decode()
    assert 'name="body"' not in page and 'name="line"' not in page
    staff.post(url, {**_admin_form(staff, url), "body": "Edited in admin", "line": other_line.pk})
    draft.refresh_from_db()
    assert (draft.body, draft.line_id) == ("Hi", draft.line_id)
    assert draft.line_id != other_line.pk


def test_admin_edits_a_draft(staff, draft):
    url = reverse("admin:messaging_blast_change", args=[draft.pk])
    assert 'name="body"' in staff.get(url).content.decode()
    response = staff.post(url, _admin_form(staff, url, body="Edited in admin"))
    assert response.status_code == 302, [ln for ln in response.content.decode().splitlines() if "error" in ln][:10]
    draft.refresh_from_db()
    assert draft.body == "Edited in admin"
