"""`response_format` json_object / json_schema: read the answer as JSON, check it, say how to fix it.

The web chat has no constrained decoding, so the answer is checked afterwards: a code fence or prose
around the JSON is removed, broken JSON is repaired deterministically (`jsonfix`), and the value is
validated (an object for json_object; `jsonschema` against the schema for json_schema). A failure
gets one repair round with `correction_text`, then an error.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .jsonfix import loads_lenient, strip_fence
from .prompt import guard
from .schemas import compiled, first_error, schema_problem
from .spec import ResponseFormat

_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


class StructuredError(enum.StrEnum):
    NOT_JSON = "not_json"
    NOT_OBJECT = "not_object"
    SCHEMA_MISMATCH = "schema_mismatch"
    BAD_SCHEMA = "bad_schema"  # the client's schema is not a valid JSON Schema (a 400 on the request)


@dataclass(frozen=True, slots=True)
class StructuredResult:
    """`text` is what to return as content: the JSON as written (fences/prose removed) or re-encoded
    after a repair. `error` is None when the answer is acceptable."""

    text: str
    value: Any = None
    error: StructuredError | None = None
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.error is None


def schema_error(schema: Mapping[str, Any]) -> str | None:
    """Why `schema` is not a usable JSON Schema (for a 400 naming `response_format`), or None."""
    return schema_problem(schema)


def check_structured(answer: str, fmt: ResponseFormat) -> StructuredResult:
    """Read and check one complete answer against `fmt` (text format: always ok, unchanged)."""
    if fmt.kind == "text":
        return StructuredResult(answer)
    body = strip_fence(answer.strip()).strip()
    try:
        value = json.loads(body)
        text = body
    except (ValueError, RecursionError):
        ok, value = loads_lenient(body)
        if not ok:
            return StructuredResult(answer, error=StructuredError.NOT_JSON, detail="the answer is not JSON")
        text = _encode(value)
    if fmt.kind == "json_object" or fmt.schema is None:
        if not isinstance(value, dict):
            return StructuredResult(text, value, StructuredError.NOT_OBJECT, "the answer is not a JSON object")
        return StructuredResult(text, value)
    checker, problem = compiled(fmt.schema)
    if problem is not None:
        return StructuredResult(text, value, StructuredError.BAD_SCHEMA, problem[:300])
    error = first_error(checker, value)
    if error is not None:
        return StructuredResult(text, value, StructuredError.SCHEMA_MISMATCH, f"{error[0]}: {error[1]}"[:300])
    return StructuredResult(text, value)


def correction_text(result: StructuredResult, fmt: ResponseFormat) -> str:
    """The one repair round's instruction (appended as a user turn after the failed answer)."""
    what = {
        StructuredError.NOT_JSON: "Your answer was not valid JSON.",
        StructuredError.NOT_OBJECT: "Your answer was not a JSON object.",
        StructuredError.SCHEMA_MISMATCH: f"Your JSON did not match the schema: {guard(result.detail)}.",
        StructuredError.BAD_SCHEMA: "",
    }.get(result.error or StructuredError.NOT_JSON, "")
    target = "the JSON Schema given above" if fmt.kind == "json_schema" else "a JSON object"
    return f"{what} Answer again with only one JSON object valid against {target}: no prose, no code fence."
