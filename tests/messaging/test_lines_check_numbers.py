"""`manage.py lines_check_numbers`: lines that went live before the number check, asked about afterwards
(the sandbox carrier's Numbers API over HTTP)."""

from io import StringIO

import pytest
from django.core.management import call_command

from messaging.models import Line
from tests import factories
from tests.sandbox import sandbox_carrier  # noqa: F401  (fixture)
from tests.worker import free_port


def _run(*args) -> str:
    out = StringIO()
    call_command("lines_check_numbers", *args, stdout=out)
    return out.getvalue()


@pytest.mark.django_db
def test_reports_and_archives_lines_whose_carrier_does_not_hold_the_number(org, other_org, sandbox_carrier):  # noqa: F811
    # given: A's line on a number its project holds; B's older line squatting another of A's numbers; a line
    # whose carrier cannot be reached
    a_account = sandbox_carrier.account(org)
    b_account = sandbox_carrier.account(other_org, config={"service_plan_id": "plan-b"})
    sandbox_carrier.hold_numbers("+15125552000", "+15125552001")
    mine = factories.LineFactory(organization=org, carrier_account=a_account, phone_number="+15125552000")
    squatter = factories.LineFactory(organization=other_org, carrier_account=b_account, phone_number="+15125552001")
    dark = factories.CarrierAccountFactory(
        organization=org,
        provider="sandbox",
        config={"service_plan_id": "p", "api_token": "t", "base_url": f"http://127.0.0.1:{free_port()}"},
    )
    unreachable = factories.LineFactory(organization=org, carrier_account=dark, phone_number="+15125552002")
    # when: a dry run, then with --archive
    report = _run()
    assert f"line {squatter.pk} org {other_org.pk} +15125552001: not_held" in report
    assert f"line {unreachable.pk} " in report and "unverifiable" in report
    assert f"line {mine.pk} " not in report and "3 live lines checked: 1 held, 1 not_held, 1 unverifiable" in report
    assert Line.objects.filter(is_active=True).count() == 3  # nothing changed without --archive
    archived = _run("--archive")
    # then: only the squatter is archived, which frees the number for its holder
    assert f"line {squatter.pk} org {other_org.pk} +15125552001: not_held (archived)" in archived
    assert set(Line.objects.filter(is_active=True).values_list("pk", flat=True)) == {mine.pk, unreachable.pk}
