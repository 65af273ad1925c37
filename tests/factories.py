"""Test data factories (factory_boy). Real rows in the real database; nothing mocked."""

import itertools

import factory
from django.contrib.auth import get_user_model

from carriers.models import CarrierAccount, Provider
from messaging.models import Blast, Contact, Conversation, Direction, Line, Message
from organizations.models import Membership, Organization, Role

_numbers = itertools.count(1000)


def next_number(area: str = "512") -> str:
    """A valid, unique US E.164 number (555-01xx is reserved for fiction but not 'valid'; use real exchanges)."""
    n = next(_numbers)
    return f"+1{area}{200 + n // 10000:03d}{n % 10000:04d}"


class OrganizationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Organization

    name = factory.Sequence(lambda n: f"Org {n}")


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}@example.com")
    email = factory.SelfAttribute("username")
    password = factory.django.Password("pw-for-tests-123")


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    user = factory.SubFactory(UserFactory)
    organization = factory.SubFactory(OrganizationFactory)
    role = Role.ADMIN


class CarrierAccountFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CarrierAccount

    organization = factory.SubFactory(OrganizationFactory)
    name = "Sinch US"
    provider = Provider.SINCH
    config = factory.LazyFunction(lambda: {"service_plan_id": "plan123", "api_token": "secret-token", "region": "us"})


class LineFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Line

    organization = factory.SubFactory(OrganizationFactory)
    phone_number = factory.LazyFunction(next_number)
    name = factory.Sequence(lambda n: f"Line {n}")
    carrier_account = factory.SubFactory(CarrierAccountFactory, organization=factory.SelfAttribute("..organization"))
    rate_per_second = 100.0


class ContactFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Contact

    organization = factory.SubFactory(OrganizationFactory)
    phone_number = factory.LazyFunction(lambda: next_number("737"))
    first_name = factory.Sequence(lambda n: f"First{n}")
    last_name = "Tester"


class ConversationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Conversation

    organization = factory.SubFactory(OrganizationFactory)
    line = factory.SubFactory(LineFactory, organization=factory.SelfAttribute("..organization"))
    contact = factory.SubFactory(ContactFactory, organization=factory.SelfAttribute("..organization"))


class MessageFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Message

    conversation = factory.SubFactory(ConversationFactory)
    organization = factory.SelfAttribute("conversation.organization")
    line = factory.SelfAttribute("conversation.line")
    contact = factory.SelfAttribute("conversation.contact")
    direction = Direction.OUTBOUND
    body = "Hello there"
    # The text as the phone saw it is always filled (docs/messaging.md): the body unless a test says otherwise.
    rendered_body = factory.LazyAttribute(lambda m: m.body)


class BlastFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Blast

    organization = factory.SubFactory(OrganizationFactory)
    line = factory.SubFactory(LineFactory, organization=factory.SelfAttribute("..organization"))
    name = factory.Sequence(lambda n: f"Blast {n}")
    body = "Hi {first_name}, our sale starts today!"
