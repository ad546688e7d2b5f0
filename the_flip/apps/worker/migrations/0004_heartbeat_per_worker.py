# One heartbeat row per worker process instead of a single row (id=1): several workers share
# one database. The old row is only a liveness stamp, so it is dropped, not converted.

import django.utils.timezone
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('worker', '0003_task_record_skipped'),
    ]

    operations = [
        migrations.DeleteModel(name='WorkerHeartbeat'),
        migrations.CreateModel(
            name='WorkerHeartbeat',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('worker', models.CharField(help_text='host:pid:nonce', max_length=120, unique=True)),
                ('host', models.CharField(help_text='hostname/pid namespace: pids are comparable only within one', max_length=200)),
                ('pid', models.PositiveIntegerField(blank=True, null=True)),
                ('started_at', models.DateTimeField(default=django.utils.timezone.now)),
                ('beat_at', models.DateTimeField(db_index=True)),
            ],
            options={'ordering': ['-beat_at']},
        ),
    ]
