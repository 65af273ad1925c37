"""Issue 12 item 15: a line's number is checked with the carrier account that serves it (Sinch's Numbers
API, served by the sandbox carrier over HTTP), so no organization can learn or squat another's number."""

import pytest

from messaging.models import Line
from tests import factories
from tests.api.conftest import error_of
from tests.worker import free_port

A_NUMBER = "+15125551000"


@pytest.fixture
def a_account(org, sandbox_carrier):
    account = sandbox_carrier.account(org, name="A's Sinch")
    sandbox_carrier.hold_numbers(A_NUMBER)  # A's project holds it; no line uses it yet
    return account


@pytest.fixture
def b_api(other_org):
    from rest_framework.test import APIClient

    from organizations.services import api_key_create

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key_create(organization=other_org, name='b').raw_key}")
    return client


def _line(client, **data):
    return client.post("/api/v1/lines", data, format="json")


def test_a_number_the_account_holds_goes_live(api, org, a_account, sandbox_carrier):
    response = _line(api, phone_number=A_NUMBER, carrier_account=a_account.pk)
    assert response.status_code == 201, response.content
    # asked over HTTP, on the Numbers API's path for the account's project
    assert any(
        path.endswith(f"/v1/projects/{sandbox_carrier.service_plan_id}/activeNumbers/{A_NUMBER}")
        for _at, _method, path in sandbox_carrier.state.request_log
    )


def test_another_organization_can_neither_squat_nor_learn_of_a_number(
    api, b_api, org, other_org, a_account, sandbox_carrier
):
    b_account = sandbox_carrier.account(other_org, name="B's Sinch", config={"service_plan_id": "plan-b"})
    # B claims the number A will need, before A does: refused, in words about B's own account only
    squat = _line(b_api, phone_number=A_NUMBER, carrier_account=b_account.pk)
    assert squat.status_code == 400
    message = error_of(squat)["fields"]["phone_number"][0]
    assert message == 'Carrier account "B\'s Sinch" does not hold this number.'
    # A then takes it; B asking again gets the very same answer (nothing tells B that A holds it now)
    assert _line(api, phone_number=A_NUMBER, carrier_account=a_account.pk).status_code == 201
    again = _line(b_api, phone_number=A_NUMBER, carrier_account=b_account.pk)
    assert again.status_code == 400 and error_of(again)["fields"]["phone_number"][0] == message
    for text in (squat.content.decode(), again.content.decode()):
        assert org.name not in text and "another line" not in text
    assert Line.objects.filter(organization=other_org).count() == 0


def test_a_line_without_carrier_account_reserves_nothing(api, b_api, other_org, a_account):
    # B parks the number on a line that cannot send: allowed, and it does not stand in A's way
    parked = _line(b_api, phone_number=A_NUMBER)
    assert parked.status_code == 201
    assert _line(api, phone_number=A_NUMBER, carrier_account=a_account.pk).status_code == 201


def test_a_number_on_another_service_plan_is_refused(api, org, sandbox_carrier):
    account = sandbox_carrier.account(org, name="Main")
    sandbox_carrier.hold_numbers("+15125551001", service_plan_id="other-plan", project=sandbox_carrier.service_plan_id)
    response = _line(api, phone_number="+15125551001", carrier_account=account.pk)
    assert response.status_code == 400
    assert "not attached to the SMS service plan" in error_of(response)["fields"]["phone_number"][0]


def test_switching_a_live_line_to_another_number_or_account_is_checked(api, org, a_account, sandbox_carrier):
    line = _line(api, phone_number=A_NUMBER, carrier_account=a_account.pk).json()
    moved = api.patch(f"/api/v1/lines/{line['id']}", {"phone_number": "+15125551999"}, format="json")
    assert moved.status_code == 400 and "does not hold" in error_of(moved)["fields"]["phone_number"][0]
    renamed = api.patch(f"/api/v1/lines/{line['id']}", {"name": "Renamed"}, format="json")
    assert renamed.status_code == 200  # nothing about the number changed: no carrier call needed


def test_an_unreachable_carrier_answers_503_and_changes_nothing(api, org):
    account = factories.CarrierAccountFactory(
        organization=org,
        provider="sandbox",
        config={
            "service_plan_id": "p",
            "api_token": "t",
            "base_url": f"http://127.0.0.1:{free_port()}",
            "connect_timeout": 1,
        },
    )
    response = _line(api, phone_number=A_NUMBER, carrier_account=account.pk)
    assert response.status_code == 503
    assert error_of(response)["code"] == "carrier_unavailable" and "phone_number" in error_of(response)["fields"]
    assert not Line.objects.exists()


def test_a_sinch_account_without_numbers_api_settings_is_told_so(api, org):
    account = factories.CarrierAccountFactory(organization=org)  # Sinch, no project_id / key
    response = _line(api, phone_number=A_NUMBER, carrier_account=account.pk)
    assert response.status_code == 400
    assert "project_id" in error_of(response)["fields"]["phone_number"][0]
