import signal

from django.conf import settings
from django.core.management import BaseCommand, CommandError, call_command
from django.db import connections

from contactcenter.core.demo import DEMO_PASSWORD, DEMO_USERS
from contactcenter.core.launcher import (
    Launcher,
    answers_ping,
    python_module,
    wait_for_unix_socket,
)


class Command(BaseCommand):
    help = (
        "Start the whole product in the foreground: daphne (HTTP + websockets), a Celery "
        "worker and Celery beat, and an embedded Valkey when REDIS_URL is unset. Migrates "
        "first, and seeds demo data when DEBUG is on. Ctrl-C stops everything."
    )

    def add_arguments(self, parser):
        parser.add_argument("--host", default=settings.HOST, help="bind address (HOST)")
        parser.add_argument("--port", type=int, default=settings.PORT, help="port (PORT)")
        parser.add_argument("--no-migrate", action="store_true", help="skip migrate")
        parser.add_argument("--no-demo", action="store_true", help="skip seed_demo")
        parser.add_argument(
            "--concurrency",
            type=int,
            default=settings.CELERY_WORKER_CONCURRENCY,
            help="Celery worker processes (CELERY_WORKER_CONCURRENCY)",
        )

    def handle(self, *args, **options):
        launcher = Launcher(host=options["host"], port=options["port"], write=self._write_line)
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, launcher.request_stop)
        try:
            code = self._run(launcher, options)
        finally:
            launcher.say("stopping")
            launcher.stop_all()
            launcher.say("stopped")
        if code:
            raise CommandError("the product stopped because a process failed", returncode=code)

    def _run(self, launcher: Launcher, options) -> int:
        settings.DATA_DIR.mkdir(parents=True, exist_ok=True)
        if settings.REDIS_EMBEDDED and not self._start_embedded_valkey(launcher):
            return 1
        if launcher.stopping:
            return 0
        self._prepare_database(launcher, options)
        # Children open their own connections; the launcher keeps none open.
        connections.close_all()
        self._start_processes(launcher, options)
        if not launcher.wait_for_health():
            if launcher.stopping:
                return 0
            launcher.say(f"{launcher.local_url}/healthz did not answer 200; stopping")
            return 1
        self._banner(launcher, demo=self._seeds_demo(options))
        return launcher.watch()

    def _start_embedded_valkey(self, launcher: Launcher) -> bool:
        socket_path = settings.EMBEDDED_VALKEY_SOCKET
        # Checked before starting ours: otherwise the other server's PONG would pass for ours.
        if answers_ping(socket_path):
            launcher.say(
                f"a Valkey already answers on {socket_path}: another `serve` is running with "
                f"DATA_DIR={settings.DATA_DIR}; stop it or set another DATA_DIR"
            )
            return False
        launcher.start_child(
            "valkey",
            python_module(
                "contactcenter.core.embedded_valkey",
                "--socket",
                str(socket_path),
                "--data-dir",
                str(settings.DATA_DIR / "valkey"),
            ),
        )
        if wait_for_unix_socket(socket_path, launcher=launcher):
            return True
        launcher.say(f"embedded Valkey did not answer on {socket_path}")
        return False

    def _seeds_demo(self, options) -> bool:
        return settings.DEBUG and not options["no_demo"]

    def _prepare_database(self, launcher: Launcher, options) -> None:
        if not options["no_migrate"]:
            launcher.say("migrating the database")
            call_command("migrate", interactive=False, verbosity=0)
        if self._seeds_demo(options):
            launcher.say("seeding demo data")
            call_command("seed_demo", verbosity=0)
        if not settings.DEBUG:
            call_command("collectstatic", interactive=False, verbosity=0)

    def _start_processes(self, launcher: Launcher, options) -> None:
        concurrency = str(options["concurrency"])
        launcher.start_child(
            "worker",
            python_module(
                "celery",
                "-A",
                "contactcenter",
                "--quiet",  # no multi-line banner: one line per event
                "worker",
                "--loglevel",
                settings.LOG_LEVEL,
                "--concurrency",
                concurrency,
                "--hostname",
                "worker@%h",
            ),
        )
        launcher.start_child(
            "beat",
            python_module(
                "celery",
                "-A",
                "contactcenter",
                "--quiet",
                "beat",
                "--loglevel",
                settings.LOG_LEVEL,
                "--schedule",
                str(settings.DATA_DIR / "celerybeat-schedule"),
            ),
        )
        launcher.start_child(
            "web",
            python_module(
                "daphne",
                "--bind",
                launcher.host,
                "--port",
                str(launcher.port),
                "--proxy-headers",
                "contactcenter.asgi:application",
            ),
        )

    def _banner(self, launcher: Launcher, *, demo: bool) -> None:
        url = launcher.local_url
        launcher.say("")
        launcher.say(f"contactcenter is up at {url}/")
        launcher.say(f"  health: {url}/healthz   admin: {url}/admin/")
        if demo:
            logins = ", ".join(DEMO_USERS)
            launcher.say(f"  demo logins (password '{DEMO_PASSWORD}'): {logins}")
        launcher.say("  press Ctrl-C to stop")
        launcher.say("")

    def _write_line(self, line: str) -> None:
        self.stdout.write(line)
        self.stdout.flush()
