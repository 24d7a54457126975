"""What the pool tells an observer (the metrics) as it works: one call per event, no global registry.

The composition root hands the pool an object with these methods (api/metrics.py's `GatewayMetrics`
has them); the pool never imports it. Calls are made on the event loop and must not block.
"""

from __future__ import annotations

from typing import Protocol


class PoolObserver(Protocol):
    def queue_waited(self, seconds: float) -> None:
        """A request got an account after waiting this long (0 when one was free at once)."""

    def queue_rejected(self, reason: str) -> None:
        """The pool turned a request away (a `PoolReason` value)."""

    def account_transition(self, from_state: str, to_state: str) -> None:
        """An account's health state changed."""

    def login(self, result: str) -> None:
        """A login finished: "ok", or the ErrorKind value of its failure."""


class ProxyObserver(Protocol):
    def proxy_used(self, proxy: str | None) -> None:
        """A lease goes out through this exit (None: direct)."""

    def proxy_failed(self, proxy: str | None) -> None:
        """A connection failure through this exit was reported."""


__all__ = ["PoolObserver", "ProxyObserver"]
