from django.apps import AppConfig


class AccountsUuidConfig(AppConfig):
    name = "accounts_uuid"
