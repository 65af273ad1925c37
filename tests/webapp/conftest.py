"""Fixtures shared by the web app's tests: a member of the test organization (role: the factory's
default), a client signed in as that member, an admin, and `signed_in` for a client of any membership."""

import pytest
from django.test import Client

from organizations.models import Role
from tests import factories


@pytest.fixture
def member(org):
    return factories.MembershipFactory(organization=org)


@pytest.fixture
def agent(client, member):
    client.force_login(member.user)
    return client


@pytest.fixture
def admin(org):
    return factories.MembershipFactory(organization=org, role=Role.ADMIN)


def signed_in(membership) -> Client:
    """A client of its own, signed in as the membership's user."""
    client = Client()
    client.force_login(membership.user)
    return client
