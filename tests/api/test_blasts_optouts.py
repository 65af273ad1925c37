from datetime import timedelta

from django.utils import timezone

from messaging.models import Blast, BlastRecipient, OptOut
from tests import factories
from tests.api.conftest import error_of


def _audience_of(blast_id):
    return set(BlastRecipient.objects.filter(blast_id=blast_id).values_list("contact_id", flat=True))


def test_blast_with_contact_ids(api, org):
    line = factories.LineFactory(organization=org)
    contacts = factories.ContactFactory.create_batch(3, organization=org)
    payload = {
        "line": line.pk,
        "body": "Hi {first_name}",
        "name": "Sale",
        "audience": {"contact_ids": [contacts[0].pk, contacts[2].pk, contacts[0].pk]},
    }
    response = api.post("/api/v1/blasts", payload, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "draft" and body["recipient_count"] == 2
    assert "audience" not in body
    assert _audience_of(body["id"]) == {contacts[0].pk, contacts[2].pk}
    assert api.get(f"/api/v1/blasts/{body['id']}").json()["recipient_count"] == 2


def test_blast_to_all_and_by_filter(api, org, other_org):
    line = factories.LineFactory(organization=org)
    gold = factories.ContactFactory.create_batch(2, organization=org, custom_fields={"tier": "gold"})
    plain = factories.ContactFactory(organization=org)
    factories.ContactFactory(organization=other_org, custom_fields={"tier": "gold"})
    everyone = api.post("/api/v1/blasts", {"line": line.pk, "body": "x", "audience": {"all": True}}, format="json")
    assert _audience_of(everyone.json()["id"]) == {c.pk for c in [*gold, plain]}
    filtered = api.post(
        "/api/v1/blasts", {"line": line.pk, "body": "x", "audience": {"custom_fields": {"tier": "gold"}}}, format="json"
    )
    assert _audience_of(filtered.json()["id"]) == {c.pk for c in gold}
    since = api.post(
        "/api/v1/blasts",
        {"line": line.pk, "body": "x", "audience": {"created_since": (timezone.now() + timedelta(days=1)).isoformat()}},
        format="json",
    )
    # an audience that matches nobody is refused at create (issue 14.8), naming the field
    assert since.status_code == 400 and "audience" in since.json()["error"]["fields"]


def test_blast_bad_inputs_name_the_field(api, org):
    line = factories.LineFactory(organization=org)
    archived = factories.LineFactory(organization=org, is_active=False)
    contact = factories.ContactFactory(organization=org)
    cases = [
        ({"line": line.pk, "body": "x", "audience": {}}, "audience"),
        ({"line": line.pk, "body": "x", "audience": {"all": True, "contact_ids": [contact.pk]}}, "audience"),
        ({"line": line.pk, "body": " ", "audience": {"all": True}}, "body"),
        ({"line": archived.pk, "body": "x", "audience": {"all": True}}, "line"),
        ({"line": line.pk, "body": "x", "audience": {"contact_ids": [987654321]}}, "audience.contact_ids"),
        ({"body": "x", "audience": {"all": True}}, "line"),
    ]
    for payload, field in cases:
        response = api.post("/api/v1/blasts", payload, format="json")
        assert response.status_code == 400, payload
        assert field in error_of(response)["fields"], (payload, error_of(response))
    assert not Blast.objects.exists()


def test_opt_outs_create_is_idempotent_list_and_delete(api, org):
    first = api.post("/api/v1/opt-outs", {"phone_number": "(737) 200-5555", "reason": "asked"}, format="json")
    again = api.post("/api/v1/opt-outs", {"phone_number": "+17372005555"}, format="json")
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["id"] == again.json()["id"] and first.json()["phone_number"] == "+17372005555"
    assert first.json()["source"] == "api"
    listed = api.get("/api/v1/opt-outs", {"phone_number": "737-200-5555"}).json()["results"]
    assert [o["id"] for o in listed] == [first.json()["id"]]
    assert api.delete(f"/api/v1/opt-outs/{first.json()['id']}").status_code == 204
    assert not OptOut.objects.exists()


def test_opt_out_invalid_phone(api):
    response = api.post("/api/v1/opt-outs", {"phone_number": "123"}, format="json")
    assert response.status_code == 400
    assert list(error_of(response)["fields"]) == ["phone_number"]


def test_lines_create_update_and_number_conflicts(api, org, other_org, sandbox_carrier):
    # the number is checked with the carrier (tests/api/test_line_numbers.py has the cases)
    account = sandbox_carrier.account(org)
    sandbox_carrier.hold_numbers("+15122003333", "+15122004444")
    response = api.post(
        "/api/v1/lines", {"phone_number": "512.200.3333", "name": "Main", "carrier_account": account.pk}, format="json"
    )
    assert response.status_code == 201, response.content
    assert response.json()["phone_number"] == "+15122003333"
    line_id = response.json()["id"]
    assert api.patch(f"/api/v1/lines/{line_id}", {"is_active": False}, format="json").json()["is_active"] is False
    # a number live on another line of ours cannot go live twice
    live = api.post("/api/v1/lines", {"phone_number": "+15122004444", "carrier_account": account.pk}, format="json")
    assert live.status_code == 201
    response = api.post("/api/v1/lines", {"phone_number": "+15122004444", "carrier_account": account.pk}, format="json")
    assert response.status_code == 400 and "phone_number" in error_of(response)["fields"]
    assert api.delete(f"/api/v1/lines/{line_id}").status_code == 405
