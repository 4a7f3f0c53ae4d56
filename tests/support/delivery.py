"""Run the delivery engine in the test's own process, where the test can wait for it."""

from messaging.delivery import engine


def deliver_now(*, seconds: float = 5.0) -> engine.PumpStats:
    """Mark every sender with ready messages due (as the tick does), then pump until idle."""
    engine.reseed_due()
    return engine.Pump(seconds=seconds).run()
