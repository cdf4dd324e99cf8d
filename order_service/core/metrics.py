"""The Order Service's metric families, registered in the app's registry by the composition
root and counted by the adapters (verifier, writer) and the order routes. No label takes a
user's, an order's or a key's value."""

from __future__ import annotations

from servicekit.metrics import BATCH_BUCKETS, ROUND_TRIP_BUCKETS, Metrics

VERIFICATION_SOURCES = ("cache", "bus", "http", "unavailable")


class OrderMetrics:
    def __init__(self, metrics: Metrics) -> None:
        verifications = metrics.counter(
            "user_verifications",
            "User verifications, by where the answer came from (unavailable: none did).",
            ["source"],
        )
        # Children made once: every source is exported from the start, at zero.
        self._verifications = {s: verifications.labels(s) for s in VERIFICATION_SOURCES}
        self.bus_round_trip = metrics.histogram(
            "user_verification_bus_duration_seconds",
            "From publishing a verify_user request to its answer.",
            buckets=ROUND_TRIP_BUCKETS,
        )
        self.created = metrics.counter("orders_created", "Orders created.")
        self.replayed = metrics.counter(
            "orders_replayed", "Order creations answered by replaying an Idempotency-Key."
        )
        self._refused = metrics.counter(
            "orders_refused", "Order creations refused, by the problem's code.", ["reason"]
        )
        self.batch_size = metrics.histogram(
            "order_commit_batch_size",
            "Orders per group-commit transaction.",
            buckets=BATCH_BUCKETS,
        )

    @classmethod
    def off(cls) -> OrderMetrics:
        return cls(Metrics.disabled())

    def verified(self, source: str) -> None:
        counter = self._verifications.get(source)
        if counter is not None:
            counter.inc()

    def refused(self, reason: str) -> None:
        """``reason``: an error's stable code (a fixed set, never input)."""
        self._refused.labels(reason).inc()
