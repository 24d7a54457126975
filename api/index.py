"""Vercel entry point: the gateway as one serverless ASGI function.

Configure it with the DS2API_CONFIG_JSON environment variable (the whole config.json as one JSON
string). State is kept in memory there (no writable disk survives between invocations), so learned
tokens are re-learned after a cold start. See the README's Vercel section for the timeout caveat and
the PoW backend there (numpy: Vercel installs requirements.txt and compiles nothing).
"""

from __future__ import annotations

import importlib.util
import os
import sys

if importlib.util.find_spec("deepseek2api") is None:  # the usual case there: the bundle carries ./src
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "src"))
os.environ.setdefault("DS2API_STATE_BACKEND", "memory")

from deepseek2api.entry import app_from_environment

app, _settings = app_from_environment(demo_fallback=False)
