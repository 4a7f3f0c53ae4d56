"""The launcher behind `manage.py serve`: every process of the product, in the foreground.

It starts the embedded Valkey (when REDIS_URL is unset), prepares the database, then runs
daphne (HTTP + websockets), a Celery worker and Celery beat as child processes, each in its
own process group with its output prefixed. Ctrl-C (or SIGTERM) stops them in order — web,
beat, worker, then Valkey — waiting for each and killing what does not stop in time. If any
child dies on its own, the launcher stops the rest and exits non-zero: a half-running
product is worse than a stopped one.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

PR_SET_PDEATHSIG = 1
STOP_TIMEOUT_S = 15.0
READY_TIMEOUT_S = 90.0


def _die_with_parent() -> None:
    """In the child, before exec: get SIGTERM if the launcher itself dies (even by kill -9)."""
    # Not Linux: no prctl; the launcher's own shutdown still stops the children.
    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass
class Child:
    name: str
    argv: list[str]
    process: subprocess.Popen | None = None
    pump: threading.Thread | None = field(default=None, repr=False)

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None


class Launcher:
    def __init__(
        self,
        *,
        host: str,
        port: int,
        write: Callable[[str], None],
    ):
        self.host = host
        self.port = port
        self.write = write
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.children: list[Child] = []
        self._stop = threading.Event()
        self._output_lock = threading.Lock()
        self._name_width = 6

    # --- lifecycle ---------------------------------------------------------------------

    def request_stop(self, *_args) -> None:
        if self._stop.is_set():
            # A second Ctrl-C: do not wait for graceful shutdowns any more.
            self._kill_all()
        self._stop.set()

    def start_child(self, name: str, argv: list[str]) -> Child:
        child = Child(name=name, argv=argv)
        child.process = subprocess.Popen(
            argv,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            process_group=0,  # Ctrl-C reaches the launcher only; it stops children in order
            preexec_fn=_die_with_parent,
        )
        child.pump = threading.Thread(target=self._pump, args=(child,), daemon=True)
        child.pump.start()
        self.children.append(child)
        return child

    def stop_all(self) -> None:
        """Stop children in reverse start order: users of a service before the service."""
        for child in reversed(self.children):
            self._stop_child(child)
        for child in self.children:
            if child.pump is not None:
                child.pump.join(timeout=2)

    def watch(self) -> int:
        """Block until a stop is requested (exit 0) or a child dies on its own (exit 1)."""
        while not self._stop.wait(0.5):
            child = self.dead_child()
            if child is not None:
                code = child.process.returncode if child.process else None
                self.say(f"{child.name} exited on its own (code {code}); stopping everything")
                return 1
        return 0

    def dead_child(self) -> Child | None:
        return next((child for child in self.children if not child.running), None)

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    # --- readiness ---------------------------------------------------------------------

    @property
    def local_url(self) -> str:
        host = "127.0.0.1" if self.host in {"0.0.0.0", "::", ""} else self.host
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    def wait_for_health(self, timeout: float = READY_TIMEOUT_S) -> bool:
        """Poll /healthz until it answers 200; False on timeout, stop request or a dead child."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not self._stop.is_set():
            if self.dead_child() is not None:
                return False
            try:
                with urllib.request.urlopen(f"{self.local_url}/healthz", timeout=3) as response:
                    if response.status == 200:
                        return True
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
                pass
            self._stop.wait(0.5)
        return False

    # --- output ------------------------------------------------------------------------

    def say(self, line: str) -> None:
        self._emit("serve", line)

    def _emit(self, name: str, line: str) -> None:
        with self._output_lock:
            self.write(f"{name:<{self._name_width}} | {line}")

    def _pump(self, child: Child) -> None:
        assert child.process is not None and child.process.stdout is not None
        for raw in iter(child.process.stdout.readline, b""):
            self._emit(child.name, raw.decode(errors="replace").rstrip("\n"))
        child.process.stdout.close()

    # --- stopping ----------------------------------------------------------------------

    def _stop_child(self, child: Child) -> None:
        process = child.process
        if process is None:
            return
        if process.poll() is None:
            self._signal_group(process, signal.SIGTERM)
            try:
                process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.say(f"{child.name} did not stop in {STOP_TIMEOUT_S:.0f} s; killing it")
        # Whatever the leader did, leave nothing of its group behind (pool processes).
        self._signal_group(process, signal.SIGKILL)
        process.wait()

    def _kill_all(self) -> None:
        for child in self.children:
            if child.process is not None:
                self._signal_group(child.process, signal.SIGKILL)

    @staticmethod
    def _signal_group(process: subprocess.Popen, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signum)


def answers_ping(path: Path) -> bool:
    """Whether a Redis-protocol server answers PING on the unix socket `path`."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(1)
            sock.connect(str(path))
            sock.sendall(b"*1\r\n$4\r\nPING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def wait_for_unix_socket(path: Path, *, launcher: Launcher, timeout: float = 15.0) -> bool:
    """Wait until the server on `path` answers PING; False if its process died first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not launcher.stopping:
        if launcher.dead_child() is not None:
            return False
        if answers_ping(path):
            return True
        time.sleep(0.1)
    return False


def python_module(module: str, *args: str) -> list[str]:
    return [sys.executable, "-m", module, *args]
