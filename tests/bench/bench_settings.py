"""The product's settings with the benchmark URLs (tests/bench/bench_urls.py)."""

from contactcenter.settings import *  # noqa: F403

ROOT_URLCONF = "tests.bench.bench_urls"
