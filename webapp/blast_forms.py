"""The blast composer's form: parses and checks the input; the blast itself is made by
messaging.services.blasts (blast_create / blast_update), the API's services, which check it again."""

from __future__ import annotations

from datetime import datetime
from typing import cast
from zoneinfo import ZoneInfo

from django import forms
from django.utils import timezone

from messaging.models import Line
from messaging.selectors import lines_for
from messaging.services import blasts as blast_services
from messaging.services.sending import MAX_BODY
from organizations.models import Organization

CSV_MAX_BYTES = 2 * 1024 * 1024  # the contact import's 10,000 rows with a few columns each fit well under it

AUDIENCES = [
    ("all", "All contacts"),
    ("filter", "Contacts matching a filter"),
    ("csv", "Pasted or uploaded CSV"),
]


class BlastForm(forms.Form):
    name = forms.CharField(max_length=200, required=False)
    line: forms.ModelChoiceField = forms.ModelChoiceField(queryset=Line.objects.none(), empty_label=None)
    audience = forms.ChoiceField(choices=AUDIENCES, widget=forms.RadioSelect, initial="all")
    filter_fields = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2, "placeholder": "city=Austin"}),
        help_text="Custom fields, one name=value a line; contacts with all of them.",
    )
    created_since = forms.DateField(
        required=False, widget=forms.DateInput(attrs={"type": "date"}), help_text="Contacts added on or after."
    )
    csv_text = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": "phone_number,first_name\n+15125550123,Ada"}),
        label="CSV",
        help_text="A header row with a phone_number column; other columns as in the contact import. "
        "New numbers become contacts.",
    )
    csv_file = forms.FileField(required=False, label="or a CSV file")
    body = forms.CharField(
        max_length=MAX_BODY,
        strip=False,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text="Merge fields: {first_name}, {last_name}, {email}, {phone_number} and custom fields.",
    )
    when = forms.ChoiceField(
        choices=[("now", "Send when launched"), ("later", "Schedule")], widget=forms.RadioSelect, initial="now"
    )
    send_at = forms.DateTimeField(
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"],
    )

    def __init__(self, *args, organization: Organization, editing: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.organization = organization
        # Lines that can send: active, with a carrier account (the service refuses others too).
        cast(forms.ModelChoiceField, self.fields["line"]).queryset = lines_for(organization=organization).filter(
            is_active=True, carrier_account__isnull=False
        )
        self.editing = editing
        if editing:
            cast(forms.ChoiceField, self.fields["audience"]).choices = [
                ("keep", "Keep the current recipients"),
                *AUDIENCES,
            ]
            self.fields["audience"].initial = "keep"
        self.fields["send_at"].help_text = f"In {organization.time_zone}."

    def clean_filter_fields(self) -> dict:
        found: dict[str, str] = {}
        for number, raw in enumerate(self.cleaned_data.get("filter_fields", "").splitlines(), start=1):
            if not raw.strip():
                continue
            name, sep, value = raw.partition("=")
            if not sep or not name.strip():
                raise forms.ValidationError(f"Line {number}: write name=value.")
            found[name.strip()] = value.strip()
        return found

    def clean_send_at(self) -> datetime | None:
        value = self.cleaned_data.get("send_at")
        if value is None:
            return None
        # The browser's datetime-local has no zone: it is the organization's wall time.
        zone = ZoneInfo(self.organization.time_zone)
        if timezone.is_aware(value):
            value = timezone.make_naive(value, timezone.get_current_timezone())
        return value.replace(tzinfo=zone)

    def clean_csv_file(self):
        upload = self.cleaned_data.get("csv_file")
        if upload is None:
            return ""
        if upload.size > CSV_MAX_BYTES:
            raise forms.ValidationError(f"At most {CSV_MAX_BYTES // 1024 // 1024} MB.")
        try:
            return upload.read().decode("utf-8-sig")
        except UnicodeDecodeError:
            raise forms.ValidationError("The CSV must be UTF-8.") from None

    def clean(self):
        data = super().clean()
        assert data is not None  # Form.clean returns cleaned_data
        audience = data.get("audience")
        if audience == "filter" and not data.get("filter_fields") and not data.get("created_since"):
            self.add_error("filter_fields", "Give at least one name=value, or a date for 'Contacts added on or after'.")
        if audience == "csv" and not (data.get("csv_text", "").strip() or data.get("csv_file")):
            self.add_error("csv_text", "Paste a CSV or choose a file.")
        if data.get("when") == "later":
            send_at = data.get("send_at")
            if send_at is None:
                if "send_at" not in self.errors:
                    self.add_error("send_at", "Give the date and time to send.")
            elif send_at <= timezone.now():
                self.add_error("send_at", "This time has passed; choose a later one or send when launched.")
        return data

    def chosen_audience(self) -> blast_services.Audience | None:
        """The chosen audience (None: keep the current one). A CSV imports its new numbers as contacts: call
        inside the transaction that saves the blast."""
        data = self.cleaned_data
        kind = data["audience"]
        if kind == "keep":
            return None
        if kind == "all":
            return blast_services.Audience(all_contacts=True)
        if kind == "filter":
            since = data.get("created_since")
            at = (
                datetime.combine(since, datetime.min.time(), tzinfo=ZoneInfo(self.organization.time_zone))
                if since
                else None
            )
            return blast_services.Audience(custom_fields=data["filter_fields"], created_since=at)
        text = data.get("csv_file") or data.get("csv_text", "")
        return blast_services.audience_from_csv(organization=self.organization, text=text)

    def chosen_send_at(self) -> datetime | None:
        return self.cleaned_data.get("send_at") if self.cleaned_data.get("when") == "later" else None


# Where the services' field names land on this form (their ValidationError names the API's fields).
SERVICE_FIELDS = {
    "line": "line",
    "body": "body",
    "send_at": "send_at",
    "name": "name",
    "audience": "audience",
    "audience.contact_ids": "csv_text",
    "csv": "csv_text",
}
