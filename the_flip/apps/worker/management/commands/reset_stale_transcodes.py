"""Run the stale-transcode reset now (the worker runs it every minute)."""

from django.core.management.base import BaseCommand

from the_flip.apps.worker.tasks import requeue_stale_transcodes


class Command(BaseCommand):
    help = "Put videos whose worker died back in line and queue videos whose task was lost."

    def handle(self, *args, **options) -> None:
        counts = requeue_stale_transcodes()
        self.stdout.write(
            f"videos back in line: {counts['requeued']}; given up: {counts['gave_up']}"
        )
