"""Send one text to a list of numbers through a messaging service, and watch it leave.

    python manage.py send_bulk --service MG... --body "Hello" --to-file numbers.csv

Each number goes through `message_create` like an API request (source "bulk"): a number the
service cannot take is refused with its error code and the run goes on. Then, unless
`--no-wait`, the command reads the run's statuses from the database every `--interval`
seconds and shows them live until every message is sent or further, or `--timeout` passes.

Exit code 0 when every number was accepted (and, when waiting, every message was sent or
delivered in time); 1 when any was refused, failed or undelivered, or the wait timed out.
"""

import csv
import io
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from messaging.errors import MessagingError, error_message
from messaging.models import Account, MessagingService
from messaging.selectors import BulkProgress, bulk_progress
from messaging.services.messages import MessageRequest, message_create
from messaging.sids import is_sid
from messaging.statuses import FAILURES, Status

# Statuses shown live, in the order a message moves through them.
SHOWN = (
    Status.ACCEPTED,
    Status.QUEUED,
    Status.SENDING,
    Status.SENT,
    Status.DELIVERED,
    Status.FAILED,
    Status.UNDELIVERED,
)
# Out of the queue: the wait is over for these (a `sent` message may still be delivered).
SETTLED = frozenset(
    {
        Status.SENT,
        Status.DELIVERED,
        Status.READ,
        Status.FAILED,
        Status.UNDELIVERED,
        Status.CANCELED,
    }
)
HEADER_NAMES = frozenset({"to", "phone", "phone_number", "phone number", "number", "mobile"})
REFUSAL_EXAMPLES = 3


@dataclass(frozen=True)
class Recipient:
    line: int
    to: str


@dataclass(frozen=True)
class Refusal:
    recipient: Recipient
    code: int
    message: str


def read_recipients(path: Path) -> list[Recipient]:
    """The numbers of a CSV file (or of a file with one number a line), with their line
    numbers. A first row naming the column ("to", "phone"…) is a header: that column is read,
    else the first one. Blank rows are skipped; anything else is passed on, to be refused by
    `message_create` with a reason if it is not a number."""
    text = path.read_text(encoding="utf-8-sig")  # a BOM, as spreadsheets write
    try:
        dialect: type[csv.Dialect] | csv.Dialect = csv.Sniffer().sniff(
            text[:4096], delimiters=",;\t"
        )
    except csv.Error:  # one column: nothing to sniff
        dialect = csv.excel
    recipients: list[Recipient] = []
    column: int | None = None
    reader = csv.reader(io.StringIO(text, newline=""), dialect)
    for row in reader:
        cells = [cell.strip() for cell in row]
        if not any(cells):
            continue
        if column is None:
            names = [cell.lower() for cell in cells]
            header = next((i for i, name in enumerate(names) if name in HEADER_NAMES), None)
            column = header if header is not None else 0
            if header is not None:
                continue
        to = cells[column] if column < len(cells) else ""
        recipients.append(Recipient(line=reader.line_num, to=to))
    return recipients


