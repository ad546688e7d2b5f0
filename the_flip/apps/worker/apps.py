from django.apps import AppConfig


class WorkerConfig(AppConfig):
    name = "the_flip.apps.worker"
    label = "worker"

    def ready(self) -> None:
        # Every process (web, worker, manage.py commands such as check_worker) registers the
        # tasks with huey, so queued tasks can be read, and takes over queueing the
        # transcodes maintenance asks for (see maintenance/attachments.py for why a signal).
        from the_flip.apps.maintenance.attachments import transcode_requested

        from . import tasks

        transcode_requested.connect(tasks.on_transcode_requested, dispatch_uid="the_flip.worker")
