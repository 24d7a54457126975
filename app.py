"""Seed-compatible entry point: `python app.py` and `uvicorn app:app --host 0.0.0.0 --port 5001`.

Serves ./config.json (or $DS2API_CONFIG / $DS2API_CONFIG_JSON). Without any config it serves the demo
(the gateway against the built-in simulator), so a fresh checkout answers right away.

The installed package (`pip install .`, which compiles the fast PoW extension) is used when there is
one; this checkout's ./src only when the package is not installed at all.
"""

from __future__ import annotations

import importlib.util
import os
import sys

if importlib.util.find_spec("deepseek2api") is None:
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "src"))

from deepseek2api.entry import app_from_environment

app, settings = app_from_environment()

if __name__ == "__main__":
    from deepseek2api.entry import run

    run(app, settings)