def wait_for_outcomes(
    *,
    account: Account,
    run: str,
    first_id: int,
    last_id: int,
    total: int,
    timeout: float,
    interval: float = 0.5,
    on_update: Callable[[BulkProgress], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> tuple[BulkProgress, bool]:
    """Poll the run's statuses until all `total` messages are settled (True) or `timeout`
    seconds pass (False). Returns the last figures read."""
    deadline = clock() + timeout
    while True:
        progress = bulk_progress(account=account, run=run, first_id=first_id, last_id=last_id)
        if on_update is not None:
            on_update(progress)
        if settled(progress) >= total:
            return progress, True
        if clock() >= deadline:
            return progress, False
        sleep(interval)


def settled(progress: BulkProgress) -> int:
    return sum(n for status, n in progress.statuses.items() if status in SETTLED)


def figures_line(statuses: dict[str, int]) -> str:
    return " · ".join(f"{status} {statuses.get(status, 0)}" for status in SHOWN)


class Command(BaseCommand):
    help = (
        "Send one text to every number of a file through a messaging service and show, live, "
        "how many are accepted, queued, sent, delivered or failed."
    )

    def add_arguments(self, parser):
        parser.add_argument("--service", required=True, help="The messaging service (MG…).")
        parser.add_argument("--body", required=True, help="The text to send.")
        parser.add_argument(
            "--to-file",
            required=True,
            type=Path,
            help='CSV or one number a line; a header row ("to", "phone") is allowed.',
        )
        parser.add_argument(
            "--account", help="The account (AC…) sending; default: the service's account."
        )
        parser.add_argument("--status-callback", help="Status callback URL for every message.")
        parser.add_argument(
            "--no-wait",
            action="store_true",
            help="Only create the messages; do not wait for them to be sent.",
        )
        parser.add_argument(
            "--timeout",
            type=float,
            default=600.0,
            help="Seconds to wait for every message to be sent (default 600).",
        )
        parser.add_argument(
            "--interval",
            type=float,
            default=0.5,
            help="Seconds between two reads of the statuses (default 0.5).",
        )
        parser.add_argument(
            "--progress",
            choices=("auto", "always", "never"),
            default="auto",
            help="Progress bars: on a terminal only (auto), always, or never.",
        )

    def handle(self, *args, **options):
        service, account = self._service_and_account(options["service"], options["account"])
        path: Path = options["to_file"]
        if not path.is_file():
            raise CommandError(f"{path}: no such file.")
        try:
            recipients = read_recipients(path)
        except UnicodeDecodeError as error:
            raise CommandError(f"{path}: not UTF-8 text ({error.reason}).") from error
        if not recipients:
            raise CommandError(f"{path}: no numbers in the file.")
        # The bars write carriage returns: straight to the stream, not through OutputWrapper.
        self.bar_stream = options.get("stderr") or sys.stderr
        self.bar_disabled = {"auto": None, "always": False, "never": True}[options["progress"]]

        run = uuid.uuid4().hex[:12]
        ids, refusals = self._create(
            account=account,
            service=service,
            recipients=recipients,
            body=options["body"],
            status_callback=options["status_callback"],
            run=run,
        )
        self.stdout.write(
            f"{len(ids)} of {len(recipients)} accepted by {service.sid}, {len(refusals)} refused "
            f'(tags: {{"bulk": "{run}"}}).'
        )
        self._report_refusals(refusals)
        if not ids:
            raise CommandError("No message was accepted.", returncode=1)
        if options["no_wait"]:
            if refusals:
                raise CommandError(f"{len(refusals)} refused.", returncode=1)
            return

        progress, finished = self._wait(
            account=account,
            run=run,
            first_id=min(ids),
            last_id=max(ids),
            total=len(ids),
            timeout=options["timeout"],
            interval=options["interval"],
        )
        self.stdout.write(figures_line(progress.statuses))
        failed = sum(progress.statuses.get(status, 0) for status in FAILURES)
        for code, count in sorted(progress.failure_codes.items(), key=lambda kv: (-kv[1], kv[0])):
            reason = error_message(code) or "no code"
            self.stdout.write(f"  failed or undelivered {code} ({reason}): {count}")
        problems = []
        if refusals:
            problems.append(f"{len(refusals)} refused")
        if failed:
            problems.append(f"{failed} failed or undelivered")
        if not finished:
            problems.append(
                f"{len(ids) - settled(progress)} still waiting after {options['timeout']:g} s"
            )
        if problems:
            raise CommandError(", ".join(problems) + ".", returncode=1)
        self.stdout.write(self.style.SUCCESS(f"All {len(ids)} messages sent."))

    def _service_and_account(
        self, service_sid: str, account_sid: str | None
    ) -> tuple[MessagingService, Account]:
        if not is_sid(service_sid, "MG"):
            raise CommandError(f"{service_sid!r} is not a messaging service sid (MG…).")
        service = MessagingService.objects.select_related("account").filter(sid=service_sid).first()
        if service is None:
            raise CommandError(f"No messaging service {service_sid}.")
        if account_sid is None:
            return service, service.account
        account = Account.objects.filter(sid=account_sid).first()
        if account is None:
            raise CommandError(f"No account {account_sid}.")
        if service.account_id != account.id:
            raise CommandError(f"{service.sid} is not a messaging service of {account.sid}.")
        return service, account

    def _create(
        self,
        *,
        account: Account,
        service: MessagingService,
        recipients: list[Recipient],
        body: str,
        status_callback: str | None,
        run: str,
    ) -> tuple[list[int], list[Refusal]]:
        ids: list[int] = []
        refusals: list[Refusal] = []
        with tqdm(
            total=len(recipients),
            desc="Creating",
            unit="msg",
            file=self.bar_stream,
            disable=self.bar_disabled,
        ) as bar:
            for recipient in recipients:
                try:
                    message = message_create(
                        account=account,
                        request=MessageRequest(
                            to=recipient.to,
                            messaging_service_sid=service.sid,
                            body=body,
                            status_callback=status_callback or None,
                            tags={"bulk": run},
                        ),
                        source="bulk",
                    )
                except MessagingError as error:
                    refusals.append(Refusal(recipient, error.code, error.message))
                else:
                    ids.append(message.id)
                bar.set_postfix_str(f"accepted {len(ids)} · refused {len(refusals)}", refresh=False)
                bar.update()
        return ids, refusals

    def _report_refusals(self, refusals: list[Refusal]) -> None:
        by_code: dict[int, list[Refusal]] = {}
        for refusal in refusals:
            by_code.setdefault(refusal.code, []).append(refusal)
        for code, group in sorted(by_code.items(), key=lambda kv: (-len(kv[1]), kv[0])):
            self.stdout.write(f"  refused {code} ({error_message(code)}): {len(group)}")
            for refusal in group[:REFUSAL_EXAMPLES]:
                self.stdout.write(
                    f"    line {refusal.recipient.line}: {refusal.recipient.to!r} — "
                    f"{refusal.message}"
                )
            if len(group) > REFUSAL_EXAMPLES:
                self.stdout.write(f"    … and {len(group) - REFUSAL_EXAMPLES} more")

    def _wait(self, *, total: int, **kwargs) -> tuple[BulkProgress, bool]:
        with tqdm(
            total=total,
            desc="Sending",
            unit="msg",
            file=self.bar_stream,
            disable=self.bar_disabled,
        ) as bar:

            def show(progress: BulkProgress) -> None:
                bar.update(settled(progress) - bar.n)
                bar.set_postfix_str(figures_line(Counter(progress.statuses)))

            return wait_for_outcomes(total=total, on_update=show, **kwargs)
