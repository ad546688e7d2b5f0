from django.core.management.base import BaseCommand
from huey.contrib.djhuey import HUEY


class Command(BaseCommand):
    help = "Create the huey queue tables if they are missing (idempotent; run at every start)."

    def handle(self, *args, **options) -> None:
        HUEY.storage.initialize_schema()
        self.stdout.write(f"Queue ready: {type(HUEY.storage).__name__} '{HUEY.name}'.")
