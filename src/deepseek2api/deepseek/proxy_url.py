"""Proxy URLs in messages and logs: the password never shows (used by the client, config and pool)."""

from __future__ import annotations

from urllib.parse import urlsplit


def redact_proxy(url: str | None) -> str:
    """`socks5://user:pw@host:1080` → `socks5://***@host:1080` (user names can be secrets too);
    None/"" → "direct"."""
    if not url:
        return "direct"
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<invalid proxy URL>"
    if "@" not in parts.netloc:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return f"{parts.scheme}://***@{host}{parts.path}"
