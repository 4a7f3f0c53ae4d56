"""`manage.py send_bulk`: reads a list of numbers, creates a message for each through the
service (refusals are counted, never fatal), then follows the run's statuses live."""

import io
import threading
import time
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, transaction

from messaging import crypto
from messaging.management.commands.send_bulk import read_recipients, wait_for_outcomes
from messaging.models import Account, Message, MessageStatusChange
from messaging.services.messages import message_status_apply
from messaging.services.optout import optout_block
from messaging.statuses import Status

GOOD = ["+14155550201", "+14155550202", "+14155550203"]
UNREACHABLE = "+14155550209"


def numbers_file(tmp_path: Path, text: str, name: str = "numbers.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def run(*args: str) -> tuple[str, str, CommandError | None]:
    """stdout, stderr and the CommandError raised (None for exit code 0)."""
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("send_bulk", *args, stdout=out, stderr=err)
    except CommandError as error:
        return out.getvalue(), err.getvalue(), error
    return out.getvalue(), err.getvalue(), None


def bulk_messages():
    return Message.objects.filter(tags__has_key="bulk").order_by("id")


# ---------------------------------------------------------------- reading the file


def test_reads_one_number_a_line_skipping_blank_lines(tmp_path):
    path = numbers_file(tmp_path, "+14155550201\n\n  +14155550202  \n\n\n+14155550203\n")
    recipients = read_recipients(path)
    assert [(r.line, r.to) for r in recipients] == [
        (1, "+14155550201"),
        (3, "+14155550202"),
        (6, "+14155550203"),
    ]


def test_reads_the_named_column_of_a_csv_with_a_header(tmp_path):
    path = numbers_file(
        tmp_path,
        '\ufeffname,Phone,city\n"Doe, Ana",+14155550201,SF\n\nBob,+14155550202,LA\nEve,,NY\n',
    )
    recipients = read_recipients(path)
    # The empty phone of a non-empty row is passed on, to be refused with a reason.
    assert [(r.line, r.to) for r in recipients] == [
        (2, "+14155550201"),
        (4, "+14155550202"),
        (5, ""),
    ]
    semicolons = numbers_file(tmp_path, "to;name\n+14155550201;Ana\n", "semicolons.csv")
    assert [r.to for r in read_recipients(semicolons)] == ["+14155550201"]


# ---------------------------------------------------------------- creating


def test_creates_a_message_per_number_through_the_service(world, tmp_path):
    path = numbers_file(tmp_path, "to\n" + "\n".join(GOOD) + "\n")
    out, _err, error = run(
        "--service",
        world.service.sid,
        "--body",
        "Spring sale",
        "--to-file",
        str(path),
        "--status-callback",
        "https://example.com/status",
        "--no-wait",
    )
    assert error is None, out
    assert "3 of 3 accepted" in out
    messages = list(bulk_messages())
    assert [m.to_address for m in messages] == GOOD
    assert {m.status for m in messages} == {Status.ACCEPTED}  # the service picks From later
    assert {m.service_id for m in messages} == {world.service.id}
    assert {m.body for m in messages} == {"Spring sale"}
    assert {m.status_callback for m in messages} == {"https://example.com/status"}
    assert len({m.tags["bulk"] for m in messages}) == 1  # one run, one tag
    assert set(
        MessageStatusChange.objects.filter(message__in=messages).values_list("source", flat=True)
    ) == {"bulk"}


def test_refusals_are_counted_by_code_and_never_stop_the_run(world, tmp_path):
    optout_block(address="+14155550204", service=world.service, keyword="STOP", source="test")
    path = numbers_file(
        tmp_path,
        "phone\n+14155550201\n12345\n+14155550204\nnot a number\n\n+14155550202\n",
    )
    out, _err, error = run(
        "--service", world.service.sid, "--body", "Hi", "--to-file", str(path), "--no-wait"
    )
    assert error is not None and error.returncode == 1
    assert str(error) == "3 refused."
    # 3 refused: two invalid numbers (21211) and an opted-out recipient (21610).
    assert "2 of 5 accepted" in out and "3 refused" in out
    assert "refused 21211 (Invalid 'To' Phone Number): 2" in out
    assert "refused 21610 (Attempt to send to unsubscribed recipient): 1" in out
    assert "line 3: '12345'" in out
    assert "line 5: 'not a number'" in out
    assert "line 4: '+14155550204'" in out
    assert [m.to_address for m in bulk_messages()] == ["+14155550201", "+14155550202"]


def test_a_run_where_nothing_is_accepted_fails(world, tmp_path):
    path = numbers_file(tmp_path, "123\n456\n")
    out, _err, error = run(
        "--service", world.service.sid, "--body", "Hi", "--to-file", str(path), "--no-wait"
    )
    assert error is not None and error.returncode == 1
    assert "0 of 2 accepted" in out
    assert not bulk_messages().exists()


def test_bad_arguments_are_refused_before_anything_is_sent(world, tmp_path):
    path = numbers_file(tmp_path, GOOD[0] + "\n")
    base = ["--body", "Hi", "--to-file", str(path), "--no-wait"]
    _out, _err, error = run("--service", "MGnope", *base)
    assert "not a messaging service sid" in str(error)
    _out, _err, error = run("--service", "MG" + "0" * 32, *base)
    assert "No messaging service" in str(error)
    other = Account.objects.create(
        friendly_name="Other", auth_token_encrypted=crypto.encrypt(crypto.new_token())
    )
    _out, _err, error = run("--service", world.service.sid, "--account", other.sid, *base)
    assert "is not a messaging service of" in str(error)
    _out, _err, error = run("--service", world.service.sid, "--account", "AC" + "0" * 32, *base)
    assert "No account" in str(error)
    empty = numbers_file(tmp_path, "to\n\n\n", "empty.csv")
    _out, _err, error = run(
        "--service", world.service.sid, "--body", "Hi", "--to-file", str(empty), "--no-wait"
    )
    assert "no numbers" in str(error)
    _out, _err, error = run(
        "--service", world.service.sid, "--body", "Hi", "--to-file", str(tmp_path / "missing")
    )
    assert "no such file" in str(error)
    latin1 = tmp_path / "latin1.csv"
    latin1.write_bytes("teléfono\n+14155550201\n".encode("latin-1"))
    _out, _err, error = run(
        "--service", world.service.sid, "--body", "Hi", "--to-file", str(latin1), "--no-wait"
    )
    assert "not UTF-8 text" in str(error)
    assert not bulk_messages().exists()


def test_the_account_option_sends_as_that_account(world, tmp_path):
    path = numbers_file(tmp_path, GOOD[0] + "\n")
    _out, _err, error = run(
        "--service",
        world.service.sid,
        "--account",
        world.account.sid,
        "--body",
        "Hi",
        "--to-file",
        str(path),
        "--no-wait",
    )
    assert error is None
    assert bulk_messages().get().account_id == world.account.id


# ---------------------------------------------------------------- following the run


def advance(message: Message, *statuses: Status, error_code: int | None = None) -> None:
    for status in statuses:
        assert message_status_apply(
            message_id=message.id,
            status=status,
            source="test",
            error_code=error_code if status in (Status.FAILED, Status.UNDELIVERED) else None,
        )


def test_waiting_follows_the_statuses_until_every_message_is_settled(world, tmp_path):
    path = numbers_file(tmp_path, "\n".join([*GOOD, UNREACHABLE]) + "\n")
    assert (
        run("--service", world.service.sid, "--body", "Hi", "--to-file", str(path), "--no-wait")[2]
        is None
    )
    messages = list(bulk_messages())
    tag = messages[0].tags["bulk"]
    # Each pause of the poller moves the run one step forward, as the workers would.
    steps = [
        lambda: [advance(m, Status.QUEUED) for m in messages],
        lambda: [advance(m, Status.SENDING) for m in messages[:2]],
        lambda: [advance(m, Status.SENT) for m in messages[:3]],
        lambda: advance(messages[3], Status.FAILED, error_code=30003),
    ]
    seen: list[dict] = []
    pauses: list[float] = []

    def sleep(seconds: float) -> None:
        pauses.append(seconds)
        steps.pop(0)()

    progress, finished = wait_for_outcomes(
        account=world.account,
        run=tag,
        first_id=messages[0].id,
        last_id=messages[-1].id,
        total=4,
        timeout=60,
        interval=0.5,
        on_update=lambda p: seen.append(dict(p.statuses)),
        sleep=sleep,
    )
    assert finished is True
    assert pauses == [0.5] * 4  # settled once the last one failed: a `sent` one need not wait
    assert seen == [
        {"accepted": 4},
        {"queued": 4},
        {"sending": 2, "queued": 2},
        {"sent": 3, "queued": 1},
        {"sent": 3, "failed": 1},
    ]
    assert progress.failure_codes == {30003: 1}


def test_waiting_gives_up_at_the_timeout(world, tmp_path):
    path = numbers_file(tmp_path, GOOD[0] + "\n")
    run("--service", world.service.sid, "--body", "Hi", "--to-file", str(path), "--no-wait")
    message = bulk_messages().get()
    clock = iter([0.0, 0.4, 0.8, 1.2, 99.0])
    progress, finished = wait_for_outcomes(
        account=world.account,
        run=message.tags["bulk"],
        first_id=message.id,
        last_id=message.id,
        total=1,
        timeout=1.0,
        sleep=lambda seconds: None,
        clock=lambda: next(clock),
    )
    assert finished is False
    assert progress.statuses == {"accepted": 1}


def test_a_run_still_waiting_at_the_timeout_exits_1(world, tmp_path):
    path = numbers_file(tmp_path, "\n".join(GOOD) + "\n")
    started = time.monotonic()
    out, err, error = run(
        "--service",
        world.service.sid,
        "--body",
        "Hi",
        "--to-file",
        str(path),
        "--timeout",
        "0.3",
        "--interval",
        "0.1",
        "--progress",
        "always",
    )
    assert time.monotonic() - started < 10
    assert error is not None and error.returncode == 1
    assert "3 still waiting after 0.3 s" in str(error)
    assert "accepted 3 · queued 0" in out
    assert "Creating" in err and "Sending" in err  # the bars, on stderr


class Workers(threading.Thread):
    """Stands in for Celery: moves each accepted message of the run to delivered, except
    UNREACHABLE, which fails with 30003."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.stop = threading.Event()

    def run(self) -> None:
        try:
            while not self.stop.is_set():
                for message in Message.objects.filter(tags__has_key="bulk", status=Status.ACCEPTED):
                    # All at once, so the poller never stops on a passing `sent`.
                    with transaction.atomic():
                        advance(message, Status.QUEUED, Status.SENT)
                        if message.to_address == UNREACHABLE:
                            advance(message, Status.UNDELIVERED, error_code=30003)
                        else:
                            advance(message, Status.DELIVERED)
                time.sleep(0.05)
        finally:
            connection.close()


@pytest.fixture
def workers(live_world):
    thread = Workers()
    thread.start()
    yield thread
    thread.stop.set()
    thread.join(timeout=10)


def test_the_live_run_ends_when_every_message_is_delivered(live_world, workers, tmp_path):
    path = numbers_file(tmp_path, "\n".join(GOOD) + "\n")
    out, err, error = run(
        "--service",
        live_world.service.sid,
        "--body",
        "Hi",
        "--to-file",
        str(path),
        "--timeout",
        "30",
        "--interval",
        "0.05",
        "--progress",
        "always",
    )
    assert error is None, out + err
    assert "delivered 3" in out and "failed 0" in out
    assert "All 3 messages sent." in out
    assert "3/3" in err  # the bar reached the end
    assert set(bulk_messages().values_list("status", flat=True)) == {Status.DELIVERED}


def test_the_live_run_reports_failures_by_code_and_exits_1(live_world, workers, tmp_path):
    path = numbers_file(tmp_path, "\n".join([*GOOD, UNREACHABLE, "555"]) + "\n")
    out, _err, error = run(
        "--service",
        live_world.service.sid,
        "--body",
        "Hi",
        "--to-file",
        str(path),
        "--timeout",
        "30",
        "--interval",
        "0.05",
    )
    assert error is not None and error.returncode == 1
    assert str(error) == "1 refused, 1 failed or undelivered."
    assert "delivered 3" in out and "undelivered 1" in out
    assert "failed or undelivered 30003 (Unreachable destination handset): 1" in out
    assert "refused 21211 (Invalid 'To' Phone Number): 1" in out
