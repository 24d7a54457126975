"""`python app.py` / `uvicorn app:app` at start: which package runs, which PoW backend, which address.

Each test copies the real, unmodified app.py into a temporary folder laid out like a checkout
(`app.py` beside `src/`), runs it in a subprocess with no config (so it serves the demo) and reads
what it printed once it answered /health.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx

from deepseek2api import __version__
from deepseek2api.background import free_port
from deepseek2api.deepseek import pow as pow_module

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "src" / "deepseek2api"


def _copy_package_without_native(destination: Path) -> Path:
    """A copy of the package with no compiled PoW, as a clone or a compiler-less install has it."""
    target = destination / "deepseek2api"
    shutil.copytree(PACKAGE, target, ignore=shutil.ignore_patterns("*.so", "*.pyd", "__pycache__"))
    return target


def _checkout(tmp_path: Path) -> Path:
    """`app.py` beside a `src/` without the compiled PoW (a checkout run without installing)."""
    checkout = tmp_path / "checkout"
    (checkout / "src").mkdir(parents=True)
    shutil.copy(REPO / "app.py", checkout / "app.py")
    _copy_package_without_native(checkout / "src")
    return checkout


def _serve_and_collect(args: list[str], cwd: Path, python_path: Path, port: int, **env_changes: str) -> str:
    """Start, wait for /health (bounded), stop; return everything the process printed."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DS2API_", "UVICORN_"))}
    env.update(PYTHONPATH=str(python_path), PYTHONDONTWRITEBYTECODE="1", **env_changes)
    process = subprocess.Popen([sys.executable, *args], cwd=cwd, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline and process.poll() is None:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        else:
            raise AssertionError(f"no healthy server on port {port} (exit code {process.poll()})")
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=30)
    return output


def test_app_py_uses_the_installed_package_over_the_checkouts_src(tmp_path: Path) -> None:
    checkout = _checkout(tmp_path)
    port = free_port()
    output = _serve_and_collect(["app.py"], checkout, REPO / "src", port, DS2API_PORT=str(port))
    assert f"deepseek2api {__version__} from {PACKAGE}" in output, output
    assert str(checkout / "src") not in output, output
    expected = "proof-of-work backend: native" if pow_module.native_available() else "proof-of-work backend: numpy"
    assert expected in output, output


def test_a_package_without_the_native_pow_warns_how_to_get_it(tmp_path: Path) -> None:
    checkout = _checkout(tmp_path)
    installed = tmp_path / "site"
    _copy_package_without_native(installed)
    port = free_port()
    output = _serve_and_collect(["app.py"], checkout, installed, port, DS2API_PORT=str(port))
    assert f"from {installed / 'deepseek2api'}" in output, output
    warning = next(line for line in output.splitlines() if "proof-of-work backend" in line)
    assert "WARNING" in warning and "numpy" in warning, warning
    assert "C compiler" in warning and "pip install ." in warning, warning


def test_uvicorn_with_a_port_prints_that_port_and_its_own_line(tmp_path: Path) -> None:
    checkout = _checkout(tmp_path)
    port = free_port()
    output = _serve_and_collect(["-m", "uvicorn", "app:app", "--port", str(port)], checkout, REPO / "src", port)
    assert f"Uvicorn running on http://127.0.0.1:{port}" in output, output
    assert f"curl http://127.0.0.1:{port}/v1/chat/completions" in output, output
    assert f"base_url='http://127.0.0.1:{port}/v1'" in output, output
    assert ":5001" not in output, output
    assert output.count("Uvicorn running on") == 1, output  # the demo's simulator does not announce itself
