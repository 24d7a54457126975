"""The client identity the gateway presents to DeepSeek.

DeepSeek changes its web client (versions, headers, TLS fingerprints) without notice. Everything
that identifies our client lives here and is loaded from config (`upstream` section), so operators
can follow a change by editing config.json instead of waiting for a release.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

DEFAULT_BASE_URL = "https://chat.deepseek.com"

# The Android-app persona used by the seed and most projects (PROTOCOL.md §1.3).
DEFAULT_HEADERS: dict[str, str] = {
    "User-Agent": "DeepSeek/1.6.11 Android/35",
    "Accept": "application/json",
    "Accept-Encoding": "gzip",
    "Content-Type": "application/json",
    "x-client-platform": "android",
    "x-client-version": "1.6.11",
    "x-client-locale": "zh_CN",
    "accept-charset": "UTF-8",
}


@dataclass(frozen=True, slots=True)
class ClientProfile:
    """Where and as whom we talk to DeepSeek, and how long we wait."""

    base_url: str = DEFAULT_BASE_URL
    headers: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_HEADERS))
    impersonate: str | None = "safari15_3"  # curl_cffi browser profile; None = plain libcurl
    login_os: str = "android"  # the `os` field of the login body
    connect_timeout: float = 10.0  # seconds to establish a connection (through the proxy)
    request_timeout: float = 30.0  # whole non-streaming call (login, session, PoW challenge …)
    idle_timeout: float = 120.0  # longest silence between two stream chunks (reasoning pauses are long)
    first_byte_timeout: float = 60.0  # longest wait for the completion's response headers

    def url(self, path: str) -> str:
        """Absolute URL of an API path such as `/api/v0/chat/completion`."""
        return self.base_url.rstrip("/") + path
