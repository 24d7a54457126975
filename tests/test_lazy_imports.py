"""A configuration loads only what it uses (idle RSS): the app built from a minimal config has not
imported the Redis client (only `cluster.redis_url` needs it), jsonschema (only a request's schema does) or
the tokenizer (the first turn starts loading it in the background)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

PROBE = """
import json, sys
from deepseek2api.settings import Settings
from deepseek2api.server import create_app
from deepseek2api.chat import usage
create_app(Settings.model_validate(json.loads(sys.argv[1])))
loaded = {name: name in sys.modules for name in ("redis", "jsonschema", "tokenizers")}
loaded["tokenizer"] = usage._loaded
from deepseek2api.chat.tools.schemas import schema_problem
schema_problem({"type": "object"})
loaded["jsonschema after a schema"] = "jsonschema" in sys.modules
usage.load_soon()
usage._loader.join(60)
loaded["tokenizer after load_soon"] = usage._loaded
print(json.dumps(loaded))
"""


def _probe(config: dict[str, object]) -> dict[str, bool]:
    src = str(Path(__file__).resolve().parent.parent / "src")
    env = dict(os.environ, PYTHONPATH=src + os.pathsep + os.environ.get("PYTHONPATH", ""))
    out = subprocess.run([sys.executable, "-c", PROBE, json.dumps(config)], capture_output=True, text=True,
                         env=env, timeout=120, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])  # type: ignore[no-any-return]


def test_a_minimal_config_loads_no_redis_jsonschema_or_tokenizer() -> None:
    loaded = _probe({"keys": ["sk-test-lazy-0123456789"], "state": {"backend": "memory"}})
    assert loaded == {"redis": False, "jsonschema": False, "tokenizers": False, "tokenizer": False,
                      "jsonschema after a schema": True, "tokenizer after load_soon": True}


def test_the_shared_pool_loads_redis() -> None:
    loaded = _probe({"keys": ["sk-test-lazy-0123456789"], "state": {"backend": "memory"},
                     "cluster": {"redis_url": "redis://127.0.0.1:9/0"}})
    assert loaded["redis"] is True
