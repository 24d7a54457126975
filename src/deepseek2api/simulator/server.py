"""`SimulatorServer`: the simulator on a loopback port in a background thread (tests, demo, benchmarks)."""

from __future__ import annotations

from typing import Any

from ..background import BackgroundServer
from .app import create_app
from .config import SimulatorConfig
from .state import SimState


class SimulatorServer(BackgroundServer):
    """`with SimulatorServer(config) as sim: sim.base_url, sim.state.stats()`.

    `state` lives on the server's loop; read it freely, and change it through `call()` or the
    `/_sim/` control API when a stream may be running.
    """

    def __init__(self, config: SimulatorConfig | None = None, *, host: str = "127.0.0.1", port: int = 0,
                 log_level: str = "warning", **uvicorn_options: Any) -> None:
        self.app = create_app(config)
        self.state: SimState = self.app.state.sim
        uvicorn_options.setdefault("access_log", False)
        super().__init__(self.app, host=host, port=port, log_level=log_level, **uvicorn_options)

    @property
    def sim_config(self) -> SimulatorConfig:
        """The live simulator config (`self.config` is uvicorn's)."""
        return self.state.config
