import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from messaging.models import Contact
from messaging.services.contacts import IMPORT_MAX_ROWS
from tests import factories
from tests.api.conftest import error_of


def test_crud_with_phone_normalization(api, org):
    # create: any common format in, E.164 stored and returned
    response = api.post("/api/v1/contacts", {"phone_number": "(737) 200-4321", "first_name": "Ana"}, format="json")
    assert response.status_code == 201, response.content
    contact_id = response.json()["id"]
    assert response.json()["phone_number"] == "+17372004321"
    # read
    assert api.get(f"/api/v1/contacts/{contact_id}").json()["first_name"] == "Ana"
    # filter by number, written differently
    found = api.get("/api/v1/contacts", {"phone_number": "737.200.4321"}).json()["results"]
    assert [c["id"] for c in found] == [contact_id]
    # update
    response = api.patch(f"/api/v1/contacts/{contact_id}", {"last_name": "Lima"}, format="json")
    assert response.status_code == 200 and response.json()["last_name"] == "Lima"
    # delete archives: gone from the API, the row (and its history) kept (docs/messaging.md)
    assert api.delete(f"/api/v1/contacts/{contact_id}").status_code == 204
    assert api.get(f"/api/v1/contacts/{contact_id}").status_code == 404
    assert Contact.objects.get(pk=contact_id).archived_at is not None


@pytest.mark.parametrize("bad", ["12", "not a number", "+1 555 0100", "", "+999 123"])
def test_invalid_phone_is_400_naming_the_field(api, bad):
    response = api.post("/api/v1/contacts", {"phone_number": bad}, format="json")
    assert response.status_code == 400
    assert list(error_of(response)["fields"]) == ["phone_number"]


def test_invalid_phone_filter_is_400_naming_the_parameter(api):
    response = api.get("/api/v1/contacts", {"phone_number": "abc"})
    assert response.status_code == 400
    assert "phone_number" in error_of(response)["fields"]


def _duplicate_of(response) -> int:
    """The 409 `duplicate` body: the API's error shape plus the existing contact's id."""
    assert response.status_code == 409, response.content
    error = response.json()["error"]
    assert set(error) == {"code", "message", "fields", "existing_id"}
    assert error["code"] == "duplicate"
    assert "already exists" in error["fields"]["phone_number"][0]
    return error["existing_id"]


def test_duplicate_number_is_409_with_the_existing_contacts_id(api, org, other_org):
    # given: the same number in another organization too (its id must never be the one answered)
    factories.ContactFactory(organization=other_org, phone_number="+17372004321")
    existing = factories.ContactFactory(organization=org, phone_number="+17372004321")
    # when
    response = api.post("/api/v1/contacts", {"phone_number": "737-200-4321", "first_name": "New"}, format="json")
    # then: the existing one's id, and nothing created or changed
    assert _duplicate_of(response) == existing.pk
    assert Contact.objects.filter(organization=org).count() == 1
    existing.refresh_from_db()
    assert existing.first_name != "New"


def test_same_number_in_another_org_is_fine(api, other_org):
    factories.ContactFactory(organization=other_org, phone_number="+17372004321")
    assert api.post("/api/v1/contacts", {"phone_number": "+17372004321"}, format="json").status_code == 201


def test_json_import_reports_each_bad_row(api, org):
    # given: an existing contact, good rows, bad rows and a duplicate inside the file
    factories.ContactFactory(organization=org, phone_number="+17372000001", first_name="Old")
    rows = [
        {"phone_number": "737 200 0001", "first_name": "New"},  # exists → skipped
        {"phone_number": "737 200 0002", "first_name": "Bo", "plan": "gold"},  # created, plan → custom field
        {"phone_number": "nope"},
        {"phone_number": "737 200 0003", "email": "not-an-email", "first_name": "x" * 101},
        {"phone_number": "+17372000002"},  # duplicate of row 2
        "not an object",
        {"first_name": "no number"},
    ]
    # when
    response = api.post("/api/v1/contacts/import", {"contacts": rows}, format="json")
    # then
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["created"], body["updated"], body["skipped"]) == (1, 0, 1)
    errors = {e["row"]: e["fields"] for e in body["errors"]}
    assert set(errors) == {3, 4, 5, 6, 7}
    assert list(errors[3]) == ["phone_number"]
    assert set(errors[4]) == {"email", "first_name"}
    assert "Duplicate of row 2" in errors[5]["phone_number"][0]
    assert "required" in errors[7]["phone_number"][0]
    assert Contact.objects.get(organization=org, phone_number="+17372000001").first_name == "Old"
    assert Contact.objects.get(organization=org, phone_number="+17372000002").custom_fields == {"plan": "gold"}


