"""CI runs what the README tells a newcomer to run: the same test command, on a machine with every tool
the tests would otherwise skip without."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CI = (ROOT / ".ci" / "run").read_text()
README = (ROOT / "README.md").read_text()


def test_ci_ends_with_the_readme_quick_start_test_command() -> None:
    commands = re.findall(r"python3 -m venv \.venv && \. \.venv/bin/activate && (.+pytest.*)\n", README)
    assert commands, "the README's quick start lost its test command"
    assert CI.rstrip().splitlines()[-1] == commands[0]


def test_ci_installs_every_tool_the_tests_skip_without() -> None:
    for tool, package in (("chromium", "chromium"), ("redis-server", "redis-server"), ("npm", "nodejs npm")):
        assert f"command -v {tool}" in CI and f"apt-get install -y {package}" in CI, tool
