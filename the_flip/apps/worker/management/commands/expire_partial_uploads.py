"""Run the expire_partial_uploads chore now (the worker runs it every hour)."""

from django.core.management.base import BaseCommand

from the_flip.apps.worker.chores import expire_partial_uploads


class Command(BaseCommand):
    help = "Delete resumable uploads past their Upload-Expires, and their bytes."

    def handle(self, *args, **options) -> None:
        counts = expire_partial_uploads()
        self.stdout.write(
            f"expired uploads removed: {counts['expired']}; "
            f"orphaned partial objects removed: {counts['orphaned_objects']}"
        )
