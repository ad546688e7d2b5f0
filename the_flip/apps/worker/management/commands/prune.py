"""Run the prune chore now (the worker runs it every hour, WORKER_SCHEDULES["prune"])."""

from django.core.management.base import BaseCommand

from the_flip.apps.worker.chores import prune


class Command(BaseCommand):
    help = "Drop old task records, media files no row references and stale temp files."

    def handle(self, *args, **options) -> None:
        counts = prune()
        self.stdout.write(
            f"task records removed: {counts['task_records']}; "
            f"orphaned media files removed: {counts['orphaned_files']}; "
            f"stale temp files removed: {counts['temp_files']}"
        )
