"""Where the configuration comes from, later wins: defaults < config.json < `DS2API_CONFIG_JSON` <
individual `DS2API_*` env vars. The gateway never writes config.json; what it learns (tokens,
health) goes to the state store.
"""

from __future__ import annotations

import json
import os
import stat
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .errors import ConfigError, json_type_name
from .schema import Settings

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})

# env var → field path it sets (strings; pydantic converts and checks them)
_ENV_FIELDS: dict[str, tuple[str, ...]] = {
    "DS2API_HOST": ("server", "host"),
    "DS2API_PORT": ("server", "port"),
    "DS2API_BASE_URL": ("upstream", "base_url"),
    "DS2API_PERSONA": ("upstream", "persona"),
    "DS2API_CLIENT_VERSION": ("upstream", "client_version"),
    "DS2API_STATE_PATH": ("state", "path"),
    "DS2API_STATE_BACKEND": ("state", "backend"),
    "DS2API_LOG_LEVEL": ("server", "log_level"),
    "DS2API_REDIS_URL": ("cluster", "redis_url"),
    "DS2API_CLUSTER_NAME": ("cluster", "name"),
}


def load_settings(path: str | os.PathLike[str] | None = None, env: Mapping[str, str] = os.environ) -> Settings:
    """Load the configuration from all sources; raise `ConfigError` with a one-line message.

    The file is `path`, else `$DS2API_CONFIG`, else `./config.json` when it exists; with none,
    the defaults (no accounts) apply. The file is only read, never rewritten.
    """
    chosen = path if path is not None else (env.get("DS2API_CONFIG") or None)
    file_path: Path | None = None
    raw: dict[str, Any] = {}
    if chosen is not None:
        file_path = Path(chosen)
        raw = _read_config_file(file_path, required=True)
    elif Path("config.json").is_file():
        file_path = Path("config.json")
        raw = _read_config_file(file_path, required=False)

    inline = env.get("DS2API_CONFIG_JSON")
    if inline and inline.strip():
        raw = _deep_merge(raw, _parse_json_object(inline, "DS2API_CONFIG_JSON"))

    sources: dict[str, str] = {}
    keys = env.get("DS2API_KEYS")
    if keys and keys.strip():
        raw["keys"] = [k.strip() for k in keys.split(",") if k.strip()]
        sources["keys"] = "DS2API_KEYS"
    admin_keys = env.get("DS2API_ADMIN_KEYS")
    if admin_keys and admin_keys.strip():
        raw["admin_keys"] = [k.strip() for k in admin_keys.split(",") if k.strip()]
        sources["admin_keys"] = "DS2API_ADMIN_KEYS"
    for var, field_path in _ENV_FIELDS.items():
        value = env.get(var)
        if value is not None and value.strip():
            section = raw.get(field_path[0])
            section = dict(section) if isinstance(section, Mapping) else {}
            section[field_path[1]] = value.strip()
            raw[field_path[0]] = section
            sources[".".join(field_path)] = var
    passthrough = env.get("DS2API_TOKEN_PASSTHROUGH")
    if passthrough is not None and passthrough.strip():
        lowered = passthrough.strip().lower()
        if lowered not in _TRUE | _FALSE:
            raise ConfigError("DS2API_TOKEN_PASSTHROUGH", f"expected true or false (got {passthrough!r})")
        raw["token_passthrough"] = lowered in _TRUE

    settings = Settings.from_dict(raw, sources=sources)
    if file_path is not None:
        settings._config_path = str(file_path.resolve())
    return settings


def check_permissions(path: str | os.PathLike[str]) -> str | None:
    """A warning when the config file (it holds passwords) is readable by group or others."""
    if sys.platform.startswith("win"):
        return None
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        return (
            f"{path} is readable by other users (mode {stat.S_IMODE(mode):04o}) and holds account "
            f"passwords: run `chmod 600 {path}`"
        )
    return None


def _read_config_file(path: Path, *, required: bool) -> dict[str, Any]:
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except FileNotFoundError:
        if required:
            raise ConfigError(str(path), "config file not found") from None
        return {}
    except IsADirectoryError:
        raise ConfigError(str(path), "is a directory, expected a JSON config file") from None
    except OSError as exc:
        raise ConfigError(str(path), f"cannot read the config file ({exc.strerror or exc})") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(str(path), f"not UTF-8 text (byte {exc.start})") from None
    return _parse_json_object(text, str(path))


def _parse_json_object(text: str, where: str) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(where, f"invalid JSON at line {exc.lineno}, column {exc.colno} ({exc.msg})") from None
    except RecursionError:  # json raises this, not JSONDecodeError, for very deep nesting
        raise ConfigError(where, "invalid JSON (nested too deeply)") from None
    if not isinstance(data, dict):
        raise ConfigError(where, f"expected a JSON object at the top level (got {json_type_name(data)})")
    return data


def _deep_merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """Objects merge key by key; anything else (lists included) is replaced."""
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


__all__ = ["check_permissions", "load_settings"]
