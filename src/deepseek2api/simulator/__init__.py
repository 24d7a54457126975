"""A faithful simulated chat.deepseek.com (DESIGN.md §5) for tests, the demo and the benchmarks.

`create_app(config)` is the ASGI app; `SimulatorServer(config)` runs it on a loopback port;
`reply_for(prompt, thinking=…, search=…)` is the exact text it will answer.
"""

from .app import create_app
from .config import FAULT_NAMES, STREAM_FORMATS, SimulatorConfig, SimUser, demo_config
from .replies import Reply, reply_for
from .server import SimulatorServer
from .state import SimState

__all__ = [
    "FAULT_NAMES", "STREAM_FORMATS", "Reply", "SimState", "SimUser", "SimulatorConfig", "SimulatorServer",
    "create_app", "demo_config", "reply_for",
]
