"""Vercel entry point: the gateway as one serverless ASGI function.

Configure it with the DS2API_CONFIG_JSON environment variable (the whole config.json as one JSON
string). State is kept in memory there (no writable disk survives between invocations), so learned
tokens are re-learned after a cold start. See the README's Vercel section for the timeout caveat.
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "src"))
os.environ.setdefault("DS2API_STATE_BACKEND", "memory")

from deepseek2api.entry import app_from_environment  # noqa: E402

app, _settings = app_from_environment(demo_fallback=False)
