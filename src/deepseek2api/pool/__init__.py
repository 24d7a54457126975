"""Account pool (leases, health states, queue) and proxy pool."""

from .accounts import AccountLease, AccountPool
from .errors import PassthroughExhausted, PoolExhausted, PoolReason
from .proxies import ProxyPool, redact_proxy

__all__ = ["AccountLease", "AccountPool", "PassthroughExhausted", "PoolExhausted", "PoolReason", "ProxyPool",
           "redact_proxy"]
