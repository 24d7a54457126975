"""Configuration errors in the operator's terms: one line naming the field and what was expected.

A bad config stops the gateway at start with ONE line (`<field path>: <problem>`), never a stack
trace; a value is echoed only when it is not a secret (passwords, tokens, keys, the Redis URL).
"""

from __future__ import annotations

import typing
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ValidationError

from ..jsontypes import json_type

_SECRET_FIELDS = frozenset({"password", "token", "key", "signature_key", "redis_url"})  # values never echoed


class ConfigError(ValueError):
    """Invalid configuration. `str()` is one line: `<field path>: <what was expected>`."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


def json_type_name(value: Any) -> str:
    return json_type(value, array="a list")


def _format_loc(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "config"


_TYPE_MESSAGES = {
    "int_parsing": "expected an integer",
    "int_type": "expected an integer",
    "int_from_float": "expected an integer",
    "float_parsing": "expected a number",
    "float_type": "expected a number",
    "bool_parsing": "expected true or false",
    "bool_type": "expected true or false",
    "string_type": "expected a string",
    "dict_type": "expected an object",
    "model_type": "expected an object",
    "model_attributes_type": "expected an object",
    "list_type": "expected a list",
    "tuple_type": "expected a list",
    "missing": "required",
}


def _describe(error: Mapping[str, Any]) -> tuple[str, str]:
    """(field path, problem) for one pydantic error, in the operator's terms."""
    loc = tuple(error.get("loc", ()))
    kind = error.get("type", "")
    ctx = error.get("ctx") or {}
    value = error.get("input")
    path = _format_loc(loc)
    if kind == "value_error":
        message = str(error.get("msg", "")).removeprefix("Value error, ")
        if message.startswith("[") and "]: " in message:  # a validator naming an item: "[3]: …"
            index, _, message = message.partition(": ")
            path = (path if path != "config" else "") + index
        return path, message
    if kind in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
        op = {"greater_than_equal": ">=", "greater_than": ">", "less_than_equal": "<=", "less_than": "<"}[kind]
        bound = next(iter(ctx.values()), "?")
        if isinstance(bound, float) and bound.is_integer():
            bound = int(bound)
        message = f"expected a number {op} {bound}"
    elif kind == "literal_error":
        message = f"expected {ctx.get('expected', 'one of the allowed values')}"
    elif kind == "string_too_short":
        message = "expected a non-empty string"
    else:
        message = _TYPE_MESSAGES.get(kind) or str(error.get("msg", "invalid value"))
    secret = any(isinstance(p, str) and p in _SECRET_FIELDS for p in loc) or (
        loc and loc[0] in ("keys", "admin_keys"))
    if kind != "missing" and not secret:
        if isinstance(value, (str, int, float, bool)) or value is None:
            shown = repr(value)
            message += f" (got {shown if len(shown) <= 60 else shown[:57] + '...'})"
        else:
            message += f" (got {json_type_name(value)})"
    return path, message


def config_error(exc: ValidationError, sources: Mapping[str, str]) -> ConfigError:
    errors = exc.errors(include_url=False)
    path, message = _describe(errors[0])
    source = sources.get(path)
    if source:
        path = f"{path} (from {source})"
    if len(errors) > 1:
        more = len(errors) - 1
        message += f"; and {more} more problem{'s' if more > 1 else ''}"
    return ConfigError(path, message)


def unknown_keys(model: type[BaseModel], data: Mapping[str, Any], prefix: str) -> list[str]:
    """Config keys no model field knows (typos, seed extras like claude_model_mapping)."""
    found: list[str] = []
    fields = model.model_fields
    for key, value in data.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        field = fields.get(key) if isinstance(key, str) else None
        if field is None:
            found.append(path)
            continue
        sub, container = _nested_model(field.annotation)
        if sub is None:
            continue
        if container == "one" and isinstance(value, Mapping):
            found += unknown_keys(sub, value, path)
        elif container == "list" and isinstance(value, (list, tuple)):
            for index, item in enumerate(value):
                if isinstance(item, Mapping):
                    found += unknown_keys(sub, item, f"{path}[{index}]")
        elif container == "dict" and isinstance(value, Mapping):
            for name, item in value.items():
                if isinstance(item, Mapping):
                    found += unknown_keys(sub, item, f"{path}.{name}")
    return found


def _nested_model(annotation: Any) -> tuple[type[BaseModel] | None, str]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation, "one"
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is tuple and args and isinstance(args[0], type) and issubclass(args[0], BaseModel):
        return args[0], "list"
    if origin is dict and len(args) == 2 and isinstance(args[1], type) and issubclass(args[1], BaseModel):
        return args[1], "dict"
    return None, ""


__all__ = ["ConfigError", "config_error", "json_type_name", "unknown_keys"]
