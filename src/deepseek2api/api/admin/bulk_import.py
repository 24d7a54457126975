"""Bulk import: turn pasted text into accounts, with a verdict per line and no secret echoed back.

Two formats, chosen by the first non-blank character: JSON (`[...]`, `{"accounts": [...]}` or one
object, each shaped like a config.json account) or lines of `login:password`, where the login is an
e-mail (has an `@`) or a mobile number (digits, optional leading `+`). The password is everything
after the first colon, so passwords may contain colons. A token line, `login:token=<value>`, adds a
token-only account (the `value` of `userToken` from a browser where the account is logged in: for
accounts whose password logins DeepSeek's risk control refuses). Blank lines and `#` comments are skipped.
"""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from ...settings import AccountSettings

MAX_IMPORT_LINES = 1000
TOKEN_PREFIX = "token="  # `login:token=<value>`: a token-only account
_MOBILE = re.compile(r"^\+?[0-9][0-9 \-]{4,19}$")
_EMAIL = re.compile(r"^[^@\s:]+@[^@\s:]+\.[^@\s:]+$")


class LineStatus(str, enum.Enum):
    OK = "ok"  # would be added (dry run)
    ADDED = "added"
    DUPLICATE = "duplicate"  # the same account appears earlier in this paste
    EXISTS = "exists"  # the pool has it already
    INVALID = "invalid"


@dataclass(frozen=True, slots=True)
class ImportLine:
    """The verdict on one pasted line (or JSON item). `account` is never serialised."""

    line: int  # 1-based line number (JSON: item number)
    status: LineStatus
    id: str | None = None
    message: str = ""
    account: AccountSettings | None = None

    def as_dict(self) -> dict[str, object]:
        return {"line": self.line, "status": self.status.value, "id": self.id, "message": self.message}


class ImportTooLarge(ValueError):
    """More than MAX_IMPORT_LINES entries in one paste."""


def parse_import(text: str, existing_ids: Collection[str]) -> list[ImportLine]:
    """A verdict for every entry in `text`; OK ones carry the account to add."""
    stripped = text.lstrip()
    if stripped.startswith(("[", "{")):
        verdicts = _parse_json(stripped)
    else:
        verdicts = _parse_lines(text)
    existing = {i.casefold() for i in existing_ids}
    seen: set[str] = set()
    out: list[ImportLine] = []
    for verdict in verdicts:
        if verdict.status is LineStatus.OK and verdict.id is not None:
            key = verdict.id.casefold()
            if key in existing:
                verdict = ImportLine(verdict.line, LineStatus.EXISTS, verdict.id, "the pool already has this account")
            elif key in seen:
                verdict = ImportLine(verdict.line, LineStatus.DUPLICATE, verdict.id,
                                     "this account appears earlier in the paste")
            else:
                seen.add(key)
        out.append(verdict)
    return out


def _parse_lines(text: str) -> list[ImportLine]:
    lines = text.splitlines()
    if sum(1 for line in lines if line.strip()) > MAX_IMPORT_LINES:
        raise ImportTooLarge(f"at most {MAX_IMPORT_LINES} accounts per import")
    out: list[ImportLine] = []
    for number, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        login, colon, password = line.partition(":")
        login = login.strip()
        if not colon or not password:
            out.append(ImportLine(number, LineStatus.INVALID, None, "expected login:password"))
            continue
        if _EMAIL.match(login):
            fields: dict[str, Any] = {"email": login}
        elif _MOBILE.match(login):
            fields = {"mobile": login.replace(" ", "").replace("-", "")}
        else:
            out.append(ImportLine(number, LineStatus.INVALID, None,
                                  "the login is neither an e-mail address nor a mobile number"))
            continue
        if password.startswith(TOKEN_PREFIX):
            out.append(_validated(number, {**fields, "token": password.removeprefix(TOKEN_PREFIX).strip()}))
        else:
            out.append(_validated(number, {**fields, "password": password}))
    return out


def _parse_json(text: str) -> list[ImportLine]:
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        where = f" at line {exc.lineno}, column {exc.colno}" if isinstance(exc, json.JSONDecodeError) else ""
        return [ImportLine(getattr(exc, "lineno", 1), LineStatus.INVALID, None, f"invalid JSON{where}")]
    if isinstance(data, Mapping) and isinstance(data.get("accounts"), list):
        items: list[Any] = data["accounts"]
    elif isinstance(data, Mapping):
        items = [data]
    elif isinstance(data, list):
        items = data
    else:
        return [ImportLine(1, LineStatus.INVALID, None, "expected a JSON list of accounts")]
    if len(items) > MAX_IMPORT_LINES:
        raise ImportTooLarge(f"at most {MAX_IMPORT_LINES} accounts per import")
    out: list[ImportLine] = []
    for number, item in enumerate(items, start=1):
        if not isinstance(item, Mapping):
            out.append(ImportLine(number, LineStatus.INVALID, None,
                                  "expected an object with email/mobile and password"))
            continue
        out.append(_validated(number, dict(item)))
    return out


def _validated(number: int, fields: dict[str, Any]) -> ImportLine:
    fields.pop("enabled", None)  # an import adds working accounts; disable them afterwards if needed
    try:
        account = AccountSettings.model_validate(fields)
    except ValidationError as exc:
        return ImportLine(number, LineStatus.INVALID, None, _problem(exc))
    return ImportLine(number, LineStatus.OK, account.id, "", account)


def _problem(exc: ValidationError) -> str:
    """The first validation problem, by field name and pydantic's message — never the input value."""
    error = exc.errors(include_url=False, include_input=False)[0]
    where = ".".join(str(p) for p in error.get("loc", ()))
    message = str(error.get("msg", "invalid value")).removeprefix("Value error, ")
    return f"{where}: {message}" if where else message


__all__ = ["MAX_IMPORT_LINES", "ImportLine", "ImportTooLarge", "LineStatus", "parse_import"]
