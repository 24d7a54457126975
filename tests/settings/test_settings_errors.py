"""Every invalid config fails with ONE line naming the field and what was expected."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from deepseek2api.settings import ConfigError, Settings, load_settings

ACCOUNT = {"email": "a@example.com", "password": "pw"}

# (config, exact message)
CASES: list[tuple[dict[str, Any], str]] = [
    (
        {"proxy_pool": ["", "http://h:1", "socks5://h:2", "ftp://h:21"]},
        'proxy_pool[3]: unknown scheme \'ftp\' (expected http, https, socks4, socks5, socks5h or "" for direct)',
    ),
    ({"proxy_pool": ["http://u:secret@h"]}, "proxy_pool[0]: 'http://***@h' has no port (expected http://host:port)"),
    ({"proxy_pool": ["socks5://:1080"]}, "proxy_pool[0]: 'socks5://:1080' has no host (expected socks5://host:port)"),
    ({"proxy_pool": ["h:8080"]}, "proxy_pool[0]: 'h:8080' has no scheme (expected scheme://host:port with scheme "
     'http, https, socks4, socks5, socks5h or "" for direct)'),
    ({"proxy_pool": [""] * 101}, "proxy_pool: at most 100 entries allowed (got 101)"),
    ({"proxy_pool": "http://h:1"}, "proxy_pool: expected a list (got 'http://h:1')"),
    ({"accounts": [ACCOUNT, {"email": "b@example.com"}]},
     'accounts[1]: needs "password" (or a "token" to use without login)'),
    ({"accounts": [{"password": "pw"}]}, 'accounts[0]: needs "email" or "mobile"'),
    ({"accounts": [{"email": "", "mobile": "", "password": "pw"}]}, 'accounts[0]: needs "email" or "mobile"'),
    ({"accounts": [ACCOUNT, ACCOUNT]},
     "accounts[1]: duplicate account id 'a@example.com' (give one of them a unique \"name\")"),
    ({"accounts": [{**ACCOUNT, "proxy": "gopher://h:1"}]},
     'accounts[0].proxy: unknown scheme \'gopher\' (expected http, https, socks4, socks5, socks5h or "" for direct)'),
    ({"accounts": [{**ACCOUNT, "enabled": "sometimes"}]}, "accounts[0].enabled: expected true or false (got 'sometimes')"),
    ({"accounts": [{"email": "a", "password": 1234}]}, "accounts[0].password: expected a string"),
    ({"accounts": {"email": "a"}}, "accounts: expected a list (got an object)"),
    ({"accounts": ["a@example.com"]}, "accounts[0]: expected an object (got 'a@example.com')"),
    ({"keys": "k1"}, 'keys: expected a list of keys (strings or {"name", "key"} objects)'),
    ({"keys": ["ok", 5]}, 'keys[1]: expected a string or a {"name", "key"} object'),
    ({"keys": [{"name": "alice"}]}, "keys[0].key: required"),
    ({"keys": [""]}, "keys[0].key: expected a non-empty string"),
    ({"server": {"port": -1}}, "server.port: expected a number >= 0 (got -1)"),
    ({"server": {"port": 70000}}, "server.port: expected a number <= 65535 (got 70000)"),
    ({"server": {"port": "http"}}, "server.port: expected an integer (got 'http')"),
    ({"server": {"log_level": "loud"}},
     "server.log_level: expected 'critical', 'error', 'warning', 'info', 'debug' or 'trace' (got 'loud')"),
    ({"server": []}, "server: expected an object (got a list)"),
    ({"pool": {"queue_timeout": -3}}, "pool.queue_timeout: expected a number >= 0 (got -3)"),
    ({"pool": {"per_account_concurrency": 0}}, "pool.per_account_concurrency: expected a number >= 1 (got 0)"),
    ({"pool": {"cooldown_busy": "soon"}}, "pool.cooldown_busy: expected a number (got 'soon')"),
    ({"proxy_strategy": "round_robin"}, "proxy_strategy: expected 'least_used' or 'sticky' (got 'round_robin')"),
    ({"proxy_pool_enabled": "perhaps"}, "proxy_pool_enabled: expected true or false (got 'perhaps')"),
    ({"upstream": {"base_url": "chat.deepseek.com"}},
     "upstream.base_url: expected an http(s) URL such as https://chat.deepseek.com (got 'chat.deepseek.com')"),
    ({"upstream": {"idle_timeout": 0}}, "upstream.idle_timeout: expected a number > 0 (got 0)"),
    ({"upstream": {"headers": {"x": 1}}}, "upstream.headers.x: expected a string (got 1)"),
    ({"models": {"my-alias": {"thinking": "maybe"}}}, "models.my-alias.thinking: expected true or false (got 'maybe')"),
    ({"output": {"citations": "footnote"}}, "output.citations: expected 'link' or 'strip' (got 'footnote')"),
    ({"state": {"backend": "postgres"}}, "state.backend: expected 'sqlite' or 'memory' (got 'postgres')"),
    ({"proxy_quarantine": {"failures": 0}}, "proxy_quarantine.failures: expected a number >= 1 (got 0)"),
    ({"proxy_strategy": "x", "server": {"port": -1}},
     "proxy_strategy: expected 'least_used' or 'sticky' (got 'x'); and 1 more problem"),
]


@pytest.mark.parametrize(("config", "message"), CASES, ids=[m.split(":")[0] for _, m in CASES])
def test_invalid_config_message(config: dict[str, Any], message: str, tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    with pytest.raises(ConfigError) as info:
        load_settings(path, env={})
    text = str(info.value)
    assert "\n" not in text
    assert text == message
    assert info.value.field == message.split(": ", 1)[0]


def test_passwords_never_echoed() -> None:
    with pytest.raises(ConfigError) as info:
        Settings.from_dict({"accounts": [{"email": "a", "password": ["hunter2"]}]})
    assert "hunter2" not in str(info.value)
    with pytest.raises(ConfigError) as info:
        Settings.from_dict({"keys": [{"name": "a", "key": ["sk-secret"]}]})
    assert "sk-secret" not in str(info.value)


@pytest.mark.parametrize("section, field", [("anthropic", "signature_key"), ("cluster", "redis_url")])
def test_a_secret_setting_of_the_wrong_type_is_not_echoed(section: str, field: str) -> None:
    with pytest.raises(ConfigError) as info:
        Settings.from_dict({section: {field: 987654321}})
    assert str(info.value).startswith(f"{section}.{field}: ")
    assert "987654321" not in str(info.value)


def test_bad_json_names_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text('{\n  "keys": ["a"]\n  "accounts": []\n}\n')
    with pytest.raises(ConfigError) as info:
        load_settings(path, env={})
    assert str(info.value) == f"{path}: invalid JSON at line 3, column 3 (Expecting ',' delimiter)"


def test_bad_inline_json(tmp_path: Path) -> None:
    (tmp_path / "c.json").write_text("{}")
    with pytest.raises(ConfigError) as info:
        load_settings(None, env={"DS2API_CONFIG": str(tmp_path / "c.json"), "DS2API_CONFIG_JSON": "{oops"})
    assert str(info.value).startswith("DS2API_CONFIG_JSON: invalid JSON at line 1, column 2")


def test_top_level_must_be_an_object(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text("[1, 2]")
    with pytest.raises(ConfigError) as info:
        load_settings(path, env={})
    assert str(info.value) == f"{path}: expected a JSON object at the top level (got a list)"


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(tmp_path, env={})  # a directory cannot be read as a file
    assert str(info.value) == f"{tmp_path}: is a directory, expected a JSON config file"
    if os.name == "posix" and os.geteuid() != 0:
        path = tmp_path / "config.json"
        path.write_text("{}")
        path.chmod(0)
        with pytest.raises(ConfigError) as info:
            load_settings(path, env={})
        assert str(info.value) == f"{path}: cannot read the config file (Permission denied)"


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_bytes(b'{"keys": ["\xff"]}')
    with pytest.raises(ConfigError) as info:
        load_settings(path, env={})
    assert str(info.value) == f"{path}: not UTF-8 text (byte 11)"


def test_env_errors_name_the_variable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(None, env={"DS2API_PORT": "eighty", "DS2API_CONFIG_JSON": "{}"})
    assert str(info.value) == "server.port (from DS2API_PORT): expected an integer (got 'eighty')"
    with pytest.raises(ConfigError) as info:
        load_settings(None, env={"DS2API_TOKEN_PASSTHROUGH": "maybe", "DS2API_CONFIG_JSON": "{}"})
    assert str(info.value) == "DS2API_TOKEN_PASSTHROUGH: expected true or false (got 'maybe')"
    with pytest.raises(ConfigError) as info:
        load_settings(None, env={"DS2API_STATE_BACKEND": "redis", "DS2API_CONFIG_JSON": "{}"})
    assert str(info.value) == "state.backend (from DS2API_STATE_BACKEND): expected 'sqlite' or 'memory' (got 'redis')"
