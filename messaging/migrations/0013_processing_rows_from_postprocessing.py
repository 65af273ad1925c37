"""BlastRecount, BlastProgress and NumberFlag move from the postprocessing app to messaging (the app whose
processors write them). Django's state only: the tables keep their names (Meta.db_table) and their rows,
indexes and constraints; postprocessing 0008 removes the models from its own state, again without
touching the database. The admin's content types move with them, so permissions and the admin's
history of these rows stay attached."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


MODELS = ["blastprogress", "blastrecount", "numberflag"]


def _relabel(apps, old: str, new: str) -> None:
    content_type = apps.get_model("contenttypes", "ContentType")
    for model in MODELS:
        if not content_type.objects.filter(app_label=new, model=model).exists():
            content_type.objects.filter(app_label=old, model=model).update(app_label=new)


def _move_content_types(apps, schema_editor):
    _relabel(apps, "postprocessing", "messaging")


def _move_content_types_back(apps, schema_editor):
    _relabel(apps, "messaging", "postprocessing")


class Migration(migrations.Migration):

    dependencies = [
        ('messaging', '0012_message_in_flight'),
        ('postprocessing', '0007_event_message_id_unindexed'),
        ('contenttypes', '0002_remove_content_type_name'),
        ('organizations', '0002_quiet_hours_enabled'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(database_operations=[], state_operations=[
        migrations.CreateModel(
            name='BlastProgress',
            fields=[
                ('blast_id', models.BigIntegerField(primary_key=True, serialize=False)),
                ('at', models.DateTimeField()),
            ],
            options={
                'db_table': 'postprocessing_blastprogress',
            },
        ),
        migrations.CreateModel(
            name='BlastRecount',
            fields=[
                ('blast_id', models.BigIntegerField(primary_key=True, serialize=False)),
                ('marked_at', models.DateTimeField()),
            ],
            options={
                'db_table': 'postprocessing_blastrecount',
            },
        ),
        migrations.CreateModel(
            name='NumberFlag',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('phone_number', models.CharField(help_text='E.164', max_length=20)),
                ('kind', models.CharField(choices=[('deleted', 'Carrier reported Deleted (may mean opted out)'), ('opted_out', 'Carrier says the subscriber opted out'), ('unknown_subscriber', 'Number unknown / not in service')], max_length=20)),
                ('carrier_status', models.CharField(blank=True, max_length=32)),
                ('error_code', models.CharField(blank=True, max_length=32)),
                ('error_reason', models.CharField(blank=True, max_length=500)),
                ('message_id', models.BigIntegerField(blank=True, null=True)),
                ('first_seen_at', models.DateTimeField()),
                ('last_seen_at', models.DateTimeField()),
                ('review', models.CharField(choices=[('pending', 'To review'), ('opted_out', 'Opted out'), ('dismissed', 'Dismissed')], default='pending', max_length=10)),
                ('reviewed_at', models.DateTimeField(blank=True, null=True)),
                ('contact', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='messaging.contact')),
                ('organization', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='organizations.organization')),
                ('reviewed_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
            ],
            options={
                'db_table': 'postprocessing_numberflag',
                'ordering': ['-last_seen_at', '-id'],
                'indexes': [models.Index(fields=['organization', 'review'], name='numberflag_org_review')],
                'constraints': [models.UniqueConstraint(fields=('organization', 'phone_number'), name='uniq_numberflag_org_number')],
            },
        ),
        ]),
        migrations.RunPython(_move_content_types, _move_content_types_back),
    ]
