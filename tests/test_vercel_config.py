"""vercel.json in the form Vercel documents today: `functions` (with maxDuration) + `rewrites`, no `builds`."""

from __future__ import annotations

import ast
import json
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _vercel() -> dict[str, object]:
    return json.loads((REPO / "vercel.json").read_text())  # type: ignore[no-any-return]


def test_vercel_json_uses_functions_and_rewrites_not_the_legacy_builds() -> None:
    config = _vercel()
    assert "builds" not in config and "routes" not in config  # `functions` cannot be combined with `builds`
    assert config["framework"] is None  # no FastAPI preset: it would serve the root app.py instead
    functions = config["functions"]
    assert isinstance(functions, dict) and list(functions) == ["api/index.py"]
    assert functions["api/index.py"] == {"maxDuration": 300}
    assert config["rewrites"] == [{"source": "/(.*)", "destination": "/api/index"}]


def test_the_function_file_exists_and_exposes_an_asgi_app() -> None:
    tree = ast.parse((REPO / "api" / "index.py").read_text())
    assigned = {target.id for node in tree.body if isinstance(node, ast.Assign)
                for target in ast.walk(node) if isinstance(target, ast.Name)}
    assert "app" in assigned


def test_readme_says_the_pow_runs_on_numpy_on_vercel_and_the_duration_asked_for() -> None:
    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("**Vercel:**"):readme.index("**nginx**")]
    assert "requirements.txt" in section and "numpy" in section
    assert "maxDuration" in section and "300 s" in section
    assert "builds" not in section
