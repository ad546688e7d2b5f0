"""TaskRecord gains the state `skipped`; the runs recorded before as succeeded with the error
"gone: no work" / "skipped: no work" become skipped, so they stop counting as successes."""

from django.db import migrations, models


def mark_old_skips(apps, schema_editor) -> None:
    TaskRecord = apps.get_model("worker", "TaskRecord")
    TaskRecord.objects.filter(state="succeeded", error__endswith=": no work").update(
        state="skipped"
    )


class Migration(migrations.Migration):
    dependencies = [
        ("worker", "0002_task_record"),
    ]

    operations = [
        migrations.AlterField(
            model_name="taskrecord",
            name="state",
            field=models.CharField(
                choices=[
                    ("queued", "Queued"),
                    ("running", "Running"),
                    ("succeeded", "Succeeded"),
                    ("skipped", "Skipped"),
                    ("failed", "Failed"),
                    ("interrupted", "Interrupted"),
                ],
                db_index=True,
                default="queued",
                max_length=12,
            ),
        ),
        migrations.RunPython(mark_old_skips, migrations.RunPython.noop),
    ]
