"""BlastRecount, BlastProgress and NumberFlag now belong to messaging (messaging 0013): removed from this
app's state only. The tables stay, with their rows, under messaging's models (Meta.db_table)."""

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('postprocessing', '0007_event_message_id_unindexed'),
        ('messaging', '0013_processing_rows_from_postprocessing'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.DeleteModel(name='BlastProgress'),
                migrations.DeleteModel(name='BlastRecount'),
                migrations.DeleteModel(name='NumberFlag'),
            ],
        ),
    ]
