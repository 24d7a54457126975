"""Config loading: the seed's config.json unchanged, the source order, env overrides, profile."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import pytest
from pydantic import ValidationError

from deepseek2api.deepseek.profile import DEFAULT_HEADERS
from deepseek2api.pool.proxies import ProxyPool
from deepseek2api.settings import ApiKey, ConfigError, Settings, check_permissions, load_settings

SEED_CONFIG = {
    "keys": ["key1", "key2"],
    "accounts": [
        {"email": "a@example.com", "password": "pw-a", "token": ""},
        {"mobile": "13800000000", "password": "pw-b", "token": ""},
    ],
    "proxy_pool_enabled": True,
    "proxy_pool": ["", "http://h:8080", "https://u:p@h:8443", "socks5://h:1080", "socks4://h:1080"],
    "claude_model_mapping": {"fast": "deepseek-chat", "slow": "deepseek-reasoner"},
}


def write(tmp_path: Path, data: object, name: str = "config.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(data) if not isinstance(data, str) else data, encoding="utf-8")
    return path


def test_seed_config_loads_unchanged(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = write(tmp_path, SEED_CONFIG)
    before = path.read_bytes()
    with caplog.at_level(logging.WARNING, logger="deepseek2api.config"):
        settings = load_settings(path, env={})
    assert settings.keys == (ApiKey(name="key1", key="key1"), ApiKey(name="key2", key="key2"))
    assert [a.id for a in settings.accounts] == ["a@example.com", "13800000000"]
    assert settings.accounts[0].password == "pw-a" and settings.accounts[0].token is None
    assert settings.accounts[1].mobile == "13800000000"
    assert settings.proxy_pool_enabled is True
    assert settings.proxy_pool == tuple(SEED_CONFIG["proxy_pool"])
    assert settings.server.host == "0.0.0.0" and settings.server.port == 5001
    assert settings.token_passthrough is False
    assert settings.config_path == str(path.resolve())
    assert "claude_model_mapping" in caplog.text  # ignored, with a warning
    assert path.read_bytes() == before  # never rewritten


def test_defaults_without_any_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings(env={})
    assert settings.accounts == () and settings.keys == ()
    assert settings.config_path is None
    assert settings.pool.per_account_concurrency == 1
    assert settings.state.backend == "sqlite" and settings.state.path == "state.db"


def test_cwd_config_json_is_used_when_present(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path, {"keys": ["from-cwd"]})
    monkeypatch.chdir(tmp_path)
    assert load_settings(env={}).keys[0].key == "from-cwd"


def test_ds2api_config_env_names_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, {"keys": ["from-env-path"]}, "other.json")
    assert load_settings(env={"DS2API_CONFIG": str(path)}).keys[0].key == "from-env-path"
    # an explicit argument wins over the env var
    arg = write(tmp_path, {"keys": ["from-arg"]}, "arg.json")
    assert load_settings(arg, env={"DS2API_CONFIG": str(path)}).keys[0].key == "from-arg"


def test_key_objects_and_default_names() -> None:
    settings = Settings.from_dict({"keys": ["k1", {"name": "alice", "key": "k2"}, {"key": "k3"}]})
    assert [(k.name, k.key) for k in settings.keys] == [("key1", "k1"), ("alice", "k2"), ("key3", "k3")]
    assert "k2" not in repr(settings.keys)  # keys stay out of reprs (and so out of logs)


def test_account_ids_and_token_only_account() -> None:
    settings = Settings.from_dict(
        {
            "accounts": [
                {"email": "a@example.com", "password": "x", "name": "alpha"},
                {"mobile": 13900000000, "area_code": 86, "token": "tok"},
                {"email": "b@example.com", "password": "y", "enabled": False, "proxy": "socks5h://h:1"},
            ]
        }
    )
    alpha, mobile, b = settings.accounts
    assert (alpha.id, mobile.id, b.id) == ("alpha", "13900000000", "b@example.com")
    assert mobile.area_code == "86" and not mobile.can_login and alpha.can_login
    assert b.enabled is False and b.proxy == "socks5h://h:1"
    assert "tok" not in repr(mobile) and "'x'" not in repr(alpha)


def test_source_order_defaults_file_inline_env(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        {
            "keys": ["file-key"],
            "server": {"host": "127.0.0.1", "port": 6000, "log_level": "debug"},
            "pool": {"queue_size": 5, "queue_timeout": 9},
            "upstream": {"base_url": "http://file.example"},
        },
    )
    inline = {"server": {"port": 7000}, "pool": {"queue_size": 7}, "state": {"backend": "memory"}}
    env = {
        "DS2API_CONFIG_JSON": json.dumps(inline),
        "DS2API_PORT": "8000",
        "DS2API_KEYS": "e1, e2 ,,",
        "DS2API_BASE_URL": "http://127.0.0.1:9/",
        "DS2API_STATE_PATH": "/tmp/x.db",
        "DS2API_LOG_LEVEL": "WARNING",
        "DS2API_TOKEN_PASSTHROUGH": "true",
    }
    settings = load_settings(path, env=env)
    assert settings.server.port == 8000  # env var > inline > file
    assert settings.server.host == "127.0.0.1"  # file kept where nothing overrides (deep merge)
    assert settings.pool.queue_size == 7 and settings.pool.queue_timeout == 9  # inline merged into file
    assert settings.state.backend == "memory" and settings.state.path == "/tmp/x.db"
    assert [k.key for k in settings.keys] == ["e1", "e2"]
    assert settings.upstream.base_url == "http://127.0.0.1:9"
    assert settings.server.log_level == "warning"
    assert settings.token_passthrough is True

    # without the env vars, the inline JSON wins over the file
    settings = load_settings(path, env={"DS2API_CONFIG_JSON": json.dumps(inline)})
    assert settings.server.port == 7000 and settings.server.log_level == "debug"
    assert settings.keys[0].key == "file-key"


def test_inline_json_alone_is_enough(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    env = {"DS2API_CONFIG_JSON": json.dumps(SEED_CONFIG), "DS2API_STATE_BACKEND": "memory"}
    settings = load_settings(env=env)
    assert len(settings.accounts) == 2 and settings.state.backend == "memory"


def test_empty_env_vars_are_ignored(tmp_path: Path) -> None:
    path = write(tmp_path, {"keys": ["k"], "server": {"port": 6000}})
    settings = load_settings(path, env={"DS2API_KEYS": "", "DS2API_PORT": " ", "DS2API_CONFIG_JSON": ""})
    assert settings.keys[0].key == "k" and settings.server.port == 6000


def test_token_passthrough_false_values(tmp_path: Path) -> None:
    path = write(tmp_path, {"token_passthrough": True})
    for value in ("false", "0", "no", "OFF"):
        assert load_settings(path, env={"DS2API_TOKEN_PASSTHROUGH": value}).token_passthrough is False


def test_profile_merges_headers_over_defaults() -> None:
    settings = Settings.from_dict(
        {
            "upstream": {
                "base_url": "http://127.0.0.1:1234/",
                "impersonate": "",
                "headers": {"user-agent": "DeepSeek/9.9 Android/36", "x-extra": "1", "x-client-locale": None},
                "idle_timeout": 7,
            }
        }
    )
    profile = settings.profile()
    assert profile.base_url == "http://127.0.0.1:1234"
    assert profile.impersonate is None and profile.idle_timeout == 7
    lowered = {k.lower(): v for k, v in profile.headers.items()}
    assert lowered["user-agent"] == "DeepSeek/9.9 Android/36"
    assert len([k for k in profile.headers if k.lower() == "user-agent"]) == 1
    assert lowered["x-extra"] == "1" and "x-client-locale" not in lowered
    assert lowered["x-client-version"] == DEFAULT_HEADERS["x-client-version"]
    default = Settings().profile()
    assert dict(default.headers) == DEFAULT_HEADERS and default.impersonate == "chrome131_android"
    assert DEFAULT_HEADERS["User-Agent"] == "DeepSeek/2.0.4 Android/35"  # the newest persona evidence supports


def test_disabled_pool_warns_and_yields_no_entries(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="deepseek2api.config"):
        settings = Settings.from_dict({"proxy_pool": ["http://h:1"], "proxy_pool_enabled": False})
    assert not ProxyPool.from_settings(settings).active
    assert "proxy_pool_enabled is false" in caplog.text


def test_unknown_nested_keys_warn_but_load(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="deepseek2api.config"):
        settings = Settings.from_dict({"pool": {"queue_sise": 3}, "accounts": [{"email": "a", "password": "p", "x": 1}]})
    assert settings.pool.queue_size == 64
    assert "pool.queue_sise" in caplog.text and "accounts[0].x" in caplog.text


def test_settings_are_frozen() -> None:
    settings = Settings()
    with pytest.raises(ValidationError, match="frozen"):
        settings.token_passthrough = True  # type: ignore[misc]


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_check_permissions(tmp_path: Path) -> None:
    path = write(tmp_path, SEED_CONFIG)
    path.chmod(0o644)
    warning = check_permissions(path)
    assert warning is not None and "chmod 600" in warning and "0644" in warning
    path.chmod(0o600)
    assert check_permissions(path) is None


def test_missing_explicit_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(tmp_path / "nope.json", env={})
    assert "config file not found" in str(info.value)


def test_api_key_names() -> None:
    settings = Settings.from_dict({"keys": ["k1", {"name": "alice", "key": "k2"}]})
    assert [(k.name, k.key) for k in settings.keys] == [("key1", "k1"), ("alice", "k2")]
