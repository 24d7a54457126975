"""The Docker files, checked without a Docker engine (there is none here to build them).

Static checks: the base image, the health check, the entry point that serves as uid 10001, and what
`.dockerignore` keeps out of the build context (evaluated with Docker's own rules: `**`, `*`, `!`,
last match wins, a matched folder takes its contents along). The entry point script itself is run
for real, as root, to show that a host config.json with mode 600 does not stop the gateway.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
DOCKERFILES = ["Dockerfile", "Dockerfile.simple"]
APP_UID = 10001


def _instructions(name: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n\s*", " ", (REPO / name).read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            out.append((keyword.upper(), rest.strip()))
    return out


@pytest.mark.parametrize("name", DOCKERFILES)
def test_every_stage_uses_python_3_13_slim(name: str) -> None:
    bases = [args.split()[0] for keyword, args in _instructions(name) if keyword == "FROM"]
    assert bases and all(base == "python:3.13-slim" for base in bases), bases


@pytest.mark.parametrize("name", DOCKERFILES)
def test_the_image_has_a_healthcheck_on_health(name: str) -> None:
    checks = [args for keyword, args in _instructions(name) if keyword == "HEALTHCHECK"]
    assert len(checks) == 1 and "/health" in checks[0], checks


@pytest.mark.parametrize("name", DOCKERFILES)
def test_the_gateway_runs_as_uid_10001_through_the_entrypoint(name: str) -> None:
    instructions = _instructions(name)
    users = [args for keyword, args in instructions if keyword == "USER"]
    assert all(user not in ("root", "0") for user in users), users
    assert any(keyword == "RUN" and f"--uid {APP_UID}" in args for keyword, args in instructions)
    entrypoints = [args for keyword, args in instructions if keyword == "ENTRYPOINT"]
    assert len(entrypoints) == 1, entrypoints
    script = re.findall(r'"([^"]*entrypoint[^"]*)"', entrypoints[0])
    assert script, entrypoints
    copied = [args for keyword, args in instructions if keyword == "COPY" and "docker/entrypoint.sh" in args]
    assert copied or script[0].startswith("/app/docker/"), "the entry point script is not in the image"
    text = (REPO / "docker" / "entrypoint.sh").read_text()
    assert f'app_uid="${{DS2API_UID:-{APP_UID}}}"' in text
    assert text.rstrip().splitlines()[-1].startswith('exec setpriv --reuid="$app_uid"')


@pytest.mark.parametrize("name", DOCKERFILES)
def test_the_image_insists_on_the_native_pow(name: str) -> None:
    assert any(keyword == "RUN" and "native_available()" in args for keyword, args in _instructions(name))


# ------------------------------------------------------------------------------------ .dockerignore


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    out = ""
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out += "(?:.*/)?"
            i += 3
        elif pattern.startswith("**", i):
            out += ".*"
            i += 2
        elif pattern[i] == "*":
            out += "[^/]*"
            i += 1
        elif pattern[i] == "?":
            out += "[^/]"
            i += 1
        elif pattern[i] == "[":
            end = pattern.index("]", i)
            out += pattern[i:end + 1]
            i = end + 1
        else:
            out += re.escape(pattern[i])
            i += 1
    return re.compile(out + "(?:/.*)?")  # a matched folder takes everything under it


def _ignored(path: str, patterns: list[str]) -> bool:
    result = False
    for raw in patterns:
        negate = raw.startswith("!")
        pattern = raw[1:] if negate else raw
        if _pattern_regex(pattern.strip("/")).fullmatch(path):
            result = not negate
    return result


def _dockerignore() -> list[str]:
    lines = (REPO / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


@pytest.mark.parametrize("path", [
    "config.json", "deploy/config.json", "state.db", "state.db-wal", "state.db.corrupt-20260101", ".env",
    ".venv/bin/python", ".git/HEAD", "build/lib/deepseek2api/cli.py", "dist/deepseek2api-0.1.0.whl",
    "src/deepseek2api.egg-info/PKG-INFO", "src/deepseek2api/__pycache__/cli.cpython-313.pyc",
    "src/deepseek2api/deepseek/_pow.abi3.so", "tests/artifacts/run.log", "tests/node/node_modules/openai/index.js",
])
def test_dockerignore_keeps_secrets_state_and_local_folders_out(path: str) -> None:
    assert _ignored(path, _dockerignore()), path


@pytest.mark.parametrize("path", [
    "pyproject.toml", "setup.py", "README.md", "app.py", "config.example.json", "docker/entrypoint.sh",
    "src/deepseek2api/cli.py", "src/deepseek2api/deepseek/_pow.c",
])
def test_dockerignore_keeps_what_the_images_build_from(path: str) -> None:
    assert not _ignored(path, _dockerignore()), path


# ------------------------------------------------------------------------------- the entry point


@pytest.fixture
def open_dir() -> Iterator[Path]:
    """A folder uid 10001 may enter (pytest's tmp_path lives under a root-only folder)."""
    path = Path(tempfile.mkdtemp(prefix="ds2api-entrypoint-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _entrypoint(config: Path, private: Path, *command: str) -> subprocess.CompletedProcess[str]:
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root and setpriv, as in the container")
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "DS2API_CONFIG": str(config),
           "DS2API_PRIVATE_DIR": str(private)}
    return subprocess.run(["/bin/sh", str(REPO / "docker" / "entrypoint.sh"), *command], capture_output=True,
                          text=True, env=env, timeout=30, check=False)


def test_a_mode_600_host_config_is_served_from_a_private_copy_as_uid_10001(open_dir: Path) -> None:
    config = open_dir / "config.json"
    config.write_text('{"keys": ["k"]}')
    config.chmod(0o600)
    os.chown(config, 4242, 4242)  # a host user's file, as a bind mount shows it
    result = _entrypoint(config, open_dir / "private", "sh", "-c", 'id -u; echo "$DS2API_CONFIG"; cat "$DS2API_CONFIG"')
    assert result.returncode == 0, result.stderr
    uid, path, content = result.stdout.splitlines()
    assert uid == str(APP_UID)
    assert path == str(open_dir / "private" / "config.json") and content == '{"keys": ["k"]}'
    copy = Path(path).stat()
    assert (copy.st_uid, copy.st_mode & 0o777) == (APP_UID, 0o600)
    assert (open_dir / "private").stat().st_mode & 0o777 == 0o700
    assert "private copy" in result.stderr


def test_a_config_the_gateway_user_can_read_is_used_in_place(open_dir: Path) -> None:
    config = open_dir / "config.json"
    config.write_text("{}")
    os.chown(config, APP_UID, APP_UID)
    config.chmod(0o600)
    result = _entrypoint(config, open_dir / "private", "sh", "-c", 'id -u; echo "$DS2API_CONFIG"')
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [str(APP_UID), str(config)]
    assert not (open_dir / "private").exists()
