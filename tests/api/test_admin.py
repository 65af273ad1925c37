import pytest
from django.apps import apps
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.urls import reverse

from carriers.models import CarrierAccount
from messaging.models import BlastRecipient, Message, OptOut
from messaging.status import MessageStatus
from organizations.models import ApiKey
from organizations.services import api_key_create
from tests import factories


@pytest.fixture
def staff(client, db):
    user = get_user_model().objects.create_superuser("root@example.com", "root@example.com", "pw-root-123456")
    client.force_login(user)
    return client


@pytest.fixture
def data(org):
    conversation = factories.ConversationFactory(organization=org)
    message = factories.MessageFactory(conversation=conversation)
    blast = factories.BlastFactory(organization=org, line=conversation.line)
    BlastRecipient.objects.create(blast=blast, contact=conversation.contact)
    OptOut.objects.create(organization=org, phone_number=factories.next_number("737"))
    factories.MembershipFactory(organization=org)
    key = api_key_create(organization=org, name="k")
    return {"conversation": conversation, "message": message, "blast": blast, "key": key}


MY_APPS = ["organizations", "messaging", "carriers"]


def test_every_model_of_my_apps_is_registered():
    models = [m for label in MY_APPS for m in apps.get_app_config(label).get_models()]
    assert [m.__name__ for m in models if not admin.site.is_registered(m)] == []


@pytest.mark.parametrize(
    "model", [m for label in MY_APPS for m in apps.get_app_config(label).get_models()], ids=lambda m: m.__name__
)
def test_changelist_and_change_pages_render(staff, data, model):
    opts = model._meta
    assert staff.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")).status_code == 200
    obj = model.objects.first()
    if obj is not None:
        url = reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk])
        assert staff.get(url).status_code == 200


def test_carrier_token_is_masked_everywhere_and_replaceable(staff, org):
    account = factories.CarrierAccountFactory(
        organization=org, config={"service_plan_id": "plan-9", "api_token": "s3cret-token-value"}
    )
    listing = staff.get(reverse("admin:carriers_carrieraccount_changelist")).content.decode()
    change_url = reverse("admin:carriers_carrieraccount_change", args=[account.pk])
    form_page = staff.get(change_url).content.decode()
    assert "s3cret-token-value" not in listing and "s3cret-token-value" not in form_page
    assert "plan-9" in listing and "••••" in form_page
    form = {
        "organization": org.pk,
        "name": account.name,
        "provider": account.provider,
        "config": '{"service_plan_id": "plan-9", "api_token": "••••"}',
        "webhook_username": "",
        "webhook_password": "",
        "backfill_rate": "10",
        "report_delay_seconds": "900",
        "is_active": "on",
        "new_api_token": "",
    }
    # saving without a new token keeps the stored one
    assert staff.post(change_url, form).status_code == 302
    account.refresh_from_db()
    assert account.config["api_token"] == "s3cret-token-value"  # noqa: S105
    # the write-only field replaces it
    assert staff.post(change_url, {**form, "new_api_token": "brand-new-token"}).status_code == 302
    account.refresh_from_db()
    assert account.config == {"service_plan_id": "plan-9", "api_token": "brand-new-token"}
    assert "brand-new-token" not in staff.get(change_url).content.decode()


def test_api_key_admin_prefix_only_create_once_and_revoke(staff, org, data):
    key = data["key"]
    listing = staff.get(reverse("admin:organizations_apikey_changelist")).content.decode()
    assert key.api_key.prefix in listing
    assert key.raw_key not in listing and key.api_key.key_hash not in listing
    # create: the key is in the confirmation message, once
    response = staff.post(
        reverse("admin:organizations_apikey_add"),
        {"organization": org.pk, "name": "from admin", "scope": "all"},
        follow=True,
    )
    created = ApiKey.objects.get(name="from admin")
    page = response.content.decode()
    assert f"API key created: {created.prefix}" in page
    assert created.key_hash and created.prefix.startswith("pk_")
    # revoke action
    staff.post(
        reverse("admin:organizations_apikey_changelist"),
        {"action": "revoke", "_selected_action": [key.api_key.pk, created.pk]},
    )
    assert ApiKey.objects.active().filter(organization=org).count() == 0


def test_message_cancel_action_goes_through_the_state_machine(staff, data):
    queued = data["message"]
    delivered = factories.MessageFactory(conversation=data["conversation"], status=MessageStatus.DELIVERED)
    staff.post(
        reverse("admin:messaging_message_changelist"),
        {"action": "cancel", "_selected_action": [queued.pk, delivered.pk]},
    )
    statuses = dict(Message.objects.filter(pk__in=[queued.pk, delivered.pk]).values_list("pk", "status"))
    assert statuses == {queued.pk: MessageStatus.CANCELED, delivered.pk: MessageStatus.DELIVERED}


def test_carrier_account_repr_hides_secrets(org):
    account = CarrierAccount(organization=org, config={"api_token": "zzz"})
    assert "zzz" not in repr(account) + str(account)
