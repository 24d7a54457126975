"""The `/_sim/` control API (no auth): stats, queued faults, live config, reset.

`GET /_sim/stats` · `GET|POST /_sim/faults` (`{"account","fault","count"=1,"on"="completion"}`, or
`{"account"?, "clear": true}`) · `GET|POST /_sim/config` (any SimulatorConfig field) ·
`GET /_sim/prompts` (the last 32 completion prompts, oldest first) ·
`POST /_sim/reset` (`{"all": true}` also forgets tokens, sessions and PoW challenges).
Bad input answers HTTP 400 `{"error": "…"}`.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .envelope import json_response
from .state import SimState


def _error(message: str) -> Response:
    return json_response({"error": message}, 400)


async def _body(request: Request) -> dict[str, Any] | None:
    try:
        body = json.loads(await request.body() or b"{}")
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def routes(state: SimState) -> list[Route]:
    async def stats(request: Request) -> Response:
        return json_response(state.stats())

    async def faults(request: Request) -> Response:
        if request.method == "GET":
            return json_response(state.stats()["pending_faults"])
        body = await _body(request)
        if body is None:
            return _error("body must be a JSON object")
        account = body.get("account")
        if account is not None and state.config.user_by_account(account) is None:
            return _error(f"unknown account {account!r}")
        if body.get("clear"):
            if account is None:
                state.fault_queues.clear()
            else:
                state.fault_queues.pop(account, None)
            return json_response(state.stats()["pending_faults"])
        if account is None:
            return _error("account is required")
        count = body.get("count", 1)
        if type(count) is not int or count < 0:
            return _error("count must be a non-negative integer")
        try:
            state.add_fault(account, str(body.get("fault")), count, str(body.get("on", "completion")))
        except ValueError as exc:
            return _error(str(exc))
        return json_response(state.stats()["pending_faults"])

    async def config(request: Request) -> Response:
        if request.method == "POST":
            body = await _body(request)
            if body is None:
                return _error("body must be a JSON object")
            try:
                state.config.update(body)
            except (ValueError, TypeError, KeyError) as exc:
                return _error(str(exc))
        return json_response(state.config.public())

    async def reset(request: Request) -> Response:
        body = await _body(request) or {}
        state.reset(everything=bool(body.get("all")))
        return json_response(state.stats())

    async def prompts(request: Request) -> Response:
        return json_response(list(state.recent_prompts))

    return [
        Route("/_sim/stats", stats, methods=["GET"]),
        Route("/_sim/prompts", prompts, methods=["GET"]),
        Route("/_sim/faults", faults, methods=["GET", "POST"]),
        Route("/_sim/config", config, methods=["GET", "POST"]),
        Route("/_sim/reset", reset, methods=["POST"]),
    ]
