"""Account pool (leases, health states, queue) and proxy pool."""

from .accounts import AccountLease, AccountPool, PoolExhausted
from .proxies import ProxyPool, redact_proxy

__all__ = ["AccountLease", "AccountPool", "PoolExhausted", "ProxyPool", "redact_proxy"]
