"""The configuration's schema: every section, its defaults and its checks (frozen pydantic models).

The seed's `config.json` (keys as strings, accounts with email/mobile/password/token,
`proxy_pool_enabled`, `proxy_pool`) must keep working unchanged. `Settings.from_dict` validates one
merged mapping; where it comes from is settings/sources.py, how a problem reads is settings/errors.py.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from ..deepseek.profile import DEFAULT_BASE_URL, PERSONAS, ClientProfile, Identity
from ..deepseek.proxy_url import redact_proxy
from .errors import ConfigError, config_error, json_type_name, unknown_keys

logger = logging.getLogger("deepseek2api.config")

PROXY_SCHEMES = ("http", "https", "socks4", "socks5", "socks5h")
MAX_PROXIES = 100
_SCHEMES_TEXT = 'http, https, socks4, socks5, socks5h or "" for direct'


def check_proxy_url(value: str) -> str:
    """Validate one proxy URL ("" = direct); raise ValueError saying what is wrong (never the password)."""
    value = value.strip()
    if value == "":
        return ""
    shown = redact_proxy(value)
    if "://" not in value:
        raise ValueError(f"{shown!r} has no scheme (expected scheme://host:port with scheme {_SCHEMES_TEXT})")
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"{shown!r} is not a valid URL ({exc})") from None
    scheme = parts.scheme.lower()
    if scheme not in PROXY_SCHEMES:
        raise ValueError(f"unknown scheme {parts.scheme!r} (expected {_SCHEMES_TEXT})")
    if not parts.hostname:
        raise ValueError(f"{shown!r} has no host (expected {scheme}://host:port)")
    if port is None:
        raise ValueError(f"{shown!r} has no port (expected {scheme}://host:port)")
    return value


ProxyUrl = Annotated[str, AfterValidator(check_proxy_url)]


# --------------------------------------------------------------------------------------------
# models


class _Section(BaseModel):
    """Base of every config section: immutable; unknown keys are dropped (with a warning at load)."""

    model_config = ConfigDict(frozen=True, extra="ignore")


class ApiKey(_Section):
    """A downstream API key; `name` identifies the caller in logs without revealing the key.

    The rules are optional (keys/rules.py enforces them): `models` — the model names the key
    may use (shell patterns like `deepseek-*`; empty: all), `max_streams` concurrent requests, `rpm`
    requests a minute, `tokens_per_day` prompt + completion tokens a UTC day, `expires_at` (unix seconds
    or an ISO-8601 time), `enabled`, and a free `note`. 0 / None means "no limit"."""

    name: str
    key: str = Field(min_length=1, repr=False)
    models: tuple[str, ...] = ()
    max_streams: int = Field(default=0, ge=0)
    rpm: int = Field(default=0, ge=0)
    tokens_per_day: int = Field(default=0, ge=0)
    expires_at: float | None = None
    enabled: bool = True
    note: str = ""

    @field_validator("models", mode="before")
    @classmethod
    def _models(cls, value: Any) -> Any:
        return (value,) if isinstance(value, str) else value

    @field_validator("expires_at", mode="before")
    @classmethod
    def _expires_at(cls, value: Any) -> Any:
        if isinstance(value, str) and value.strip():
            try:
                moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
            except ValueError:
                raise ValueError("expected unix seconds or an ISO-8601 time like 2027-01-31T00:00:00Z") from None
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
            return moment.timestamp()
        return value


class AccountSettings(_Section):
    """One DeepSeek account of the operator. Its `id` is `name`, else email, else mobile."""

    email: str | None = None
    mobile: str | None = None
    area_code: str | None = None
    password: str | None = Field(default=None, repr=False)
    token: str | None = Field(default=None, repr=False)
    name: str | None = None
    proxy: ProxyUrl | None = None
    enabled: bool = True
    # fair use (pool/fair_use.py): None takes the pool's default
    max_requests_per_hour: int | None = Field(default=None, ge=0)
    min_request_gap: float | None = Field(default=None, ge=0)

    @model_validator(mode="before")
    @classmethod
    def _normalise(cls, data: Any) -> Any:
        if not isinstance(data, Mapping):
            return data
        data = dict(data)
        for key in ("email", "mobile", "area_code", "name", "proxy", "token"):
            value = data.get(key)
            if isinstance(value, int) and not isinstance(value, bool) and key in ("mobile", "area_code"):
                value = str(value)
            if isinstance(value, str):
                value = value.strip() or None
            data[key] = value
        if data.get("password") == "":
            data["password"] = None
        return data

    @model_validator(mode="after")
    def _check(self) -> AccountSettings:
        if not self.email and not self.mobile:
            raise ValueError('needs "email" or "mobile"')
        if not self.password and not self.token:
            raise ValueError('needs "password" (or a "token" to use without login)')
        return self

    @property
    def id(self) -> str:
        """The operator's identifier for this account (logs, status, state store)."""
        return self.name or self.email or self.mobile or ""

    @property
    def can_login(self) -> bool:
        """A token-only account cannot log in again once its token dies."""
        return bool(self.password)


