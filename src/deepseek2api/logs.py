"""Logging setup with a last line of defence against secrets in log output.

Code never logs passwords, tokens, keys or PoW headers on purpose; this filter additionally masks
every secret the gateway knows of (config passwords/keys/tokens, tokens learned at login) and any
`Bearer …` / `x-ds-pow-response` value, in case a library or an exception message carries one.
"""

from __future__ import annotations

import logging
import re
import sys
import threading
from typing import TextIO

_UNSAFE = re.compile(r"[^\x21-\x5b\x5d-\x7e]")  # anything but printable ASCII other than backslash
_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\\": "\\\\", " ": "\\x20"}
LOG_VALUE_LIMIT = 200


def log_value(value: object, limit: int = LOG_VALUE_LIMIT) -> str:
    """`value` made safe for one field of a `key=value` log line.

    Client-controlled text (a model name, a path, a client's request id) must not split the line or
    forge fields: line breaks (`\\n`, `\\r`, U+2028, U+2029, U+0085…), other control and format
    characters, spaces and backslashes are written as escapes (`\\n`, `\\x20`, `\\u2028`), printable
    non-ASCII text is kept, and the result is cut after `limit` characters (`...(+N)` says how many more).
    An empty value is written as `-`.
    """
    text = value if isinstance(value, str) else str(value)
    if not text:
        return "-"
    cut = len(text) - limit if len(text) > limit else 0
    if cut:
        text = text[:limit]
    if _UNSAFE.search(text) is not None:
        text = _UNSAFE.sub(_escape_char, text)
    return f"{text}...(+{cut})" if cut else text


def _escape_char(match: re.Match[str]) -> str:
    char = match.group()
    known = _ESCAPES.get(char)
    if known is not None:
        return known
    if char.isprintable():  # printable non-ASCII (accents, CJK): readable as it is
        return char
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


_BEARER = re.compile(r"(?i)(bearer\s+|x-ds-pow-response['\"]?\s*[:=]\s*['\"]?)[A-Za-z0-9._~+/=\-]{8,}")
MASK = "***"


_HEAD = 8  # secrets at least this long are found through their first _HEAD characters
_TINY = 4  # shorter secrets are masked only as whole words


class SecretRedactor(logging.Filter):
    """Replaces known secrets in every record's final message.

    Cost does not grow with the number of secrets: secrets of 8+ characters (tokens, keys, most
    passwords) are indexed by their first 8 characters and found with one dict lookup per text
    position; only the rare shorter ones go into a regular expression. (One alternation of every
    secret, recompiled at each login, cost seconds of event-loop time with 200 accounts and ~0.1 ms
    per log line.)
    """

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._by_head: dict[str, tuple[str, ...]] = {}  # first _HEAD chars → secrets, longest first
        self._short: set[str] = set()
        self._short_pattern: re.Pattern[str] | None = None

    def add(self, secret: str | None) -> None:
        """Mask `secret` from now on. Secrets under `_TINY` characters (a 3-letter password) are masked
        only where they stand alone, between non-word characters: masking every "ab" inside other
        words would garble the log and, by the gaps, tell where the secret occurs."""
        if not secret:
            return
        with self._lock:
            if len(secret) >= _HEAD:
                group = self._by_head.get(secret[:_HEAD], ())
                if secret not in group:
                    self._by_head[secret[:_HEAD]] = tuple(sorted((*group, secret), key=len, reverse=True))
            elif secret not in self._short:
                self._short.add(secret)
                ordered = sorted(self._short, key=len, reverse=True)
                self._short_pattern = re.compile("|".join(
                    re.escape(s) if len(s) >= _TINY else rf"(?<!\w){re.escape(s)}(?!\w)" for s in ordered))

    def redact(self, text: str) -> str:
        if self._by_head and len(text) >= _HEAD:
            text = self._mask_long(text)
        pattern = self._short_pattern
        if pattern is not None:
            text = pattern.sub(MASK, text)
        return _BEARER.sub(lambda m: m.group(1) + MASK, text)

    def _mask_long(self, text: str) -> str:
        """Leftmost-longest replacement of the indexed secrets."""
        lookup = self._by_head.get
        parts: list[str] = []
        start = i = 0
        last = len(text) - _HEAD
        while i <= last:
            group = lookup(text[i:i + _HEAD])
            if group is not None:
                for secret in group:
                    if text.startswith(secret, i):
                        parts += (text[start:i], MASK)
                        i = start = i + len(secret)
                        break
                else:
                    i += 1
                continue
            i += 1
        if not parts:
            return text
        parts.append(text[start:])
        return "".join(parts)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = self.redact(message)
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


redactor = SecretRedactor()


class _GatewayHandler(logging.StreamHandler[TextIO]):
    """The stderr handler `configure_logging` installs, known by its class so it is installed once."""


def configure_logging(level: str = "info") -> None:
    """One stderr handler with the redactor, for the gateway and the libraries it uses."""
    root = logging.getLogger()
    numeric = logging.getLevelName(level.upper()) if level.lower() != "trace" else 5
    root.setLevel(numeric if isinstance(numeric, int) else logging.INFO)
    if not any(isinstance(h, _GatewayHandler) for h in root.handlers):
        handler = _GatewayHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root.addHandler(handler)
    install_redactor()


def install_redactor() -> None:
    """Attach the redactor to every handler of the root logger (idempotent)."""
    for handler in logging.getLogger().handlers:
        if redactor not in handler.filters:
            handler.addFilter(redactor)
