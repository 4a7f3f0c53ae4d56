from django.core.management.base import BaseCommand

from messaging.services.accounts import account_get_or_create_default, api_key_create


class Command(BaseCommand):
    help = "Create an API key for the Twilio-compatible and native APIs; the secret is shown once."

    def add_arguments(self, parser):
        parser.add_argument("name", help="A name that says who uses the key.")

    def handle(self, *args, name: str, **options):
        account = account_get_or_create_default()
        issued = api_key_create(account=account, friendly_name=name)
        self.stdout.write(f"Account SID: {account.sid}")
        self.stdout.write(f"API key SID: {issued.key.sid}")
        self.stdout.write(f"Secret:      {issued.secret}")
        self.stdout.write(
            self.style.WARNING("Store the secret now: it is not kept and cannot be shown again.")
        )
