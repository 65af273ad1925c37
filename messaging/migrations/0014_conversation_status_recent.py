# The inbox filtered by open/closed read every conversation of that status and sorted them (issue 17.2,
# bench/bench_history.py); the new index serves the filtered list in its order. Built and dropped
# CONCURRENTLY: the conversation table of a platform with a history is large and written all the time.

from django.contrib.postgres.operations import AddIndexConcurrently, RemoveIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("messaging", "0013_processing_rows_from_postprocessing"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="conversation",
            index=models.Index(
                fields=["organization", "status", "-last_message_at", "-id"], name="conv_org_status_recent"
            ),
        ),
        RemoveIndexConcurrently(model_name="conversation", name="conv_org_status"),
    ]
