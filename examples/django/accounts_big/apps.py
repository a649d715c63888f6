from django.apps import AppConfig


class AccountsBigConfig(AppConfig):
    name = "accounts_big"
