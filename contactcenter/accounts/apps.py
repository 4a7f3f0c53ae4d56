from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "contactcenter.accounts"
    label = "accounts"
    verbose_name = "Accounts and roles"
