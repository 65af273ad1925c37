import pytest

from tests import factories


@pytest.fixture
def org(db):
    return factories.OrganizationFactory()


@pytest.fixture
def other_org(db):
    return factories.OrganizationFactory(name="Other tenant")
