"""Benchmark: how long `manage.py serve` takes to be healthy and to stop, and /healthz latency.

Embedded mode (SQLite + Valkey), a fresh DATA_DIR each run, so migrations run every time.
Prints figures; asserts nothing. Run with `make bench` or directly:

    .venv/bin/python tests/bench/bench_startup.py [RUNS]
"""

import signal
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.support.processes import Launched, base_env, free_port

HEALTH_REQUESTS = 200


def one_run() -> tuple[float, float, list[float]]:
    with tempfile.TemporaryDirectory(prefix="cc-bench-") as tmp:
        port = free_port()
        started = time.monotonic()
        launched = Launched(base_env(Path(tmp), port))
        try:
            if not launched.wait_for_line("contactcenter is up at", timeout=120):
                raise SystemExit(f"serve did not come up:\n{launched.output}")
            ready = time.monotonic() - started
            latencies = []
            for _ in range(HEALTH_REQUESTS):
                t0 = time.perf_counter()
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz") as response:
                    response.read()
                latencies.append((time.perf_counter() - t0) * 1000)
            t0 = time.monotonic()
            launched.process.send_signal(signal.SIGINT)
            launched.process.wait(timeout=60)
            stop = time.monotonic() - t0
        finally:
            launched.kill_tree()
    return ready, stop, latencies


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    readies, stops, latencies = [], [], []
    for _ in range(runs):
        ready, stop, lat = one_run()
        readies.append(ready)
        stops.append(stop)
        latencies.extend(lat)
    latencies.sort()
    p99 = latencies[int(len(latencies) * 0.99) - 1]
    rows = [
        ("start to healthy (migrate, seed, 4 processes)", readies, "s"),
        ("Ctrl-C to every process stopped", stops, "s"),
    ]
    print(f"serve, embedded, fresh data dir, {runs} runs:")
    for label, values, unit in rows:
        median, worst = statistics.median(values), max(values)
        print(f"  {label:<48} median {median:6.1f} {unit}, max {worst:6.1f} {unit}")
    label = f"GET /healthz, sequential, {len(latencies)} requests"
    median = statistics.median(latencies)
    print(f"  {label:<48} p50 {median:6.1f} ms, p99 {p99:6.1f} ms")


if __name__ == "__main__":
    main()
