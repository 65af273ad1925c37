"""A bounded schemathesis run over the whole /api/v1/ schema (issue 12.9): every operation, positive and
negative cases, against the real app and database (in-process WSGI, the test's transaction).

Checks (all of schemathesis's, less the two noted below): no 5xx; every status answered is documented
for the operation; answers match their documented schema and content type; schema-violating input is
refused (4xx); unsupported methods answer 405. Bounded: a fixed number of examples per operation,
derandomized so the run is the same every time (a new finding shows up with the schema change that
causes it, not at random).
"""

import pytest
import schemathesis
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.core.failures import AcceptedNegativeData
from schemathesis.specs.openapi.checks import negative_data_rejection, positive_data_acceptance

from backfill.models import BackfillRun
from messaging.models import OptOut
from organizations.services import api_key_create
from shortener.services import link_create
from tests import factories

MAX_EXAMPLES = 12

schema = schemathesis.openapi.from_dict(SchemaGenerator().get_schema(request=None, public=True))
schema.app = WSGIHandler()


def negative_data_rejected(ctx, response, case):
    """schemathesis's negative_data_rejection, less one leniency of DRF's that we keep on purpose: a scalar
    of the other kind in a body field is read as the field's type when it can be (`"name": 0` is the
    name "0", `"line": "5"` is line 5), as DRF's CharField/IntegerField/FloatField do."""
    try:
        return negative_data_rejection(ctx, response, case)
    except AcceptedNegativeData:
        if _scalar_read_as_another_scalar(case):
            return None
        raise


def _scalar_read_as_another_scalar(case) -> bool:
    data = case.meta.phase.data
    if getattr(data, "scenario", None) != "incorrect_type" or getattr(data, "parameter_location", None) != "body":
        return False
    # data.location points into the body's schema: "/properties/audience/properties/contact_ids/type".
    parts = (getattr(data, "location", None) or "").split("/")
    value = case.body
    for index, part in enumerate(parts[:-1]):
        if part == "properties":
            if not isinstance(value, dict) or parts[index + 1] not in value:
                return False
            value = value[parts[index + 1]]
    return value is not case.body and isinstance(value, int | float | str) and not isinstance(value, bool)


# "Schema-valid request rejected" (positive_data_acceptance): a schema cannot say which strings are phone
# numbers, URLs we may shorten, cursors we issued or ids of the caller's organization, so a random but
# schema-valid value is rightly a 400. negative_data_rejection runs as negative_data_rejected above.
EXCLUDED = [positive_data_acceptance, negative_data_rejection]

# Ids of real objects of the test's organization, by the path segment that names their kind; path
# parameters take one of them half the time, so operations get past their 404 (filled per test).
KNOWN_IDS: dict[str, int] = {}


@schema.hook
def flatmap_path_parameters(context, path_parameters):
    if not path_parameters:
        return st.just(path_parameters)
    segments = context.operation.path.strip("/").split("/")
    known = {}
    for name, value in path_parameters.items():
        position = segments.index("{" + name + "}") if "{" + name + "}" in segments else 0
        kind = segments[position - 1] if position else None
        if kind in KNOWN_IDS and isinstance(value, int):
            known[name] = KNOWN_IDS[kind]
    if not known:
        return st.just(path_parameters)
    return st.sampled_from([path_parameters, {**path_parameters, **known}])


@pytest.fixture
def known_objects(org):
    account = factories.CarrierAccountFactory(organization=org)
    line = factories.LineFactory(organization=org, carrier_account=account)
    contact = factories.ContactFactory(organization=org)
    conversation = factories.ConversationFactory(organization=org, line=line, contact=contact)
    factories.MessageFactory(conversation=conversation)
    blast = factories.BlastFactory(organization=org, line=line)
    KNOWN_IDS.clear()
    KNOWN_IDS.update(
        {
            "lines": line.pk,
            "contacts": contact.pk,
            "conversations": conversation.pk,
            "blasts": blast.pk,
            "opt-outs": OptOut.objects.create(organization=org, phone_number=factories.next_number("737")).pk,
            "api-keys": api_key_create(organization=org, name="fuzzed").api_key.pk,
            "links": link_create(organization_id=org.pk, target_url="https://example.com/p", blast_id=blast.pk).pk,
            "backfill-runs": BackfillRun.objects.create(organization=org, line=line).pk,
        }
    )
    yield KNOWN_IDS
    KNOWN_IDS.clear()


@pytest.fixture
def _keep_test_connection():
    # The WSGI handler closes the database connection after each request, which would end the test's
    # transaction; django.test.Client disconnects the same receivers for the same reason.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_schema(case, raw_key, known_objects, _keep_test_connection):
    case.call_and_validate(
        headers={"Authorization": f"Bearer {raw_key}"},
        excluded_checks=EXCLUDED,
        additional_checks=[negative_data_rejected],
    )
