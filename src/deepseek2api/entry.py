"""Build the app from the environment, for `app.py`, `uvicorn app:app` and serverless entry points."""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

from .logs import configure_logging
from .settings import ConfigError, Settings, load_settings

log = logging.getLogger("deepseek2api")


def has_config() -> bool:
    return bool(os.environ.get("DS2API_CONFIG") or os.environ.get("DS2API_CONFIG_JSON")
                or os.path.exists("config.json"))


def app_from_environment(*, demo_fallback: bool = True, **overrides: Any) -> tuple[Any, Settings]:
    """The gateway for the configured settings; the demo when nothing is configured.

    A broken config ends the process with one line naming the bad field (exit code 2).
    """
    from .server import create_app

    if not has_config() and demo_fallback:
        from .demo import build_demo_app

        configure_logging("info")
        port = int(os.environ.get("DS2API_PORT", "5001"))
        app, settings, banner = build_demo_app(host=os.environ.get("DS2API_HOST", "0.0.0.0"), port=port)
        log.warning("no config.json found: serving the DEMO against the built-in simulator")
        print(banner, file=sys.stderr, flush=True)
        return app, settings
    try:
        settings = load_settings(None)
    except ConfigError as error:
        print(f"deepseek2api: invalid configuration: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    if overrides:
        settings = settings.model_copy(update=overrides)
    configure_logging(settings.server.log_level)
    return create_app(settings), settings


def run(app: Any, settings: Settings) -> None:
    """Serve with uvicorn on `server.host:server.port` (0.0.0.0:5001 like the seed)."""
    import uvicorn

    from .cli import run_server, uvicorn_limits

    run_server(uvicorn.Server(uvicorn.Config(app, host=settings.server.host, port=settings.server.port,
                                             log_config=None, access_log=False,
                                             timeout_graceful_shutdown=settings.server.shutdown_grace,
                                             **uvicorn_limits(settings.server))))
