"""JSON Schema checks and validators, made once per distinct schema per process.

`check_schema` walks the schema against its metaschema, which costs milliseconds for a tool with a few
parameters; agents send the same tools with every request, so the gateway paid that on every turn
(and again when a call was validated). Both the verdict and the validator are kept, keyed by the
schema's canonical JSON, in a bounded LRU.

A schema `check_schema` accepts can still be impossible to evaluate: a `$ref` to nowhere or to another
document (never fetched), or a cycle of references that never descends into the instance
(`{"anyOf": [{"$ref": "#"}]}`), which recurses until Python gives up. Those are refused here, so they
become a 400 on the request instead of a failure in the middle of an answer; `first_error` is the
last line of defence all the same.

`jsonschema` (~7 MB resident with its format and referencing modules) is imported on the first schema
a request brings, not at start-up: a gateway whose clients never declare tools or a response schema
never loads it.

Every `pattern` the validators match goes through RE2 (`safe_regex`): a client's `^(a+)+$` must not
freeze the process while it backtracks over the model's answer.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from . import safe_regex

_TOO_DEEP = "the schema is nested too deeply to check"
_canonical = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str).encode


@lru_cache(maxsize=1024)
def _compiled(key: str) -> tuple[Any, str | None]:
    schema = json.loads(key)
    if not isinstance(schema, dict):
        return None, "a JSON Schema must be an object"
    import jsonschema.exceptions
    import jsonschema.validators

    safe_regex.install()  # now that jsonschema's keyword modules are loaded (idempotent)
    try:
        cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
        cls.check_schema(schema)
    except jsonschema.exceptions.SchemaError as exc:
        return None, str(exc.message)
    except RecursionError:  # the metaschema walk recurses a few frames per level: ~100 levels are enough
        return None, _TOO_DEEP
    problem = _reference_problem(schema)
    if problem is not None:
        return None, problem
    return cls(schema), None


def compiled(schema: Mapping[str, Any]) -> tuple[Any, str | None]:
    """(validator, None) for a valid schema, (None, why) for an invalid one."""
    try:
        key = _canonical(dict(schema))
    except RecursionError:
        return None, _TOO_DEEP
    return _compiled(key)


def schema_problem(schema: Mapping[str, Any]) -> str | None:
    """Why `schema` is not a valid JSON Schema, or None."""
    return compiled(schema)[1]


def validator(schema: Mapping[str, Any]) -> Any:
    """A validator for `schema` (None when the schema is invalid)."""
    return compiled(schema)[0]


# Keywords whose subschemas apply to the SAME instance: a cycle through only these never ends.
_IN_PLACE_LISTS = ("allOf", "anyOf", "oneOf")
_IN_PLACE_ONE = ("not", "if", "then", "else", "$ref")
_MAX_NODES = 10_000


def _pointer(root: Any, ref: str) -> Any:
    """The node a local `#/a/b` reference names (KeyError / IndexError / TypeError when there is none)."""
    node = root
    for raw in ref[1:].split("/")[1:] if ref != "#" else ():
        part = raw.replace("~1", "/").replace("~0", "~")
        node = node[int(part)] if isinstance(node, list) else node[part]
    return node


def _reference_problem(schema: dict[str, Any]) -> str | None:
    """A `$ref` that cannot be followed, or a cycle of in-place applicators; None when evaluation is safe."""
    nodes: list[Any] = []
    stack: list[Any] = [schema]
    while stack and len(nodes) < _MAX_NODES:  # every subschema (also the ones only reached by $ref)
        node = stack.pop()
        if isinstance(node, dict):
            nodes.append(node)
            stack.extend(v for k, v in node.items() if k not in ("enum", "const", "default", "examples"))
        elif isinstance(node, list):
            stack.extend(node)
    edges: dict[int, list[Any]] = {}
    for node in nodes:
        targets: list[Any] = []
        ref = node.get("$ref")
        if isinstance(ref, str):
            if not ref.startswith("#"):
                return f"$ref {ref[:100]!r} points outside the schema (only local references are followed)"
            try:
                targets.append(_pointer(schema, ref))
            except (KeyError, IndexError, TypeError, ValueError):
                return f"$ref {ref[:100]!r} points to nothing in the schema"
        for key in _IN_PLACE_LISTS:
            if isinstance(node.get(key), list):
                targets.extend(node[key])
        for key in _IN_PLACE_ONE[:-1]:
            if key in node:
                targets.append(node[key])
        edges[id(node)] = [t for t in targets if isinstance(t, dict)]
    # A cycle through in-place edges only: depth-first search with colours.
    state: dict[int, int] = {}
    for start in nodes:
        if state.get(id(start)):
            continue
        path = [(start, iter(edges.get(id(start), ())))]
        state[id(start)] = 1
        while path:
            node, children = path[-1]
            child = next(children, None)
            if child is None:
                state[id(node)] = 2
                path.pop()
            elif state.get(id(child)) == 1:
                return "its references loop without ever descending into the value ($ref / anyOf / allOf cycle)"
            elif not state.get(id(child)):
                state[id(child)] = 1
                path.append((child, iter(edges.get(id(child), ()))))
    return None


def first_error(checker: Any, instance: Any) -> tuple[str, str] | None:
    """(where, message) of the most relevant validation error, or None. A schema that still cannot be
    evaluated counts as an error rather than a crash."""
    import jsonschema.exceptions
    import referencing.exceptions

    try:
        error = jsonschema.exceptions.best_match(checker.iter_errors(instance))
    except (referencing.exceptions.Unresolvable, RecursionError) as exc:
        return "(root)", f"the schema could not be evaluated ({type(exc).__name__})"
    if error is None:
        return None
    return "/".join(str(p) for p in error.absolute_path) or "(root)", str(error.message)
