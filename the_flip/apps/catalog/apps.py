from django.apps import AppConfig


class CatalogConfig(AppConfig):
    name = "the_flip.apps.catalog"
    label = "catalog"
