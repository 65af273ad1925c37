"""rendered_body becomes the one field holding the text as the phone saw it (issue 14.5).

Rows written before this left it empty: inbound texts from webhooks, auto-replies and conversation
messages still queued, messages migrated from v1. Their body is that text (no template is ever stored
on such a row: blast messages always had rendered_body filled), so it is copied over; inbound texts also
get their segment count and encoding, which the webhook path never counted.
"""

from django.db import migrations, models

BATCH = 5000


def fill_text(apps, schema_editor):
    from messaging import segments

    Message = apps.get_model("messaging", "Message")
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("UPDATE messaging_message SET rendered_body = body WHERE rendered_body = '' AND body <> ''")
    last = 0
    while True:
        rows = list(
            Message.objects.filter(pk__gt=last, direction="in", segments=0)
            .exclude(rendered_body="")
            .order_by("pk")
            .values_list("pk", "rendered_body")[:BATCH]
        )
        if not rows:
            return
        changed = []
        for pk, text in rows:
            info = segments.count(text)
            changed.append(Message(pk=pk, segments=info.segments, encoding=info.encoding))
        Message.objects.bulk_update(changed, ["segments", "encoding"])
        last = rows[-1][0]


class Migration(migrations.Migration):
    dependencies = [
        ("messaging", "0008_blast_prepare_lease"),
    ]

    operations = [
        migrations.AlterField(
            model_name="message",
            name="rendered_body",
            field=models.TextField(blank=True, help_text="The text as the phone saw it (what to show)."),
        ),
        migrations.RunPython(fill_text, migrations.RunPython.noop, elidable=True),
    ]
