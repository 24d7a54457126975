"""One way to name a value's JSON type in error messages ("expected an object, but got an array")."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def json_type(value: Any, *, array: str = "an array") -> str:
    """The JSON type of a parsed value, with its article; bool is not an integer here.

    `array`: the word for a JSON array ("a list" reads better in config errors).
    """
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, (list, tuple)):
        return array
    if isinstance(value, Mapping):
        return "an object"
    return type(value).__name__
