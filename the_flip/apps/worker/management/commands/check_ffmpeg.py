from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from the_flip import media as pipeline


class Command(BaseCommand):
    help = "Check that ffmpeg and ffprobe are installed and runnable; print their versions."

    def handle(self, *args, **options) -> None:
        try:
            versions = pipeline.tool_versions(settings.TRANSCODE_LIMITS)
        except pipeline.MediaError as error:
            raise CommandError(f"{error.reason} {error.detail}".strip()) from error
        for tool, version in versions.items():
            self.stdout.write(f"{tool}: {version}")
        self.stdout.write(self.style.SUCCESS("ffmpeg and ffprobe work."))
