"""Quiet hours get an explicit on/off switch (issue 14.2).

Until now "off" was spelled start = end. Existing organizations that used that spelling keep their
behaviour: they are switched off here, before the constraint that forbids an empty window while on.
"""

from django.db import migrations, models


def off_where_start_equals_end(apps, schema_editor):
    Organization = apps.get_model("organizations", "Organization")
    Organization.objects.filter(quiet_hours_start=models.F("quiet_hours_end")).update(quiet_hours_enabled=False)


class Migration(migrations.Migration):
    dependencies = [
        ("organizations", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="organization",
            name="quiet_hours_enabled",
            field=models.BooleanField(default=True),
        ),
        migrations.RunPython(off_where_start_equals_end, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name="organization",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    ("quiet_hours_enabled", True), ("quiet_hours_start", models.F("quiet_hours_end")), _negated=True
                ),
                name="org_quiet_hours_window_not_empty",
                violation_error_message="Quiet hours that are on need a start different from their end.",
            ),
        ),
    ]
