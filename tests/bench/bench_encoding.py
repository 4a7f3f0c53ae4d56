# ruff: noqa: RUF001  (typographic look-alikes are part of the corpus)
"""Benchmark: SMS encoding analysis and segment counting throughput (messaging.encoding).

The composer counts segments on every keystroke and the outbound pipeline analyzes every
message, so this is a hot path. Each case runs for about DURATION seconds (default 2) and
prints calls per second and input MB/s (UTF-8). Prints figures; asserts nothing. Run with
`make bench` or directly:

    .venv/bin/python tests/bench/bench_encoding.py [DURATION]
"""

import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from messaging.encoding import analyze, count_segments

SHORT_GSM = "Your code is 482913. Thx"
LONG_GSM = (
    "Hi Maria, your appointment at the Riverside clinic is confirmed for Tuesday 14 May "
    "at 10:30. Please bring your ID card and arrive 10 minutes early. To reschedule, reply "
    "with a new date or call us on 0800 123 456 between 9:00 and 17:00, Monday to Friday. "
    "Reply STOP to stop receiving reminders. Thank you for choosing Riverside!"
) * 2
GSM_EXTENSION = (
    "Order #5531 confirmed: 2x [Basic plan] {monthly} = 19.98€ ~ pay at example.com/pay "
    "| questions? reply HELP ^^ "
) * 3
SPANISH_SHORT = "¿Confirmas tu cita mañana a las 10:30? Responde SÍ o NO."
SPANISH_LONG = (
    "Hola Núñez, tu pedido está en camino y llegará el miércoles. Si no estás en casa, "
    "dejaremos un aviso para recogerlo en la oficina más cercana. ¡Gracias por tu compra! "
    "¿Tienes dudas? Escríbenos y te ayudaremos encantados."
)
EMOJI_SHORT = "Thanks! See you soon 😀👍"
EMOJI_LONG = (
    "🎉 Happy birthday from all of us! 🎂 Show this message at the counter for a free "
    "coffee ☕ this week. 👨\u200d👩\u200d👧\u200d👦 Family deals inside 👉 example.com 🇪🇸"
)
SMART = "“Your order’s on its way” – tracking… ‘ABC-123’ — ½ price next time"
SMART_STAYS_UCS2 = "“Your order’s on its way” 🚚 – tracking…"

CASES: list[tuple[str, str, bool]] = [
    ("short GSM-7", SHORT_GSM, False),
    ("long GSM-7 multipart", LONG_GSM, False),
    ("GSM-7 with escape pairs", GSM_EXTENSION, False),
    ("Spanish, accents (UCS-2)", SPANISH_SHORT, False),
    ("Spanish, accents, multipart", SPANISH_LONG, False),
    ("emoji", EMOJI_SHORT, False),
    ("emoji + ZWJ family, multipart", EMOJI_LONG, False),
    ("smart-encodable (smart on)", SMART, True),
    ("smart, stays UCS-2 (smart on)", SMART_STAYS_UCS2, True),
]


def measure(call: Callable[[], object], duration: float) -> float:
    """Calls per second, timed in batches so the clock is not read on every call."""
    batch, calls, started = 64, 0, time.perf_counter()
    while True:
        for _ in range(batch):
            call()
        calls += batch
        elapsed = time.perf_counter() - started
        if elapsed >= duration:
            return calls / elapsed
        if elapsed < duration / 20:
            batch *= 2


def report(label: str, text_bytes: float, rate: float) -> None:
    megabytes = rate * text_bytes / 1e6
    print(f"encoding: {label}: {rate:,.0f} calls/s, {megabytes:,.1f} MB/s")


def main() -> None:
    duration = float(sys.argv[1]) if len(sys.argv) > 1 else 2.0
    for name, text, smart in CASES:
        result = analyze(text, smart_encoding=smart)
        shape = (
            f"{len(text)} chars, {result.encoding}, {result.segments} "
            f"segment{'s' if result.segments != 1 else ''}"
        )
        size = len(text.encode("utf-8"))
        rate = measure(lambda t=text, s=smart: analyze(t, smart_encoding=s), duration)
        report(f"analyze {name} ({shape})", size, rate)
        rate = measure(lambda t=text, s=smart: count_segments(t, smart_encoding=s), duration)
        report(f"count_segments {name} ({len(text)} chars)", size, rate)

    corpus = [text for _, text, _ in CASES]
    corpus_bytes = sum(len(text.encode("utf-8")) for text in corpus)

    def analyze_corpus() -> None:
        for text in corpus:
            analyze(text)

    rate = measure(analyze_corpus, duration) * len(corpus)
    label = f"analyze mixed corpus ({len(corpus)} messages, round robin)"
    report(label, corpus_bytes / len(corpus), rate)


if __name__ == "__main__":
    main()
