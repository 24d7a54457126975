"""Conformance (docs/clients.md): the openai npm SDK (6.x on Node 20) via `node --test tests/node/*.test.mjs`.

tests/node's locked dependencies (package-lock.json) are installed with `npm ci` on first use, so the
README's test command needs no extra step. Without `node` and `npm` on the machine these tests are skipped.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from conformance_support import ConformanceStack, OpenAISchemas, conformance_stack, openai_schemas
from deepseek2api.simulator.replies import reply_for
from gateway_support import API_KEY

__all__ = ["openai_schemas"]

NODE_DIR = Path(__file__).resolve().parents[2] / "node"
NODE = shutil.which("node")

NPM = shutil.which("npm")

pytestmark = [pytest.mark.slow, pytest.mark.skipif(NODE is None or NPM is None,
                                                   reason="no `node`/`npm` on this machine: the openai npm SDK tests need Node 20+")]


def _install_node_packages() -> None:
    """`npm ci` from the committed lockfile, once (a no-op when node_modules is already there)."""
    if (NODE_DIR / "node_modules" / "openai").is_dir():
        return
    result = subprocess.run([NPM or "npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=NODE_DIR,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"npm ci in {NODE_DIR} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"


def _expectations() -> dict[str, dict[str, str]]:
    """The exact replies the simulator gives for the prompts the JS tests send."""
    cases = {"plain": ("node plain question", False), "thinking": ("node stream with usage", True),
             "retry": ("node retry after 429", False), "cut": ("node cut [sim:fault=cut] [sim:words=40]", False)}
    out = {}
    for name, (prompt, thinking) in cases.items():
        reply = reply_for(prompt, thinking=thinking, search=False)
        out[name] = {"prompt": prompt, "content": reply.content, "reasoning": reply.reasoning}
    return out


@pytest.fixture(scope="module")
def stack(openai_schemas: OpenAISchemas) -> Iterator[ConformanceStack]:
    _install_node_packages()
    with conformance_stack(openai_schemas, accounts=2, pool={"queue_timeout": 0.3}) as running:
        yield running


@pytest.fixture(autouse=True)
def _wire_checked(stack: ConformanceStack) -> Iterator[None]:
    stack.check_wire()
    yield
    stack.assert_invariants()


def run_node(stack: ConformanceStack, test_file: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DS2API_BASE_URL": stack.api_base, "DS2API_KEY": API_KEY,
           "DS2API_EXPECT": json.dumps(_expectations()), "NO_COLOR": "1"}
    env.pop("NODE_OPTIONS", None)
    result = subprocess.run([NODE or "node", "--test", "--test-reporter=spec", test_file], cwd=NODE_DIR, env=env,
                            capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, f"node --test {test_file} failed:\n{result.stdout[-6000:]}\n{result.stderr[-3000:]}"
    return result


def test_o17_openai_npm_chat(stack: ConformanceStack) -> None:
    mark = stack.wire.mark()
    result = run_node(stack, "chat.test.mjs")
    assert "ℹ pass 4" in result.stdout and "ℹ fail 0" in result.stdout, result.stdout[-3000:]
    statuses = sorted(e.status for e in stack.wire.chat_since(mark))
    assert statuses == [200, 200, 200, 401], statuses  # the 401 was not retried


def test_o17_openai_npm_retries_429(stack: ConformanceStack) -> None:
    mark = stack.wire.mark()
    with stack.hold_accounts() as hold:
        hold.release_on_retry(1)
        result = run_node(stack, "retry.test.mjs")
    assert "ℹ pass 1" in result.stdout and "ℹ fail 0" in result.stdout, result.stdout[-3000:]
    seen = stack.wire.chat_since(mark)
    assert [e.status for e in seen] == [429, 200]
    assert [e.request_headers.get("x-stainless-retry-count") for e in seen] == ["0", "1"]
