"""Run the delivery engine in the test's own process, where the test can wait for it."""

from messaging.delivery import engine


def deliver_now(*, seconds: float = 5.0) -> engine.PumpStats:
    """Expire and mark due as the tick does, then pump until idle."""
    engine.expire_queued()
    engine.reseed_due()
    return engine.Pump(seconds=seconds).run()
