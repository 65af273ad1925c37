import pytest

from tests import factories


@pytest.fixture(autouse=True)
def _carrier_breakers_closed():
    """Breakers live in Redis keyed by carrier account id; a fresh test database reuses ids, so a breaker
    an earlier run (or test) opened must not pause this test's sends."""
    from carriers import breaker

    breaker.reset_all()
    yield


@pytest.fixture
def org(db):
    return factories.OrganizationFactory()


@pytest.fixture
def other_org(db):
    return factories.OrganizationFactory(name="Other tenant")
