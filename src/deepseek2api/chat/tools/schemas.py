"""JSON Schema checks and validators, made once per distinct schema per process.

`check_schema` walks the schema against its metaschema, which costs milliseconds for a tool with a few
parameters; agents send the same tools with every request, so the gateway paid that on every turn
(and again when a call was validated). Both the verdict and the validator are kept, keyed by the
schema's canonical JSON, in a bounded LRU.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

import jsonschema
import jsonschema.exceptions
import jsonschema.validators

_canonical = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str).encode


@lru_cache(maxsize=1024)
def _compiled(key: str) -> tuple[Any, str | None]:
    schema = json.loads(key)
    if not isinstance(schema, dict):
        return None, "a JSON Schema must be an object"
    try:
        cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
        cls.check_schema(schema)
    except jsonschema.exceptions.SchemaError as exc:
        return None, str(exc.message)
    return cls(schema), None


def compiled(schema: Mapping[str, Any]) -> tuple[Any, str | None]:
    """(validator, None) for a valid schema, (None, why) for an invalid one."""
    return _compiled(_canonical(dict(schema)))


def schema_problem(schema: Mapping[str, Any]) -> str | None:
    """Why `schema` is not a valid JSON Schema, or None."""
    return compiled(schema)[1]


def validator(schema: Mapping[str, Any]) -> Any:
    """A validator for `schema` (None when the schema is invalid)."""
    return compiled(schema)[0]
