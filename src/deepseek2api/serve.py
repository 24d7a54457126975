"""How the gateway runs under uvicorn, the same for `serve`, `demo` and `python app.py`: the uvicorn
config (head limits, graceful shutdown, no access log of uvicorn's own) and a run that exits 0 after
a graceful SIGTERM. Below both the CLI (cli.py) and the environment entry point (entry.py).
"""

from __future__ import annotations

import signal
import threading
from typing import Any


def uvicorn_limits(server: Any) -> dict[str, Any]:
    """uvicorn options that bound the request head (http_limits.py): size, count, read time."""
    options: dict[str, Any] = {"h11_max_incomplete_event_size": server.max_header_bytes}
    try:
        from .http_limits import protocol_for
    except ImportError:  # no httptools: uvicorn's h11 parser, which enforces the size limit only
        return options
    options["http"] = protocol_for(server.max_header_bytes, server.max_headers, server.header_timeout)
    return options


def event_loop() -> str:
    """uvicorn's `loop`: uvloop (in `uvicorn[standard]`, a dependency), plain asyncio only when it is missing.
    Every streamed token costs an event-loop wake-up, which uvloop makes cheaper (bench/README.md)."""
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return "asyncio"
    return "uvloop"


def uvicorn_config(app: Any, host: str, port: int, settings: Any, *, log_level: str | None = None) -> Any:
    """The uvicorn configuration every way of serving uses (`serve`, `demo`, `python app.py`): uvloop and the
    httptools parser (http_limits.py), h11 and asyncio only as fallbacks when those are not installed.

    `log_level` (a `--log-level` option) overrides the config's, as it does for the gateway's own logs:
    uvicorn sets its loggers to this level itself."""
    import uvicorn

    level = log_level or settings.server.log_level
    return uvicorn.Config(app, host=host, port=port, log_level=level if level != "trace" else "debug",
                          access_log=False, timeout_graceful_shutdown=settings.server.shutdown_grace,
                          log_config=None, proxy_headers=True, loop=event_loop(), **uvicorn_limits(settings.server))


def run_server(server: Any, sockets: list[Any] | None = None) -> None:
    """Run uvicorn until it stops; a SIGTERM that ended in a graceful shutdown is a normal exit (0).

    uvicorn re-raises the signal that stopped it once shutdown is complete, so with the default
    handler the process would die "killed by SIGTERM" (status 143) after a clean shutdown, which
    systemd, Docker and Kubernetes report as a failure. This handler also covers a SIGTERM that
    arrives before uvicorn has installed its own.
    """
    from .tuning import tune_for_serving

    tune_for_serving()  # the app is built: freeze it out of the GC, fewer malloc arenas (tuning.py)
    if threading.current_thread() is not threading.main_thread():
        server.run(sockets=sockets)
        return

    def stop(signum: int, frame: Any) -> None:
        server.should_exit = True

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        server.run(sockets=sockets)
    finally:
        signal.signal(signal.SIGTERM, previous)


__all__ = ["event_loop", "run_server", "uvicorn_config", "uvicorn_limits"]