class ServerSettings(_Section):
    host: str = "0.0.0.0"
    port: int = Field(default=5001, ge=0, le=65535)
    keepalive_interval: float = Field(default=5.0, gt=0)
    write_timeout: float = Field(default=30.0, gt=0)  # a stream's client that reads nothing this long is dropped
    max_body_bytes: int = Field(default=10 * 1024 * 1024, gt=0)
    cors_origins: tuple[str, ...] = ("*",)
    log_level: Literal["critical", "error", "warning", "info", "debug", "trace"] = "info"
    shutdown_grace: float = Field(default=30.0, ge=0)
    # Request limits; far above what any real client sends.
    max_header_bytes: int = Field(default=65_536, ge=1024)
    max_headers: int = Field(default=100, ge=8)
    header_timeout: float = Field(default=30.0, gt=0)
    body_timeout: float = Field(default=300.0, gt=0)

    @field_validator("log_level", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value


class PoolSettings(_Section):
    per_account_concurrency: int = Field(default=1, ge=1)
    queue_size: int = Field(default=64, ge=0)
    queue_timeout: float = Field(default=30.0, ge=0)
    max_failover: int = Field(default=3, ge=0)
    cooldown_rate_limited: float = Field(default=60.0, ge=0)
    cooldown_busy: float = Field(default=5.0, ge=0)
    prewarm: bool = False
    # fair use for every account (pool/fair_use.py; an account's own field wins); 0: no limit
    max_requests_per_hour: int = Field(default=0, ge=0)
    min_request_gap: float = Field(default=0.0, ge=0)  # seconds between two turns started on one account


_PROFILE = ClientProfile()  # the client's own defaults are the config's defaults (one source)


class UpstreamSettings(_Section):
    """How the gateway talks to DeepSeek. The client identity: `persona` (android, ios, web: see
    deepseek/profile.py), `client_version` (empty: the persona's), `headers` merged over the persona's
    (null removes one), `impersonate` (empty: the persona's fingerprint; "none": plain libcurl) and
    `login_os` (empty: the persona's). The console can switch the identity at runtime."""

    base_url: str = _PROFILE.base_url
    persona: str = "android"
    client_version: str | None = None
    impersonate: str | None = None
    headers: dict[str, str | None] = Field(default_factory=dict)  # merged over the persona's; null removes
    login_os: str | None = None
    # a mode (expert, vision) the account's settings say is disabled: "fallback" to the default mode
    # (response header X-DS2API-Model-Fallback) or "refuse" the request with a 400
    disabled_mode: Literal["fallback", "refuse"] = "fallback"
    connect_timeout: float = Field(default=_PROFILE.connect_timeout, gt=0)
    request_timeout: float = Field(default=_PROFILE.request_timeout, gt=0)
    idle_timeout: float = Field(default=_PROFILE.idle_timeout, gt=0)
    first_byte_timeout: float = Field(default=_PROFILE.first_byte_timeout, gt=0)
    max_continue_rounds: int = Field(default=8, ge=0)
    delete_session: bool = True
    # tokens; a longer prompt sends its earlier transcript as an attached file (chat/history_file.py)
    inline_prompt_limit: int = Field(default=24_000, ge=1_000)
    # continue the DeepSeek session that holds a conversation instead of re-sending it (chat/continuation.py);
    # off by default (see bench/continuation.py); not used with cluster.redis_url
    continue_sessions: bool = False
    continue_max_turns: int = Field(default=50, ge=1)  # turns on one session, then a fresh re-send
    continue_max_age: float = Field(default=1800.0, gt=0)  # seconds since the session's first turn
    continue_max_chars: int = Field(default=2_000_000, ge=1_000)  # prompt characters one session received

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"expected an http(s) URL such as {DEFAULT_BASE_URL} (got {value!r})")
        return value

    @field_validator("impersonate", mode="before")
    @classmethod
    def _impersonate(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = value.strip()
            return "" if value.lower() == "none" else (value or None)
        return value

    @field_validator("persona", mode="before")
    @classmethod
    def _persona(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = value.strip().lower()
            if value not in PERSONAS:
                raise ValueError(f"unknown persona {value!r} (expected one of {', '.join(PERSONAS)})")
        return value

    @field_validator("client_version", "login_os", mode="before")
    @classmethod
    def _blank_is_default(cls, value: Any) -> Any:
        return (value.strip() or None) if isinstance(value, str) else value

    def identity(self) -> Identity:
        """The client identity this section describes (deepseek/profile.py)."""
        impersonate = self.impersonate
        if impersonate is None and "impersonate" in self.model_fields_set:
            impersonate = ""  # an explicit null (or "" / "none"): plain libcurl, as before personas existed
        return Identity(persona=self.persona, version=self.client_version, headers=dict(self.headers),
                        impersonate=impersonate, login_os=self.login_os)


class ModelAlias(_Section):
    """An extra model id the operator adds (`models` section)."""

    model_type: str | None = "default"
    thinking: bool = False
    search: bool = False
    aliases: tuple[str, ...] = ()  # more names for the same model (a single string is accepted too)
    tool_prompt: bool = True  # false: never inject the tool prompt for this model (calls are still parsed)

    @field_validator("aliases", mode="before")
    @classmethod
    def _aliases(cls, value: Any) -> Any:
        return (value,) if isinstance(value, str) else value


class ModelLimit(_Section):
    """One model's limits as `/v1/models` reports them (either may be left out)."""

    context_window: int | None = Field(default=None, gt=0)
    max_output_tokens: int | None = Field(default=None, gt=0)


class ModelLimitsSettings(_Section):
    """The context window and output limit `/v1/models` reports per model (`model_limits` section); agent
    clients size their compaction from them. Defaults: DeepSeek's published API limits — 128K tokens of
    context, 8K of output, 64K for thinking models (the web chat's own limits are not published)."""

    context_window: int = Field(default=131072, gt=0)
    max_output_tokens: int = Field(default=8192, gt=0)
    thinking_max_output_tokens: int = Field(default=65536, gt=0)
    models: dict[str, ModelLimit] = Field(default_factory=dict)  # by model id or alias, any case


class OutputSettings(_Section):
    citations: Literal["link", "strip"] = "link"
    usage_chunk: Literal["both", "openai", "deepseek"] = "both"


def _default_claude_map() -> dict[str, str]:
    return {"opus": "deepseek-reasoner", "sonnet": "deepseek-reasoner", "haiku": "deepseek-chat"}


class AnthropicSettings(_Section):
    """The Anthropic Messages surface (`anthropic` section): which DeepSeek model a `claude-*` name means.

    `model_map` keys match a lower-cased Claude model name exactly or as a part of it (the longest key
    wins), so `"sonnet"` covers every Sonnet version; any other `claude-*` name gets `default_model`.
    `signature_key`: the key that signs thinking blocks (empty: a random key per process)."""

    model_map: dict[str, str] = Field(default_factory=_default_claude_map)
    default_model: str = "deepseek-reasoner"
    signature_key: str | None = Field(default=None, repr=False)


def _default_gemini_map() -> dict[str, str]:
    return {"pro": "deepseek-reasoner", "flash": "deepseek-chat"}


class GeminiSettings(_Section):
    """The Gemini API (`/v1beta`, `gemini` section): `model_map` as `anthropic.model_map`, for `gemini-*` names."""

    model_map: dict[str, str] = Field(default_factory=_default_gemini_map)
    default_model: str = "deepseek-chat"


class OllamaSettings(_Section):
    """The Ollama API (`/api/…`): off unless `enabled`; loopback clients only unless `require_key` (then a
    `keys` key as Bearer); with `port`, served only on that extra listener (11434 is Ollama's)."""

    enabled: bool = False
    port: int | None = Field(default=None, ge=1, le=65535)
    require_key: bool = False


class StateSettings(_Section):
    backend: Literal["sqlite", "memory"] = "sqlite"
    path: str = Field(default="state.db", min_length=1)


class FilesSettings(_Section):
    """Attachments (images, documents) and history files uploaded to DeepSeek (chat/attachments.py)."""

    max_bytes: int = Field(default=7 * 1024 * 1024, gt=0)  # per decoded file; base64 of it must fit max_body_bytes
    max_files: int = Field(default=10, ge=1)  # per turn, history files included
    history_as_file: bool = True  # over upstream.inline_prompt_limit: attach the transcript instead of failing
    auto_vision: bool = True  # images switch any model to vision mode (else only vision models take them)
    fetch_remote: bool = False  # fetch http(s) image URLs (public addresses only, no redirects)
    fetch_timeout: float = Field(default=10.0, gt=0)
    parse_timeout: float = Field(default=60.0, gt=0)  # longest wait for DeepSeek to parse the uploads


class ClusterSettings(_Section):
    """Several replicas sharing one pool through Redis (docs/cluster.md); no `redis_url` = in-process pool."""

    redis_url: str | None = Field(default=None, repr=False)  # may hold a password
    name: str = Field(default="default", min_length=1, max_length=64)
    lease_ttl: float = Field(default=15.0, gt=1.0)
    grace: float = Field(default=5.0, ge=0)

    @field_validator("redis_url", mode="before")
    @classmethod
    def _redis_url(cls, value: Any) -> Any:
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        if not isinstance(value, str):
            return value
        value = value.strip()
        parts = urlsplit(value)
        if parts.scheme not in ("redis", "rediss", "unix") or not (parts.netloc or parts.path):
            raise ValueError("expected redis://host:port/db, rediss://… (TLS) or unix:///path.sock")
        return value

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if any(c in value for c in "{}:") or value != value.strip():
            raise ValueError("a plain name without '{', '}', ':' or surrounding spaces")
        return value


class ProxyQuarantineSettings(_Section):
    failures: int = Field(default=3, ge=1)
    seconds: float = Field(default=60.0, ge=0)


class MetricsSettings(_Section):
    """`GET /metrics`: open by default (scrapers rarely send keys); `require_key` asks for any API key."""

    require_key: bool = False
    # series by API key *name* (never the key): opt-in, since the names are the operator's labels (docs/keys.md)
    per_key: bool = False


class ResponsesSettings(_Section):
    """The Responses API (`/v1/responses`): stored responses, for `previous_response_id` and `item_reference`.

    Kept in the `state` store (in Redis with `cluster.redis_url`) for `ttl` seconds; one response's stored
    JSON at most `max_response_bytes`, one key's live responses together at most `max_key_bytes` (a request
    beyond either is a 400 unless it says `store: false`)."""

    ttl: float = Field(default=86400.0, gt=0)  # seconds
    max_response_bytes: int = Field(default=16 * 1024 * 1024, gt=0)
    max_key_bytes: int = Field(default=64 * 1024 * 1024, gt=0)


class Settings(_Section):
    """The whole configuration (frozen). Build it with `load_settings()` or `Settings.from_dict()`."""

    keys: tuple[ApiKey, ...] = ()
    admin_keys: tuple[ApiKey, ...] = ()  # the console's keys; when empty, any of `keys` opens it
    accounts: tuple[AccountSettings, ...] = ()
    proxy_pool_enabled: bool = False
    proxy_pool: tuple[ProxyUrl, ...] = ()
    proxy_strategy: Literal["least_used", "sticky"] = "least_used"
    token_passthrough: bool = False
    server: ServerSettings = Field(default_factory=ServerSettings)
    pool: PoolSettings = Field(default_factory=PoolSettings)
    upstream: UpstreamSettings = Field(default_factory=UpstreamSettings)
    models: dict[str, ModelAlias] = Field(default_factory=dict)
    model_limits: ModelLimitsSettings = Field(default_factory=ModelLimitsSettings)
    output: OutputSettings = Field(default_factory=OutputSettings)
    state: StateSettings = Field(default_factory=StateSettings)
    responses: ResponsesSettings = Field(default_factory=ResponsesSettings)
    proxy_quarantine: ProxyQuarantineSettings = Field(default_factory=ProxyQuarantineSettings)
    files: FilesSettings = Field(default_factory=FilesSettings)
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)
    cluster: ClusterSettings = Field(default_factory=ClusterSettings)
    anthropic: AnthropicSettings = Field(default_factory=AnthropicSettings)
    gemini: GeminiSettings = Field(default_factory=GeminiSettings)
    ollama: OllamaSettings = Field(default_factory=OllamaSettings)

    _config_path: str | None = PrivateAttr(default=None)

    @field_validator("keys", "admin_keys", mode="before")
    @classmethod
    def _keys(cls, value: Any, info: ValidationInfo) -> Any:
        if value is None:
            return ()
        if not isinstance(value, (list, tuple)):
            raise ValueError('expected a list of keys (strings or {"name", "key"} objects)')
        out: list[Any] = []
        for index, item in enumerate(value):
            default_name = f"{'admin' if info.field_name == 'admin_keys' else 'key'}{index + 1}"
            if isinstance(item, str):
                out.append({"name": default_name, "key": item.strip()})
            elif isinstance(item, Mapping):
                item = dict(item)
                name = item.get("name")
                if name is None or (isinstance(name, str) and not name.strip()):
                    item["name"] = default_name
                if isinstance(item.get("key"), str):
                    item["key"] = item["key"].strip()
                out.append(item)
            else:
                raise ValueError(f'[{index}]: expected a string or a {{"name", "key"}} object')
        return out

    @field_validator("accounts", "proxy_pool", mode="before")
    @classmethod
    def _null_list(cls, value: Any) -> Any:
        return () if value is None else value

    @field_validator("proxy_pool", mode="before")
    @classmethod
    def _proxy_count(cls, value: Any) -> Any:
        if isinstance(value, (list, tuple)) and len(value) > MAX_PROXIES:
            raise ValueError(f"at most {MAX_PROXIES} entries allowed (got {len(value)})")
        return value

    @field_validator("accounts")
    @classmethod
    def _unique_ids(cls, accounts: tuple[AccountSettings, ...]) -> tuple[AccountSettings, ...]:
        seen: set[str] = set()
        for index, account in enumerate(accounts):
            if account.id in seen:
                raise ValueError(
                    f'[{index}]: duplicate account id {account.id!r} (give one of them a unique "name")'
                )
            seen.add(account.id)
        return accounts

    @field_validator("models", mode="before")
    @classmethod
    def _model_ids(cls, value: Any) -> Any:
        if isinstance(value, Mapping):
            for name in value:
                if not isinstance(name, str) or not name.strip():
                    raise ValueError("model ids must be non-empty strings")
        return value

    # ---- construction ------------------------------------------------------------------

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, sources: Mapping[str, str] | None = None) -> Settings:
        """Validate a raw config mapping; raise `ConfigError` (one line) on the first problem.

        `sources` maps field paths (e.g. "server.port") to the env var that set them, so an error
        names the variable the operator has to fix.
        """
        if not isinstance(data, Mapping):
            raise ConfigError("config", f"expected a JSON object at the top level (got {json_type_name(data)})")
        for path in unknown_keys(cls, data, ""):
            logger.warning("ignoring unknown config key %r", path)
        try:
            settings = cls.model_validate(dict(data))
        except ValidationError as exc:
            raise config_error(exc, sources or {}) from None
        settings._warn_about_oddities()
        return settings

    def _warn_about_oddities(self) -> None:
        if self.proxy_pool and not self.proxy_pool_enabled:
            logger.warning(
                "proxy_pool has %d entries but proxy_pool_enabled is false: all accounts connect directly",
                len(self.proxy_pool),
            )
        if self.proxy_pool_enabled and not self.proxy_pool:
            logger.warning("proxy_pool_enabled is true but proxy_pool is empty: all accounts connect directly")

    # ---- derived views -----------------------------------------------------------------

    @property
    def config_path(self) -> str | None:
        """The config file these settings were loaded from (None: defaults/env only)."""
        return self._config_path

    def profile(self) -> ClientProfile:
        """The client for `DeepSeekClient`: the configured identity with the connection settings."""
        up = self.upstream
        return ClientProfile(
            base_url=up.base_url,
            connect_timeout=up.connect_timeout,
            request_timeout=up.request_timeout,
            idle_timeout=up.idle_timeout,
            first_byte_timeout=up.first_byte_timeout,
        ).with_identity(up.identity())

