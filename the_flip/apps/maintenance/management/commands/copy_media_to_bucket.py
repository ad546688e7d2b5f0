"""Move a one-volume install's media into the bucket: copy every stored file from
DATA_DIR/media (or --source) to the bucket named by BUCKET_NAME, under the same name, and
verify each one's size there.

Safe to run twice (and after an interrupted run): a file already in the bucket with the same
size is left alone; one with another size is copied again. Nothing is deleted locally: once
the app runs on the bucket and the media play, remove DATA_DIR/media yourself.
Exit 0 when every file is in the bucket with its size; 1 otherwise. See docs/deploy.md.
"""

import sys
from pathlib import Path

from django.conf import settings
from django.core.files import File
from django.core.files.storage import default_storage
from django.core.management.base import BaseCommand, CommandError

from the_flip.storage import STORE_ERRORS, is_bucket

MIB = 1024 * 1024


class Command(BaseCommand):
    help = "Copy every stored media file from DATA_DIR/media into the bucket (BUCKET_NAME)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--source",
            type=Path,
            default=None,
            help="the local media folder (default: DATA_DIR/media)",
        )
        parser.add_argument("--dry-run", action="store_true", help="only say what would be copied")

    def handle(self, *args, source: Path | None, dry_run: bool, **options) -> None:
        bucket = default_storage
        if not is_bucket(bucket):
            raise CommandError(
                "Media is not configured to live in a bucket: set BUCKET_NAME and the "
                "AWS_ENDPOINT_URL_S3, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY variables first."
            )
        root = (source or Path(settings.MEDIA_ROOT)).resolve()
        if not root.is_dir():
            raise CommandError(f"There is no media folder at {root}.")
        files = sorted(path for path in root.rglob("*") if path.is_file())
        copied = present = failed = 0
        copied_bytes = 0
        for path in files:
            name = path.relative_to(root).as_posix()
            size = path.stat().st_size
            try:
                in_bucket = bucket.size(name)
            except FileNotFoundError:
                in_bucket = None
            except STORE_ERRORS as error:
                raise CommandError(
                    f"The bucket did not answer ({error}). Nothing more copied; run the "
                    "command again when it does."
                ) from error
            if in_bucket == size:
                present += 1
                continue
            if dry_run:
                self.stdout.write(f"would copy {name} ({size / MIB:.1f} MB)")
                copied += 1
                continue
            try:
                with path.open("rb") as handle:
                    # _save, not save: the object must get exactly this name (save would pick
                    # another one when an object of a different size is in the way).
                    bucket._save(name, File(handle, name=path.name))
                ok = bucket.size(name) == size
            except STORE_ERRORS as error:
                self.stderr.write(f"FAILED {name}: {error}")
                ok = False
            if ok:
                copied += 1
                copied_bytes += size
                self.stdout.write(f"copied {name} ({size / MIB:.1f} MB)")
            else:
                failed += 1
                self.stderr.write(f"FAILED {name}: the size in the bucket does not match")
        verb = "would copy" if dry_run else "copied"
        self.stdout.write(
            f"{len(files)} files in {root}: {verb} {copied}"
            + ("" if dry_run else f" ({copied_bytes / MIB:.1f} MB)")
            + f", {present} already in the bucket, {failed} failed."
        )
        if failed:
            self.stderr.write("Run the command again: it copies only what is missing.")
            sys.exit(1)
