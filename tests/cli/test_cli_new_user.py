"""What a new user hit in the README walk: a busy port, config that parses but cannot work,
the demo banner's Python example."""

from __future__ import annotations

import json
import socket
from pathlib import Path

from deepseek2api.demo import banner
from test_cli_first_run import run_cli

CONFIG: dict[str, object] = {"keys": [{"name": "k", "key": "sk-new-user"}],
                             "accounts": [{"email": "a@b.test", "password": "pw"}],
                             "state": {"backend": "memory"}, "upstream": {"base_url": "http://127.0.0.1:9"}}


def _config(tmp_path: Path, **extra: object) -> str:
    path = tmp_path / "config.json"
    path.write_text(json.dumps({**CONFIG, **extra}))
    return str(path)


def test_a_busy_port_is_said_in_one_line_with_exit_code_3_before_anything_starts(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        result = run_cli("serve", "--config", _config(tmp_path), "--host", "127.0.0.1", "--port", str(port),
                         timeout=60)
        demo = run_cli("demo", "--host", "127.0.0.1", "--port", str(port), timeout=60)
    for run in (result, demo):
        assert run.returncode == 3, run.stderr
        lines = [line for line in run.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and f"127.0.0.1:{port}" in lines[0] and "in use" in lines[0]
        assert "gateway ready" not in run.stdout + run.stderr and "DeepSeek2API demo" not in run.stdout
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    assert "3 when the listen address is in use" in readme


def test_a_model_map_to_no_model_stops_the_start_naming_the_field(tmp_path: Path) -> None:
    path = _config(tmp_path, anthropic={"model_map": {"opus": "deepseek-nonexistent"}})
    result = run_cli("serve", "--config", path, "--port", "0", timeout=60)
    assert result.returncode == 2
    assert "anthropic.model_map.opus" in result.stderr and "deepseek-nonexistent" in result.stderr


def test_an_unknown_model_type_is_named_at_start(tmp_path: Path) -> None:
    from deepseek2api.chat.turn import model_config_problems
    from deepseek2api.settings import Settings

    settings = Settings.from_dict({**CONFIG, "models": {"my-model": {"model_type": "turbo"}}})
    import logging

    records: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: records.append(record.getMessage())  # type: ignore[method-assign]
    logging.getLogger("deepseek2api.chat.turn").addHandler(handler)
    try:
        assert model_config_problems(settings) == []
    finally:
        logging.getLogger("deepseek2api.chat.turn").removeHandler(handler)
    assert any("models.my-model.model_type" in line and "turbo" in line for line in records)


def test_the_demo_banner_says_what_its_python_example_needs() -> None:
    text = banner("http://127.0.0.1:5001", "http://127.0.0.1:9", 3)
    assert text.index("pip install openai") < text.index("from openai import OpenAI")
