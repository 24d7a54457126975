"""Gateway configuration: the schema (settings/schema.py), where it comes from (settings/sources.py)
and how a bad value reads (settings/errors.py). A bad config stops the gateway at start with one line
naming the bad field, never a stack trace.
"""

from ..deepseek.proxy_url import redact_proxy
from .errors import ConfigError
from .schema import (
    MAX_PROXIES,
    PROXY_SCHEMES,
    AccountSettings,
    AnthropicSettings,
    ApiKey,
    ClusterSettings,
    FilesSettings,
    GeminiSettings,
    MetricsSettings,
    ModelAlias,
    ModelLimit,
    ModelLimitsSettings,
    OllamaSettings,
    OutputSettings,
    PoolSettings,
    ProxyQuarantineSettings,
    ResponsesSettings,
    ServerSettings,
    Settings,
    StateSettings,
    UpstreamSettings,
    check_proxy_url,
)
from .sources import check_permissions, load_settings

__all__ = [
    "MAX_PROXIES",
    "PROXY_SCHEMES",
    "AccountSettings",
    "AnthropicSettings",
    "ApiKey",
    "ClusterSettings",
    "ConfigError",
    "FilesSettings",
    "GeminiSettings",
    "MetricsSettings",
    "ModelAlias",
    "ModelLimit",
    "ModelLimitsSettings",
    "OllamaSettings",
    "OutputSettings",
    "PoolSettings",
    "ProxyQuarantineSettings",
    "ResponsesSettings",
    "ServerSettings",
    "Settings",
    "StateSettings",
    "UpstreamSettings",
    "check_permissions",
    "check_proxy_url",
    "load_settings",
    "redact_proxy",
]
