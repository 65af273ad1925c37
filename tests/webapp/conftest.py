"""Fixtures shared by the web app's tests: a member of the test organization (role: the factory's
default) and a client signed in as that member."""

import pytest

from tests import factories


@pytest.fixture
def member(org):
    return factories.MembershipFactory(organization=org)


@pytest.fixture
def agent(client, member):
    client.force_login(member.user)
    return client
