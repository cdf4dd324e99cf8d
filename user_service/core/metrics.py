"""The User Service's metric families, registered in the app's registry by the composition root
and counted by its routes. No label takes a user's, an address's or a token's value."""

from __future__ import annotations

from servicekit.metrics import Metrics

LOGIN_OUTCOMES = ("success", "invalid_credentials", "rate_limited", "unavailable")


class UserMetrics:
    def __init__(self, metrics: Metrics) -> None:
        logins = metrics.counter("user_logins", "Logins, by outcome.", ["outcome"])
        # Children made once: every outcome is exported from the start, at zero.
        self._logins = {outcome: logins.labels(outcome) for outcome in LOGIN_OUTCOMES}
        self._other_logins = logins
        self._refusals = metrics.counter(
            "rate_limit_refusals", "Requests refused by a rate limit, by limit.", ["limit"]
        )
        self._refusals.labels("login")

    @classmethod
    def off(cls) -> UserMetrics:
        return cls(Metrics.disabled())

    def login(self, outcome: str) -> None:
        """``outcome``: one of ``LOGIN_OUTCOMES`` or an error's stable code."""
        counter = self._logins.get(outcome)
        if counter is None:
            counter = self._other_logins.labels(outcome)
        counter.inc()

    def refused_by_limit(self, limit: str) -> None:
        self._refusals.labels(limit).inc()