def test_import_with_update_overwrites(api, org):
    factories.ContactFactory(organization=org, phone_number="+17372000001", first_name="Old", custom_fields={"a": "1"})
    rows = [{"phone_number": "+17372000001", "first_name": "New", "custom_fields": {"b": "2"}}]
    body = api.post("/api/v1/contacts/import", {"contacts": rows, "on_conflict": "update"}, format="json").json()
    assert (body["created"], body["updated"], body["skipped"]) == (0, 1, 0)
    contact = Contact.objects.get(organization=org, phone_number="+17372000001")
    assert contact.first_name == "New" and contact.custom_fields == {"a": "1", "b": "2"}


def test_csv_body_import(api, org):
    csv_text = "phone_number,first_name,last_name,store\n(737) 200-0011,Ana,Lima,Austin\nbad,,,\n737 200 0012,,,\n"
    response = api.generic("POST", "/api/v1/contacts/import", csv_text, content_type="text/csv")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["created"] == 2
    assert [e["row"] for e in body["errors"]] == [2]
    ana = Contact.objects.get(organization=org, phone_number="+17372000011")
    assert (ana.first_name, ana.last_name, ana.custom_fields) == ("Ana", "Lima", {"store": "Austin"})


def test_multipart_csv_import(api, org):
    upload = SimpleUploadedFile("c.csv", b"phone_number\n737 200 0021\n737 200 0022\n", content_type="text/csv")
    response = api.post("/api/v1/contacts/import", {"file": upload, "on_conflict": "skip"}, format="multipart")
    assert response.status_code == 200, response.content
    assert response.json()["created"] == 2


def test_csv_without_phone_column_is_400(api):
    response = api.generic("POST", "/api/v1/contacts/import", "name\nAna\n", content_type="text/csv")
    assert response.status_code == 400
    assert "file" in error_of(response)["fields"]


def test_import_over_the_limit_is_400(api, org):
    rows = [{"phone_number": "+17372000001"}] * (IMPORT_MAX_ROWS + 1)
    response = api.post("/api/v1/contacts/import", {"contacts": rows}, format="json")
    assert response.status_code == 400
    assert "contacts" in error_of(response)["fields"]
    assert not Contact.objects.filter(organization=org).exists()


@pytest.mark.parametrize("payload", [{}, {"contacts": "x"}, {"contacts": []}])
def test_import_envelope_errors_name_the_field(api, payload):
    response = api.post("/api/v1/contacts/import", payload, format="json")
    assert response.status_code == 400
    assert "contacts" in error_of(response)["fields"]


def test_import_bad_on_conflict_is_400(api):
    response = api.post(
        "/api/v1/contacts/import",
        {"contacts": [{"phone_number": "+17372000001"}], "on_conflict": "merge"},
        format="json",
    )
    assert response.status_code == 400
    assert "on_conflict" in error_of(response)["fields"]


def test_full_size_import_is_one_insert(api, org, django_assert_num_queries):
    # given: 10,000 distinct valid numbers
    rows = [{"phone_number": f"+1737{300 + i // 10000:03d}{i % 10000:04d}", "n": i} for i in range(IMPORT_MAX_ROWS)]
    body = json.dumps({"contacts": rows})
    # when: key lookup + last_used UPDATE, the erased opt-outs' relink (one UPDATE, docs/messaging.md),
    # then SAVEPOINT, the INSERT, RELEASE
    with django_assert_num_queries(6):
        response = api.generic("POST", "/api/v1/contacts/import", body, content_type="application/json")
    # then
    assert response.json()["created"] == IMPORT_MAX_ROWS
    assert Contact.objects.filter(organization=org).count() == IMPORT_MAX_ROWS


def test_update_to_an_existing_number_is_409_with_its_id(api, org):
    existing = factories.ContactFactory(organization=org, phone_number="+17372004321")
    other = factories.ContactFactory(organization=org)
    response = api.patch(f"/api/v1/contacts/{other.pk}", {"phone_number": "737 200 4321"}, format="json")
    assert _duplicate_of(response) == existing.pk
    other.refresh_from_db()
    assert other.phone_number != "+17372004321"
