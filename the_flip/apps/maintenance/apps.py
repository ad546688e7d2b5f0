from django.apps import AppConfig
from django.conf import settings


class MaintenanceConfig(AppConfig):
    name = "the_flip.apps.maintenance"
    label = "maintenance"

    def ready(self) -> None:
        from django.core import checks

        from the_flip.storage import CHECK_TAG, check_media_storage

        checks.register(check_media_storage, CHECK_TAG)
        # Uploads stream into DATA_DIR/tmp; make sure the folders exist on a fresh volume
        # (the media folder only when media is kept on local disk, not in a bucket).
        folders = [settings.FILE_UPLOAD_TEMP_DIR]
        if not settings.BUCKET_NAME:
            folders.append(settings.MEDIA_ROOT)
        for folder in folders:
            folder.mkdir(parents=True, exist_ok=True)
