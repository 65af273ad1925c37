"""The settings pages' forms: they parse input (types, choices, lengths); the rules are the services'
(messaging.services.lines.line_save, organizations.services, integrations.services.connections), which
the API calls too. A service's refusal lands on the field it names (form_service_errors)."""

from __future__ import annotations

from typing import cast
from zoneinfo import available_timezones

from django import forms
from django.core.exceptions import ValidationError

from carriers.models import CarrierAccount
from carriers.selectors import carrier_accounts_for
from messaging.models import MAX_RATE_PER_SECOND
from messaging.phone import try_normalize
from organizations.models import ApiKeyScope, Organization, Role


def _time_field(label: str, help_text: str = "") -> forms.TimeField:
    """A wall-clock time as the browser's time input sends it (HH:MM, or HH:MM:SS with a step)."""
    widget = forms.TimeInput(attrs={"type": "time"}, format="%H:%M")
    return forms.TimeField(label=label, help_text=help_text, widget=widget, input_formats=["%H:%M", "%H:%M:%S"])


def form_service_errors(form: forms.Form, exc: ValidationError) -> None:
    """A service's ValidationError onto the form: a field the form has (or maps the service's name to, in
    its SERVICE_FIELDS) gets its reasons, anything else (or an error without fields) goes above the form."""
    if not hasattr(exc, "error_dict"):
        form.add_error(None, exc.messages)
        return
    renamed = getattr(form, "SERVICE_FIELDS", {})
    for name, messages in exc.message_dict.items():
        name = renamed.get(name, name)
        form.add_error(name if name in form.fields else None, messages)


class LineForm(forms.Form):
    # The number is not edited here: the carrier's refusal of it is about the account chosen.
    SERVICE_FIELDS = {"phone_number": "carrier_account"}

    name = forms.CharField(max_length=100, required=False)
    carrier_account: forms.ModelChoiceField = forms.ModelChoiceField(
        queryset=CarrierAccount.objects.none(),
        required=False,
        empty_label="None (the line sends nothing)",
        help_text="Changing it asks the carrier whether the account holds the number.",
    )
    rate_per_second = forms.FloatField(
        min_value=0.01, max_value=MAX_RATE_PER_SECOND, help_text="Segments per second this number may send."
    )
    is_active = forms.BooleanField(required=False, label="Active", help_text="Archived lines keep their history.")
    nice_start_polling_on_chat_creation = forms.BooleanField(
        required=False,
        label="NICE: start polling when a chat is created",
        help_text="Off: polling for agent replies starts with NICE's first agent event.",
    )

    def __init__(self, *args, organization: Organization, **kwargs):
        super().__init__(*args, **kwargs)
        field = cast(forms.ModelChoiceField, self.fields["carrier_account"])
        field.queryset = carrier_accounts_for(organization=organization).only("id", "name", "provider")


class LineCreateForm(LineForm):
    phone_number = forms.CharField(max_length=40, help_text="Any usual form; stored as E.164.")
    SERVICE_FIELDS: dict[str, str] = {}
    field_order = ["phone_number"]

    def clean_phone_number(self) -> str:
        # The API's PhoneNumberField reads numbers the same way (messaging.phone.try_normalize).
        raw = self.cleaned_data["phone_number"]
        normalized = try_normalize(raw)
        if normalized is None:
            raise forms.ValidationError(f"'{raw}' is not a valid phone number.")
        return normalized


def _zone_choices() -> list[tuple[str, str]]:
    return [(z, z) for z in sorted(available_timezones())]


class QuietHoursForm(forms.Form):
    time_zone = forms.ChoiceField(
        choices=_zone_choices, help_text="For recipients whose number gives no zone, and the app's times."
    )
    quiet_hours_enabled = forms.BooleanField(required=False, label="Quiet hours on")
    quiet_hours_start = _time_field("From")
    quiet_hours_end = _time_field("Until", "In each recipient's own time zone.")


class ApiKeyForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="What uses it, e.g. “CRM sync”.")
    scope = forms.ChoiceField(choices=ApiKeyScope.choices, initial=ApiKeyScope.ALL)


class MemberAddForm(forms.Form):
    email = forms.EmailField(help_text="Their work email: an account is made and invited if they have none.")
    role = forms.ChoiceField(choices=Role.choices, initial=Role.AGENT)


class MemberRoleForm(forms.Form):
    role = forms.ChoiceField(choices=Role.choices)


class RingCentralForm(forms.Form):
    base_url = forms.CharField(max_length=300, label="Platform URL")
    bot_creator_id = forms.CharField(max_length=64, label="Bot person id")
    bot_token = forms.CharField(
        max_length=4000,
        required=False,
        strip=True,
        label="Bot access token",
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Write-only: never displayed. Leave empty to keep the stored one.",
    )
