"""The Gemini CLI itself against gateway + simulator: `gemini -p … --output-format json --yolo` reads one file
and writes another through the Gemini API surface (`GOOGLE_GEMINI_BASE_URL`, an API key, SSE streams,
function declarations and function responses).

The pinned CLI (`@google/gemini-cli`, a bundled Node program) is installed from
tests/gemini-cli/package-lock.json with `npm ci` on first use (~100 MB, a few seconds). It needs Node 20
or newer: with an older system Node the test installs the npm registry's `node` package (a Node 22
binary) into tests/gemini-cli/node-runtime and runs the CLI with it. The simulator is scripted by
directives in the task: call read_file on the source file, then — once one tool result is in the
prompt — write_file the target, then answer in prose. Skipped only when npm is missing or the registry
refuses the packages.
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

CLI_DIR = Path(__file__).resolve().parents[1] / "gemini-cli"
GEMINI = CLI_DIR / "node_modules" / "@google" / "gemini-cli" / "bundle" / "gemini.js"
RUNTIME = CLI_DIR / "node-runtime"
NPM = shutil.which("npm")
MIN_NODE = 20  # the pinned CLI's `engines`


def _npm(args: list[str], cwd: Path, what: str) -> None:
    assert NPM is not None
    result = subprocess.run([NPM, *args, "--no-audit", "--no-fund", "--loglevel=error"], cwd=cwd,
                            capture_output=True, text=True, timeout=600, check=False)
    if result.returncode != 0:
        output = result.stdout + result.stderr
        if any(word in output for word in ("ENOTFOUND", "EAI_AGAIN", "ECONNREFUSED", "E403", "E404", "ETIMEDOUT")):
            pytest.skip(f"the npm registry refused {what}: {output[-500:]}")
        raise AssertionError(f"npm {' '.join(args)} in {cwd} failed:\n{output[-3000:]}")


def _node_major(node: str) -> int:
    version = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=30, check=False).stdout
    try:
        return int(version.strip().lstrip("v").split(".")[0])
    except ValueError:
        return 0


def _node() -> str:
    """A Node binary new enough for the CLI: the system's, else the npm `node` package's (Node 22)."""
    system = shutil.which("node")
    if system is not None and _node_major(system) >= MIN_NODE:
        return system
    local = RUNTIME / "node_modules" / "node" / "bin" / "node"
    if not local.is_file():
        RUNTIME.mkdir(exist_ok=True)
        _npm(["install", "--prefix", str(RUNTIME), "node@22"], CLI_DIR, "node@22")
    return str(local)


def _gemini() -> tuple[str, Path]:
    if NPM is None:
        pytest.skip("no `npm` on this machine: the Gemini CLI cannot be installed")
    node = _node()
    if not GEMINI.is_file():
        _npm(["ci"], CLI_DIR, "@google/gemini-cli")
    return node, GEMINI


def _home(home: Path) -> None:
    """The CLI's user settings: API-key auth, no folder-trust prompt, nothing sent anywhere else."""
    settings = {"security": {"auth": {"selectedType": "gemini-api-key"}, "folderTrust": {"enabled": False}},
                "privacy": {"usageStatisticsEnabled": False}, "telemetry": {"enabled": False},
                "general": {"disableAutoUpdate": True, "disableUpdateNag": True}}
    (home / ".gemini").mkdir(parents=True)
    (home / ".gemini" / "settings.json").write_text(json.dumps(settings))


def test_gemini_cli_reads_one_file_and_writes_another_through_the_gateway(tmp_path: Path) -> None:
    node, gemini = _gemini()
    project, home = tmp_path / "project", tmp_path / "home"
    project.mkdir()
    _home(home)
    source, target = project / "notes.txt", project / "copy.txt"
    source.write_text("the secret word is alpha-7391\n")
    written = "copied: alpha-7391\nline two with <tags> & \"quotes\"\n"
    task = ("Read notes.txt, then write the secret word into copy.txt. "
            f'[sim:tool=read_file args={json.dumps({"file_path": str(source)})}] '
            f'[sim:after1=write_file args={json.dumps({"file_path": str(target), "content": written})}]')
    with running_stack(accounts=2, server={"keepalive_interval": 2.0}) as stack:
        env = {"PATH": f"{Path(node).parent}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}",
               "HOME": str(home), "TERM": "dumb", "NO_COLOR": "1", "CI": "1",
               "GEMINI_API_KEY": API_KEY, "GOOGLE_GEMINI_BASE_URL": stack.base_url,
               "GEMINI_CLI_NO_RELAUNCH": "true", "GEMINI_CLI_TRUST_WORKSPACE": "true"}
        result = subprocess.run([node, str(gemini), "-p", task, "-m", "gemini-2.5-flash", "--output-format", "json",
                                 "--yolo"], cwd=project, env=env, capture_output=True, text=True, timeout=300,
                                stdin=subprocess.DEVNULL, check=False)
        assert result.returncode == 0, f"gemini failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        report: dict[str, Any] = json.loads(result.stdout[result.stdout.index("{"):])
        prompts: list[str] = httpx.get(f"{stack.simulator.base_url}/_sim/prompts", timeout=10).json()
    assert "error" not in report, report
    assert target.read_text() == written
    # The read_file tool's result (the file's text) went back upstream inside a tool result.
    assert any("tool_result" in p and "alpha-7391" in p.split("tool_result", 1)[1] for p in prompts)
    tools = report["stats"]["tools"]["byName"]
    assert tools["read_file"]["success"] == 1 and tools["write_file"]["success"] == 1
    assert "returned" in report["response"]  # the simulator's prose answer after the write_file result
