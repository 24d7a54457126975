"""A faithful simulated chat.deepseek.com (docs/architecture.md) for tests, the demo and the benchmarks.

    from deepseek2api.simulator import SimulatorConfig, SimulatorServer, SimUser, reply_for

    config = SimulatorConfig(users=[SimUser(email="me@example.org", password="pw")], difficulty=1000)
    with SimulatorServer(config) as sim:          # uvicorn on 127.0.0.1, a free port
        ...point DeepSeek2API (upstream.base_url) or any client at sim.base_url...
        assert sim.state.stats()["violations"] == 0

- `create_app(config)` is the Starlette app (state at `app.state.sim`); `python -m deepseek2api.simulator`
  serves it from the command line.
- Answers are synthetic and deterministic: `reply_for(prompt, thinking=…, search=…)` is exactly what the
  simulator streams (content keeps raw `[citation:N]` markers). `accumulated_token_usage` is
  ceil(generated characters / 2).
- Prompt directives steer it from anywhere, even through the gateway: `[sim:fault=NAME]`, `[sim:words=N]`,
  `[sim:stall=S]`, `[sim:reply=TEXT]`, `[sim:format=C|C'|B|A]`, `[sim:rounds=N]` (replies.py).
- Per request: headers `x-sim-fault: NAME[,NAME]` and `x-sim-format: C|C'|B|A`.
- Control API (no auth): `GET /_sim/stats`, `GET|POST /_sim/faults`, `GET|POST /_sim/config`,
  `POST /_sim/reset` (control.py). Faults and their wire shapes: faults.py.
- Files (files.py): upload_file (multipart, own PoW), fetch_files PENDING → PARSING → SUCCESS over polls,
  fork_file_task, `ref_file_ids` checks; replies echo the `MARKER…` words of attached files.
- PoW: real DeepSeekHashV1, single use, bound to the target path, expiring; chat/continue needs a fresh
  challenge minted for `/api/v0/chat/continue`.
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
