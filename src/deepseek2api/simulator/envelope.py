"""The §1.2 JSON envelope every DeepSeek API answer uses, errors included (mostly with HTTP 200)."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from .streams import dumps

INVALID_TOKEN = (40003, "Authorization Failed (invalid token)")


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(dumps(body), status_code=status, media_type="application/json", headers=headers)


def ok(biz_data: Any) -> Response:
    """Success: `{"code":0,"msg":"","data":{"biz_code":0,"biz_msg":"","biz_data":…}}`."""
    return json_response({"code": 0, "msg": "", "data": {"biz_code": 0, "biz_msg": "", "biz_data": biz_data}})


def code_error(code: int, msg: str, *, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """Top-level failure: `{"code":N,"msg":…,"data":null}`."""
    return json_response({"code": code, "msg": msg, "data": None}, status, headers)


def biz_error(biz_code: int, biz_msg: str, biz_data: Any = None) -> Response:
    """Business failure inside a successful envelope (wrong password, muted, invalid session …)."""
    return json_response({"code": 0, "msg": "", "data": {"biz_code": biz_code, "biz_msg": biz_msg,
                                                          "biz_data": biz_data}})


def token_error(http_401: bool) -> Response:
    """Unknown or expired token: the 40003 envelope, with HTTP 200 or (optional mode) 401."""
    return code_error(*INVALID_TOKEN, status=401 if http_401 else 200)


def invalid_session() -> Response:
    return biz_error(3, "invalid chat session id")


def invalid_parent() -> Response:
    return biz_error(4, "invalid parent message id")


def bad_request(what: str) -> Response:
    return code_error(40000, f"invalid request: {what}")
