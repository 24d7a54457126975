"""The Vercel AI SDK (npm `ai` + `@ai-sdk/openai`, pinned in tests/ai-sdk/package-lock.json) against the
gateway's Responses API with `store` on: from the second step on it sends earlier answers, pre-call text
and reasoning as `item_reference`s, which must reach the upstream prompt in place.

The SDK needs Node 22+; the lockfile also pins npm's `node` package, so `npm ci` installs a Node 22 binary
into tests/ai-sdk/node_modules/.bin (the machine's own node may be older). Skipped without npm or registry.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from conformance_support import ConformanceStack, OpenAISchemas, conformance_stack, openai_schemas
from gateway_support import API_KEY
from responses_support import response_schemas
from test_responses_api import check_responses_wire

pytestmark = pytest.mark.slow

__all__ = ["openai_schemas", "response_schemas"]  # imported fixtures used by this module

SDK_DIR = Path(__file__).resolve().parents[2] / "ai-sdk"
NODE22 = SDK_DIR / "node_modules" / ".bin" / "node"
PRE_CALL = "I will call lookup_weather (simulated)."


def _install() -> None:
    """`npm ci` from the committed lockfile, once; skip (with the reason) when it cannot be installed."""
    if (SDK_DIR / "node_modules" / "@ai-sdk" / "openai").is_dir() and NODE22.exists():
        return
    npm = shutil.which("npm")
    if npm is None:
        pytest.skip("no `npm` on this machine: the AI SDK test installs its packages (and Node 22) with it")
    result = subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=SDK_DIR,
                            capture_output=True, text=True, timeout=600, check=False)
    if result.returncode != 0 or not NODE22.exists():
        pytest.skip(f"the AI SDK could not be installed with npm ci (registry unreachable?): {result.stderr[-500:]}")


@pytest.fixture(scope="module")
def stack(openai_schemas: OpenAISchemas) -> Iterator[ConformanceStack]:
    _install()
    with conformance_stack(openai_schemas, accounts=2) as running:
        yield running


def run_agent(stack: ConformanceStack) -> dict[str, Any]:
    env = {**os.environ, "DS2API_BASE_URL": stack.api_base, "DS2API_KEY": API_KEY, "NO_COLOR": "1"}
    env.pop("NODE_OPTIONS", None)
    result = subprocess.run([str(NODE22), "agent.mjs"], cwd=SDK_DIR, env=env, capture_output=True, text=True,
                            timeout=180, check=False)
    assert result.returncode == 0, f"agent.mjs failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    seen: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return seen


def test_the_ai_sdk_agent_loop_and_chat_see_their_earlier_turns_upstream(
        stack: ConformanceStack, response_schemas: OpenAISchemas) -> None:
    version = subprocess.run([str(NODE22), "--version"], capture_output=True, text=True, check=True).stdout
    assert int(version.strip().lstrip("v").split(".")[0]) >= 22
    mark = stack.wire.mark()
    seen = run_agent(stack)
    prompts: list[str] = httpx.get(f"{stack.simulator.base_url}/_sim/prompts", timeout=10).json()

    # several steps with a tool: two calls, then the answer quoting both results
    steps = seen["steps"]
    assert [s["toolCalls"] for s in steps] == [["lookup_weather"], ["lookup_weather"], []], steps
    assert "SUNNY-IN-BERGEN-21C" in seen["finalText"]
    # from the second step on the SDK referred to its earlier answers instead of resending them …
    types = seen["inputTypes"]
    assert types[0] == ["user"] and "item_reference" in types[1] and "item_reference" in types[2], types
    # … and the upstream saw them in place: the pre-call text before each call and its result
    step2, step3 = prompts[1], prompts[2]
    assert PRE_CALL in step2 and step2.index(PRE_CALL) < step2.index("SUNNY-IN-")
    assert step3.count(PRE_CALL) == 2 and step3.index("SUNNY-IN-") < step3.rindex(PRE_CALL)

    # the two-turn chat: the first answer (sent back as a reference) precedes the second question
    assert types[4] == ["user", "item_reference", "user"], types
    chat = prompts[4]
    assert seen["firstAnswer"] in chat and chat.index(seen["firstAnswer"]) < chat.index("SECOND-TURN")
    check_responses_wire(stack.wire.since(mark), response_schemas)
