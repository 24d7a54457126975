"""Build the app from the environment, for `app.py`, `uvicorn app:app` and serverless entry points."""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

from .logs import configure_logging
from .settings import ConfigError, Settings, load_settings

log = logging.getLogger("deepseek2api")


def report_start() -> None:
    """Log which package runs and its PoW backend: a warning when it is not the native one.

    A checkout's `./src` ahead of the installed package, or an install without a C compiler,
    silently means the numpy search (~20x slower); this makes it visible in the first lines.
    """
    from . import __file__ as package_file
    from . import __version__
    from .deepseek.pow import backend_notice

    native, notice = backend_notice()
    log.info("deepseek2api %s from %s", __version__, os.path.dirname(os.path.abspath(package_file)))
    log.log(logging.INFO if native else logging.WARNING, "%s", notice)


def uvicorn_cli_address(argv: list[str] | None = None) -> tuple[str, int] | None:
    """(host, port) the `uvicorn` command was given, when it is what started this process.

    `uvicorn app:app --port 5099` imports the app before it binds, and tells the app nothing: the
    demo banner reads the same options (and UVICORN_* variables) uvicorn itself read.
    """
    argv = list(sys.argv if argv is None else argv)
    if not argv or not (os.path.basename(argv[0]) == "uvicorn"
                        or argv[0].endswith(os.path.join("uvicorn", "__main__.py"))):
        return None
    try:
        from uvicorn.main import main as uvicorn_command

        params = uvicorn_command.make_context("uvicorn", argv[1:]).params
    except (Exception, SystemExit):  # noqa: BLE001 - uvicorn parsed these already; a surprise means "unknown"
        return None
    if params.get("uds") or params.get("fd") is not None:
        return None
    return str(params["host"]), int(params["port"])


def has_config() -> bool:
    return bool(os.environ.get("DS2API_CONFIG") or os.environ.get("DS2API_CONFIG_JSON")
                or os.path.exists("config.json"))


def app_from_environment(*, demo_fallback: bool = True) -> tuple[Any, Settings]:
    """The gateway for the configured settings; the demo when nothing is configured.

    A broken config ends the process with one line naming the bad field (exit code 2).
    """
    from .server import create_app

    if not has_config() and demo_fallback:
        from .demo import build_demo_app

        configure_logging("info")
        report_start()
        host, port = uvicorn_cli_address() or (os.environ.get("DS2API_HOST", "0.0.0.0"),
                                               int(os.environ.get("DS2API_PORT", "5001")))
        app, settings, banner = build_demo_app(host=host, port=port)
        log.warning("no config.json found: serving the DEMO against the built-in simulator")
        print(banner, file=sys.stderr, flush=True)
        return app, settings
    try:
        settings = load_settings(None)
    except ConfigError as error:
        print(f"deepseek2api: invalid configuration: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    configure_logging(settings.server.log_level)
    report_start()
    return create_app(settings), settings


def run(app: Any, settings: Settings) -> None:
    """Serve with uvicorn on `server.host:server.port` (0.0.0.0:5001 like the seed), configured as `serve` does."""
    import uvicorn

    from .serve import run_server, uvicorn_config

    run_server(uvicorn.Server(uvicorn_config(app, settings.server.host, settings.server.port, settings)))
