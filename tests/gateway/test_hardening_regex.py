"""Client regexes in JSON Schemas are matched by RE2: a catastrophic `pattern` cannot freeze the gateway.

With Python's backtracking `re`, `^(a+)+$` against 40 `a`s and a `!` takes ~2^40 steps while holding the
GIL; these tests would never finish (the unit ones) or `/health` would never answer (the gateway one).
"""

from __future__ import annotations

import threading
from typing import Any

import httpx
import openai
import pytest

from deepseek2api.chat.tools import safe_regex
from deepseek2api.chat.tools.schemas import first_error, validator
from deepseek2api.chat.tools.spec import ResponseFormat
from deepseek2api.chat.tools.structured import StructuredError, check_structured
from gateway_support import running_stack

EVIL = "^(a+)+$"
ATTACK = "a" * 40 + "!"
SCHEMA = {"type": "object", "properties": {"s": {"type": "string", "pattern": EVIL}}, "required": ["s"],
          "additionalProperties": False}

pytestmark = pytest.mark.skipif(not safe_regex.available(), reason="google-re2 is not installed")


def test_a_catastrophic_pattern_is_checked_and_gives_the_right_verdict() -> None:
    checker = validator(SCHEMA)
    error = first_error(checker, {"s": ATTACK})
    assert error is not None and error[0] == "s" and "does not match" in error[1]
    assert first_error(checker, {"s": "a" * 40}) is None


@pytest.mark.parametrize("schema, instance, valid", [
    ({"patternProperties": {"^(b+)+$": {"type": "integer"}}, "additionalProperties": False}, {"b" * 40 + "!": 1}, False),
    ({"patternProperties": {"^(b+)+$": {"type": "integer"}}, "additionalProperties": False}, {"b" * 40: 1}, True),
    ({"patternProperties": {"^(b+)+$": {"type": "integer"}}}, {"b" * 40: "x"}, False),
    ({"patternProperties": {"^(b+)+$": {}}, "unevaluatedProperties": False}, {"b" * 40 + "!": 1}, False),
    ({"patternProperties": {"^(b+)+$": {}}, "unevaluatedProperties": False}, {"bbb": 1}, True),
])
def test_pattern_properties_go_through_re2_everywhere_jsonschema_uses_them(
        schema: dict[str, Any], instance: dict[str, Any], valid: bool) -> None:
    assert (first_error(validator(schema), instance) is None) is valid


def test_a_pattern_re2_cannot_run_is_not_enforced_rather_than_backtracked() -> None:
    checker = validator({"type": "string", "pattern": r"^(?=(a+)+$)b"})  # look-ahead: not RE2
    assert first_error(checker, ATTACK) is None
    assert first_error(validator({"type": "string", "pattern": r"^\d{3}$"}), "12a") is not None


def test_response_format_with_a_catastrophic_pattern() -> None:
    fmt = ResponseFormat("json_schema", SCHEMA, "s")
    assert check_structured('{"s": "' + ATTACK + '"}', fmt).error is StructuredError.SCHEMA_MISMATCH
    assert check_structured('{"s": "aaaa"}', fmt).ok


def test_the_gateway_keeps_answering_while_it_checks_a_catastrophic_pattern() -> None:
    with running_stack(accounts=1) as stack:
        outcome: dict[str, Any] = {}

        def ask() -> None:
            try:
                stack.openai().chat.completions.create(
                    model="deepseek-chat",
                    messages=[{"role": "user", "content": '[sim:reply={"s": "' + ATTACK + '"}] fill s'}],
                    response_format={"type": "json_schema",
                                     "json_schema": {"name": "s", "schema": SCHEMA}})
            except openai.APIStatusError as exc:
                outcome["error"] = exc
        worker = threading.Thread(target=ask)
        worker.start()
        answers = [httpx.get(f"{stack.base_url}/health", timeout=30).status_code for _ in range(5)]
        worker.join(60)
        assert not worker.is_alive()
        assert answers == [200] * 5
        error = outcome.get("error")
        assert error is not None, "the answer does not satisfy the pattern: it must be refused"
        assert "does not match" in str(error.body)
