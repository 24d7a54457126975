"""The admin API for keys and usage, under `/admin/api/` beside the console's (same admin key check).

- `GET /keys` — every key's rules, where it is defined, and today's use against its limits (never a key);
- `POST /keys` — make a key: the answer is the only time the key is ever shown;
- `PATCH /keys/{name}`, `DELETE /keys/{name}` — console-made keys only (config.json's are the file's);
- `GET /usage` — rows per key, model and day (or minute): filters `key`, `model`, `since`, `until`
  (`YYYY-MM-DD` or unix seconds), `span=day|minute`, `format=csv`;
- `GET /usage/series?range=hour|day|month` — what the console draws: requests and tokens per key and per
  model over time, and the sampled timeline (TTFT percentiles, account states, queue depth);
- `GET /fair-use` — each account's fair-use limits, turns in the last hour and seconds until usable.
"""

from __future__ import annotations

import csv
import io
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from ...keys.limiter import DAY
from ...keys.rules import KeyRules
from ...store.usage import COUNTS, UsageRow
from ..admin.auth import AdminAuth
from ..admin.router import admin_error, json_object_body
from ..admin.timeline import Timeline
from ..errors import ApiError, bad_request
from .gate import KeyGate
from .manager import KeyEditError, KeyManager

audit_log = logging.getLogger("deepseek2api.api.admin.router.audit")

MAX_BODY = 64 * 1024
_NO_STORE = {"cache-control": "no-store"}
Handler = Callable[[Request, str], Awaitable[Response]]
RANGES = {"hour": ("minute", 60, 60), "day": ("minute", 600, 144), "month": ("day", 86400, 30)}
TIMELINE_SPAN = {"hour": "hour", "day": "day", "month": "month"}


def _json(data: object, status: int = 200) -> JSONResponse:
    return JSONResponse(data, status_code=status, headers=_NO_STORE)


def _moment(value: str | None, field: str) -> float | None:
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        return float(text)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise bad_request(f"{field}: expected YYYY-MM-DD, an ISO-8601 time or unix seconds", param=field) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def _row(row: UsageRow) -> dict[str, Any]:
    width = 60 if row.span == "minute" else DAY
    start = row.bucket * width
    label = datetime.fromtimestamp(start, UTC).strftime("%Y-%m-%d" if row.span == "day" else "%Y-%m-%dT%H:%MZ")
    return {"time": label, "start": start, "key": row.key, "model": row.model, "requests": row.requests,
            "prompt_tokens": row.prompt_tokens, "completion_tokens": row.completion_tokens,
            "reasoning_tokens": row.reasoning_tokens, "errors": row.errors,
            "stream_seconds": round(row.stream_seconds, 3)}


