"""Read-only views of the in-process pool for `/ready`, `check` and the console — never a token or password
(except `idle_accounts`, whose tokens go to the turn prewarmer and must never be logged)."""

from __future__ import annotations

from collections.abc import Iterable

from ..settings import AccountSettings, redact_proxy
from .fair_use import FairUse
from .health import AccountStatus
from .proxies import ProxyPool
from .record import AccountRecord


def status_rows(accounts: Iterable[AccountRecord], proxies: ProxyPool, now: float) -> list[dict[str, object]]:
    """One row per account: state, why, until when, use and counters, and its exit (redacted)."""
    rows: list[dict[str, object]] = []
    for acc in accounts:
        state = acc.effective_status(now)
        if acc.settings.proxy:
            proxy = redact_proxy(acc.settings.proxy)
        elif proxies.active:
            assigned = proxies.assigned(acc.id) if proxies.strategy == "sticky" else None
            proxy = redact_proxy(assigned) if assigned is not None else f"pool ({proxies.strategy})"
        else:
            proxy = "direct"
        rows.append(
            {
                "id": acc.id,
                "state": state,
                "reason": "" if state == AccountStatus.READY else acc.reason,
                "until": acc.until if state.timed else None,
                "in_use": acc.in_use,
                "has_token": acc.token is not None,
                "proxy": proxy,
                "requests": acc.requests,
                "failures": acc.failures,
                "empty_answers": acc.empty_answers,
            }
        )
    return rows


def fair_use_rows(accounts: Iterable[AccountRecord], fair_use: FairUse, now: float) -> list[dict[str, object]]:
    """Every account's fair-use limits, use in the last hour and time until usable."""
    rows: list[dict[str, object]] = []
    for acc in accounts:
        per_hour, gap = fair_use.limits(acc.settings)
        at = fair_use.usable_at(acc.settings, now)
        rows.append({"id": acc.id, "max_requests_per_hour": per_hour, "min_request_gap": gap,
                     "requests_last_hour": fair_use.requests_last_hour(acc.id, now),
                     "usable_in": round(at - now, 1) if at is not None else 0.0})
    return rows


def idle_accounts(accounts: Iterable[AccountRecord], now: float) -> list[tuple[AccountSettings, str]]:
    """(account, its current token) for every usable account with a token and no lease out."""
    return [(acc.settings, acc.token) for acc in accounts
            if acc.in_use == 0 and acc.token is not None and acc.usable(now)]


__all__ = ["fair_use_rows", "idle_accounts", "status_rows"]
