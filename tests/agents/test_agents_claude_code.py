"""Claude Code itself against gateway + simulator: `claude -p … --output-format json` reads one file and
writes another through the Anthropic Messages surface (streaming, ~20 tools, adaptive thinking).

The pinned native build (`@anthropic-ai/claude-code-linux-x64`, no Node needed to run it) is installed
from tests/agents/package-lock.json with `npm ci` on first use (~384 MB installed, ~20 s). The simulator is
scripted by directives in the task: call Read on the source file, then — once one tool result is in
the prompt — Write the target file, then answer in prose. Skipped only when npm is missing or the
registry refuses the package.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway_support import API_KEY, running_stack

pytestmark = pytest.mark.slow

AGENTS_DIR = Path(__file__).resolve().parents[1] / "agents"
CLAUDE = AGENTS_DIR / "node_modules" / "@anthropic-ai" / "claude-code-linux-x64" / "claude"
NPM = shutil.which("npm")


def _claude() -> Path:
    if CLAUDE.is_file():
        return CLAUDE
    if NPM is None:
        pytest.skip("no `npm` on this machine: Claude Code's native package cannot be installed")
    result = subprocess.run([NPM, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=AGENTS_DIR,
                            capture_output=True, text=True, timeout=600, check=False)
    if result.returncode != 0:
        output = result.stdout + result.stderr
        if any(word in output for word in ("ENOTFOUND", "EAI_AGAIN", "ECONNREFUSED", "E403", "E404", "ETIMEDOUT")):
            pytest.skip(f"the npm registry refused @anthropic-ai/claude-code-linux-x64: {output[-500:]}")
        raise AssertionError(f"npm ci in {AGENTS_DIR} failed:\n{output[-3000:]}")
    return CLAUDE


def test_claude_code_reads_one_file_and_writes_another_through_the_gateway(tmp_path: Path) -> None:
    claude = _claude()
    project, home = tmp_path / "project", tmp_path / "home"
    project.mkdir()
    home.mkdir()
    source, target = project / "notes.txt", project / "copy.txt"
    source.write_text("the secret word is alpha-7391\n")
    written = "copied: alpha-7391\nline two with <tags> & \"quotes\"\n"
    task = ("Read notes.txt, then write the secret word into copy.txt. "
            f'[sim:tool=Read args={json.dumps({"file_path": str(source)})}] '
            f'[sim:after1=Write args={json.dumps({"file_path": str(target), "content": written})}]')
    with running_stack(accounts=2, server={"keepalive_interval": 2.0}) as stack:
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "TERM": "dumb", "NO_COLOR": "1",
               "ANTHROPIC_BASE_URL": stack.base_url, "ANTHROPIC_AUTH_TOKEN": API_KEY,
               "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1", "DISABLE_TELEMETRY": "1",
               "DISABLE_AUTOUPDATER": "1", "DISABLE_ERROR_REPORTING": "1"}
        result = subprocess.run([str(claude), "-p", task, "--output-format", "json", "--allowedTools", "Read,Write"],
                                cwd=project, env=env, capture_output=True, text=True, timeout=300,
                                stdin=subprocess.DEVNULL, check=False)
        assert result.returncode == 0, f"claude failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        report: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
        prompts: list[str] = httpx.get(f"{stack.simulator.base_url}/_sim/prompts", timeout=10).json()
    assert report["is_error"] is False, report
    assert target.read_text() == written
    # The Read tool's result (the file's text) went back upstream inside a tool result.
    assert any("tool_result" in p and "alpha-7391" in p.split("tool_result", 1)[1] for p in prompts)
    assert "returned" in report["result"]  # the simulator's prose answer after the Write result


def test_claude_code_searches_the_web_through_the_gateway(tmp_path: Path) -> None:
    """Its WebSearch tool sends a request offering Anthropic's hosted `web_search_…` tool: the gateway runs
    it as DeepSeek's search and answers with search blocks, and the simulator's results reach the agent."""
    claude = _claude()
    project, home = tmp_path / "project", tmp_path / "home"
    project.mkdir()
    home.mkdir()
    task = ('Search the web for the DeepSeek2API simulator handbook and tell me the first link. '
            # WebSearch is one of Claude Code's deferred tools: loaded with ToolSearch first, then called
            '[sim:tool=ToolSearch args={"query": "select:WebSearch"}] '
            '[sim:after1=WebSearch args={"query": "DeepSeek2API simulator handbook"}]')
    with running_stack(accounts=2, server={"keepalive_interval": 2.0}) as stack:
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "TERM": "dumb", "NO_COLOR": "1",
               "ANTHROPIC_BASE_URL": stack.base_url, "ANTHROPIC_AUTH_TOKEN": API_KEY,
               "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1", "DISABLE_TELEMETRY": "1",
               "DISABLE_AUTOUPDATER": "1", "DISABLE_ERROR_REPORTING": "1"}
        result = subprocess.run([str(claude), "-p", task, "--output-format", "json", "--allowedTools", "ToolSearch,WebSearch"],
                                cwd=project, env=env, capture_output=True, text=True, timeout=300,
                                stdin=subprocess.DEVNULL, check=False)
        assert result.returncode == 0, f"claude failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        report: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
        prompts: list[str] = httpx.get(f"{stack.simulator.base_url}/_sim/prompts", timeout=10).json()
    assert report["is_error"] is False, report
    # The search request ran with DeepSeek's search on, and its results went back to the agent's loop as
    # the WebSearch tool's result (the simulator's result URLs are on example.* domains).
    results = [p.split("tool_result", 1)[1] for p in prompts if "tool_result" in p]
    assert any("docs.example.com/simulator/overview" in r for r in results), results[-1:]
    assert "returned" in report["result"] and "example.com" in report["result"], report["result"]
