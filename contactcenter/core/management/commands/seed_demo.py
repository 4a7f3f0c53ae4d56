from django.conf import settings
from django.core.management import BaseCommand, CommandError

from contactcenter.core.demo import DEMO_PASSWORD, DEMO_USERS, demo_seed


class Command(BaseCommand):
    help = "Create the demo users and data (idempotent). Refuses when DEBUG is off."

    def add_arguments(self, parser):
        parser.add_argument(
            "--force", action="store_true", help="seed even with DEBUG off (known passwords!)"
        )

    def handle(self, *args, **options):
        if not settings.DEBUG and not options["force"]:
            raise CommandError(
                "seed_demo creates users with the known password 'demo'; it refuses to run "
                "with DEBUG off. Pass --force if you really want demo users here."
            )
        demo_seed()
        if options["verbosity"] >= 1:
            self.stdout.write(
                f"demo data ready; logins {', '.join(DEMO_USERS)} with password '{DEMO_PASSWORD}'"
            )
