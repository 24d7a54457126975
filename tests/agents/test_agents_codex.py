"""Codex CLI itself (npm `@openai/codex`, pinned in tests/agents-codex/package-lock.json) against the gateway.

Slow (it installs a ~424 MB native package once, with `npm ci`, and starts a real agent), and run by
CI. Codex speaks only the Responses API: its `CODEX_HOME/config.toml` declares the gateway as a
`responses` provider (docs/tools.md). The task makes the simulator call Codex's shell tool
(`exec_command {"cmd": …}` in Codex 0.171), Codex runs `cat hello.txt`, sends the output back as a
`function_call_output`, and the simulator answers quoting it. Skipped only where the package cannot be
installed (no node/npm, or no registry).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conformance_support import (
    ConformanceStack,
    OpenAISchemas,
    conformance_stack,
    openai_schemas,
)
from gateway_support import API_KEY
from responses_support import response_schemas
from test_responses_api import check_responses_wire, sim_prompts

pytestmark = pytest.mark.slow

__all__ = ["openai_schemas", "response_schemas"]

CODEX_DIR = Path(__file__).resolve().parents[1] / "agents-codex"
CODEX = CODEX_DIR / "node_modules" / ".bin" / "codex"
SHELL_TOOL = "exec_command"  # Codex 0.171's shell tool; its argument is {"cmd": "<command line>"}
FILE_TEXT = "hello from the file, line 1\n"


def _install_codex() -> None:
    """`npm ci` from the committed lockfile, once; skip (with the reason) when it cannot be installed."""
    if CODEX.exists():
        return
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        pytest.skip("no `node`/`npm` on this machine: the Codex CLI test needs them to install @openai/codex")
    result = subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], check=False, cwd=CODEX_DIR,
                            capture_output=True, text=True, timeout=900)
    if result.returncode != 0 or not CODEX.exists():
        pytest.skip(f"@openai/codex could not be installed with npm ci (registry unreachable?): {result.stderr[-500:]}")


@pytest.fixture(scope="module")
def stack(openai_schemas: OpenAISchemas) -> Iterator[ConformanceStack]:
    _install_codex()
    with conformance_stack(openai_schemas, accounts=2) as running:
        yield running


def codex_home(tmp_path: Path, base_url: str, model: str, extra: str = "") -> Path:
    home = tmp_path / "codex-home"
    home.mkdir()
    (home / "config.toml").write_text(f'''model = "{model}"
model_provider = "ds2"
{extra}

[model_providers.ds2]
name = "DeepSeek2API"
base_url = "{base_url}/v1"
env_key = "DS2_API_KEY"
wire_api = "responses"
request_max_retries = 0
stream_max_retries = 0
''')
    return home


def run_codex(tmp_path: Path, stack: ConformanceStack, task: str, model: str,
              config: str = "") -> list[dict[str, Any]]:
    home = codex_home(tmp_path, stack.base_url, model, config)
    work = tmp_path / "work"
    work.mkdir()
    (work / "hello.txt").write_text(FILE_TEXT)
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(home), "CODEX_HOME": str(home), "DS2_API_KEY": API_KEY,
           "NO_COLOR": "1"}
    with open(os.devnull, "rb") as stdin:
        result = subprocess.run([str(CODEX), "exec", "--skip-git-repo-check", "--json", task], check=False,
                                cwd=work, env=env, stdin=stdin, capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, f"codex exec failed ({result.returncode}):\n{result.stdout[-4000:]}\n{result.stderr[-3000:]}"
    return [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]


@pytest.mark.parametrize("model", ["deepseek-chat", "deepseek-reasoner"])
def test_codex_runs_a_shell_command_through_the_gateway_and_answers_with_its_output(
        tmp_path: Path, stack: ConformanceStack, response_schemas: OpenAISchemas, model: str) -> None:
    mark = stack.wire.mark()
    task = f'Show me hello.txt [sim:tool={SHELL_TOOL} args={{"cmd": "cat hello.txt"}}]'
    events = run_codex(tmp_path, stack, task, model)
    completed = [e["item"] for e in events if e.get("type") == "item.completed"]
    reasoning = [item["text"] for item in completed if item["type"] == "reasoning"]
    if model == "deepseek-reasoner":  # the thinking text reaches Codex as reasoning summaries
        assert reasoning and all(reasoning), completed
    else:
        assert not reasoning

    [command] = [item for item in completed if item["type"] == "command_execution"]
    assert "cat hello.txt" in command["command"]
    assert command["exit_code"] == 0 and command["aggregated_output"] == FILE_TEXT
    messages = [item for item in completed if item["type"] == "agent_message"]
    assert messages and FILE_TEXT.strip() in messages[-1]["text"]  # the final answer quotes the output
    assert events[-1]["type"] == "turn.completed"

    assert FILE_TEXT.strip() in sim_prompts(stack)[-1]  # the command output reached the upstream prompt
    exchanges = [e for e in stack.wire.since(mark) if e.route == "/responses"]
    assert len(exchanges) == 2, [e.status for e in exchanges]
    first, second = (e.request_json() for e in exchanges)
    declared = [tool.get("name") for tool in first["tools"]]
    assert SHELL_TOOL in declared, f"Codex's tools changed: {declared}"
    assert first["stream"] is True and first["store"] is False
    assert any(item.get("type") == "function_call_output" for item in second["input"])
    stack.assert_invariants()
    check_responses_wire(exchanges, response_schemas)


def test_codex_with_web_search_gets_the_search_results_into_its_answer(
        tmp_path: Path, stack: ConformanceStack, response_schemas: OpenAISchemas) -> None:
    """Web search on: Codex offers the hosted `web_search` tool, the gateway runs the turn with DeepSeek's
    search and answers with a `web_search_call` item and a cited message; the results reach the answer."""
    mark = stack.wire.mark()
    events = run_codex(tmp_path, stack, "Search the web: what does the simulator handbook say?", "deepseek-chat",
                       config='web_search = "live"')
    exchanges = [e for e in stack.wire.since(mark) if e.route == "/responses"]
    first = exchanges[0].request_json()
    assert any(str(tool.get("type", "")).startswith("web_search") for tool in first["tools"]), first["tools"]
    completed = [e["item"] for e in events if e.get("type") == "item.completed"]
    messages = [item for item in completed if item["type"] == "agent_message"]
    assert messages and "docs.example.com/simulator/overview" in messages[-1]["text"], completed
    assert events[-1]["type"] == "turn.completed"
    stack.assert_invariants()
    check_responses_wire(exchanges, response_schemas)
