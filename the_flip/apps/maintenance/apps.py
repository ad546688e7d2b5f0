from django.apps import AppConfig
from django.conf import settings


class MaintenanceConfig(AppConfig):
    name = "the_flip.apps.maintenance"
    label = "maintenance"

    def ready(self) -> None:
        # Uploads stream into DATA_DIR/tmp; make sure the folders exist on a fresh volume.
        for folder in (settings.MEDIA_ROOT, settings.FILE_UPLOAD_TEMP_DIR):
            folder.mkdir(parents=True, exist_ok=True)
