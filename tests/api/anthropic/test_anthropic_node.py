"""The @anthropic-ai/sdk npm package (Node 20) against the Messages API: `node --test tests/node/anthropic.test.mjs`.

tests/node's locked dependencies are installed with `npm ci` when the SDK is missing, so the README's test
command needs no extra step. Without `node` and `npm` on the machine this test is skipped.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from gateway_support import API_KEY, running_stack

NODE_DIR = Path(__file__).resolve().parents[2] / "node"
NODE, NPM = shutil.which("node"), shutil.which("npm")

pytestmark = [pytest.mark.slow, pytest.mark.skipif(NODE is None or NPM is None,
                                                   reason="no `node`/`npm` on this machine: the @anthropic-ai/sdk tests need Node 20+")]


def _install() -> None:
    if (NODE_DIR / "node_modules" / "@anthropic-ai" / "sdk").is_dir():
        return
    result = subprocess.run([NPM or "npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=NODE_DIR,
                            capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, f"npm ci in {NODE_DIR} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"


def test_the_anthropic_npm_sdk_streams_tool_use_and_round_trips_the_result() -> None:
    _install()
    with running_stack(accounts=2) as stack:
        env = {**os.environ, "DS2API_ANTHROPIC_URL": stack.base_url, "DS2API_KEY": API_KEY, "NO_COLOR": "1"}
        env.pop("NODE_OPTIONS", None)
        result = subprocess.run([NODE or "node", "--test", "--test-reporter=spec", "anthropic.test.mjs"],
                                cwd=NODE_DIR, env=env, capture_output=True, text=True, timeout=180, check=False)
    assert result.returncode == 0, f"node --test failed:\n{result.stdout[-6000:]}\n{result.stderr[-3000:]}"
    assert "ℹ pass 2" in result.stdout and "ℹ fail 0" in result.stdout, result.stdout[-3000:]