class KeysApi:
    def __init__(self, manager: KeyManager, gate: KeyGate, timeline: Timeline | None, auth: AdminAuth, *,
                 fair_use: Callable[[], list[dict[str, object]]] | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.fair_use_rows = fair_use  # the in-process pool's per-account fair use (None in cluster mode)
        self.manager = manager
        self.gate = gate
        self.timeline = timeline
        self.auth = auth
        self.clock = clock

    def guarded(self, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            try:
                who = self.auth.check(request.headers)
                return await handler(request, who)
            except ApiError as error:
                return admin_error(request, error)
            except KeyEditError as error:
                code = {400: "invalid", 404: "not_found", 409: "conflict"}.get(error.status, "invalid")
                return admin_error(request, ApiError(error.status, str(error), "invalid_request_error", None, code))

        return endpoint

    def _view(self, rules: KeyRules, today: dict[str, UsageRow]) -> dict[str, Any]:
        used = today.get(rules.name)
        limiter = self.gate.limiter
        return {**rules.fields(), "created_at": self.manager.created_at(rules.name),
                "expired": rules.expired(self.clock()),
                "today": {"requests": used.requests if used else 0,
                          "tokens": self.gate.ledger.tokens_today(rules.name),
                          "errors": used.errors if used else 0},
                "streams": limiter.streams(rules.name),
                "requests_last_minute": limiter.requests_last_minute(rules.name)}

    async def list_keys(self, request: Request, who: str) -> Response:
        day = int(self.clock() // DAY)
        today: dict[str, UsageRow] = {}
        for row in await self.gate.ledger.query("day", day, day + 1):
            kept = today.setdefault(row.key, UsageRow("day", day, row.key, "*"))
            kept.add(row)
        return _json({"keys": [self._view(r, today) for r in self.manager.directory.all()]})

    async def create(self, request: Request, who: str) -> Response:
        key, rules = await self.manager.create(await json_object_body(request, MAX_BODY))
        audit_log.info("admin key=%s action=create_key target=%s result=ok", who, rules.name)
        return _json({"key": key, **rules.fields(), "note_once": "This key is shown now and never again."}, 201)

    async def update(self, request: Request, who: str) -> Response:
        name = request.path_params["name"]
        rules = await self.manager.update(name, await json_object_body(request, MAX_BODY))
        audit_log.info("admin key=%s action=update_key target=%s result=ok", who, name)
        return _json(rules.fields())

    async def delete(self, request: Request, who: str) -> Response:
        name = request.path_params["name"]
        await self.manager.delete(name)
        audit_log.info("admin key=%s action=delete_key target=%s result=ok", who, name)
        return _json({"deleted": name})

    async def fair_use(self, request: Request, who: str) -> Response:
        """Each account's fair-use limits, its turns in the last hour and the seconds until it is usable."""
        rows = self.fair_use_rows() if self.fair_use_rows is not None else None
        return _json({"supported": rows is not None, "accounts": rows or []})

    async def usage(self, request: Request, who: str) -> Response:
        query = request.query_params
        span = query.get("span", "day")
        if span not in ("day", "minute"):
            raise bad_request("span: expected day or minute", param="span")
        width = DAY if span == "day" else 60.0
        now = self.clock()
        since = _moment(query.get("since"), "since")
        until = _moment(query.get("until"), "until")
        since = since if since is not None else now - (30 * DAY if span == "day" else DAY)
        first = int(since // width)
        last = int(until // width) + 1 if until is not None else int(now // width) + 1
        rows = await self.gate.ledger.query(span, first, last, query.get("key") or None, query.get("model") or None)
        out = [_row(row) for row in rows]
        if query.get("format") == "csv":
            buffer = io.StringIO()
            fields = ["time", "key", "model", *COUNTS]
            writer = csv.DictWriter(buffer, fieldnames=fields, extrasaction="ignore", lineterminator="\n")
            writer.writeheader()
            for item in out:
                writer.writerow({k: _csv_cell(item[k]) for k in fields})
            return Response(buffer.getvalue(), media_type="text/csv; charset=utf-8",
                            headers={**_NO_STORE, "content-disposition": 'attachment; filename="usage.csv"'})
        totals = {name: sum(item[name] for item in out) for name in COUNTS}
        return _json({"span": span, "rows": out, "totals": totals})

    async def series(self, request: Request, who: str) -> Response:
        span_name = request.query_params.get("range", "hour")
        if span_name not in RANGES:
            raise bad_request("range: expected hour, day or month", param="range")
        span, step, count = RANGES[span_name]
        width = 60 if span == "minute" else DAY
        end = (int(self.clock() // step) + 1) * step
        start = end - step * count
        rows = await self.gate.ledger.query(span, int(start // width), int(end // width) + 1)
        groups: dict[str, dict[str, dict[str, list[int]]]] = {"key": {}, "model": {}}
        for row in rows:
            slot = int((row.bucket * width - start) // step)
            if not 0 <= slot < count:
                continue
            for by, name in (("key", row.key), ("model", row.model)):
                series = groups[by].setdefault(name, {"requests": [0] * count, "tokens": [0] * count})
                series["requests"][slot] += row.requests
                series["tokens"][slot] += row.prompt_tokens + row.completion_tokens
        timeline = self.timeline.series(TIMELINE_SPAN[span_name]) if self.timeline is not None else None
        return _json({"range": span_name, "start": start, "step": step, "count": count,
                      "by_key": groups["key"], "by_model": groups["model"], "timeline": timeline})


def _csv_cell(value: Any) -> Any:
    """No spreadsheet formulas from operator-chosen names (a name starting with = + - @)."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@"):
        return "'" + value
    return value


def key_routes(api: KeysApi, prefix: str = "/admin") -> list[BaseRoute]:
    g = api.guarded
    base = f"{prefix}/api"
    return [
        Route(f"{base}/keys", g(api.list_keys), methods=["GET"]),
        Route(f"{base}/keys", g(api.create), methods=["POST"]),
        Route(f"{base}/keys/{{name}}", g(api.update), methods=["PATCH"]),
        Route(f"{base}/keys/{{name}}", g(api.delete), methods=["DELETE"]),
        Route(f"{base}/usage", g(api.usage), methods=["GET"]),
        Route(f"{base}/usage/series", g(api.series), methods=["GET"]),
        Route(f"{base}/fair-use", g(api.fair_use), methods=["GET"]),
    ]


__all__ = ["KeysApi", "key_routes"]
