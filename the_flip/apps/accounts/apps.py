from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "the_flip.apps.accounts"
    label = "accounts"
