from django.apps import AppConfig


class WorkerConfig(AppConfig):
    name = "the_flip.apps.worker"
    label = "worker"
