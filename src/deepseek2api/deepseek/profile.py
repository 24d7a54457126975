"""The client identity the gateway presents to DeepSeek: personas, versions, headers, TLS fingerprint.

DeepSeek changes its web client (versions, headers, TLS fingerprints) without notice, and refuses a
client it thinks too old with `{"code":40005,"msg":"CLIENT_VERSION_TOO_LOW"}` (docs/deepseek-changes.md).
Everything that identifies our client lives here, in one place: a few named personas (android, ios,
web), each a version, its headers and a curl_cffi fingerprint. The config (`upstream.persona`,
`upstream.client_version`, `upstream.headers`, `upstream.impersonate`) picks and overrides one, and the
console can switch it at runtime (the choice is kept in the state file), so an operator follows a
change of DeepSeek's by editing one setting instead of waiting for a release.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

DEFAULT_BASE_URL = "https://chat.deepseek.com"

VERSION_PLACEHOLDER = "{version}"  # in a persona's header values: replaced by the version sent


@dataclass(frozen=True, slots=True)
class Persona:
    """One client DeepSeek knows: its version and the headers that go with it.

    Header values may contain `{version}`, so overriding the version changes the User-Agent too.
    """

    name: str
    version: str
    headers: Mapping[str, str]
    impersonate: str | None
    login_os: str
    evidence: str  # where the version comes from (shown by `deepseek2api check` and the console)

    def rendered_headers(self, version: str | None = None) -> dict[str, str]:
        """The headers with `{version}` filled in."""
        value = version or self.version
        return {k: v.replace(VERSION_PLACEHOLDER, value) for k, v in self.headers.items()}


# The newest versions public reports support (docs/deepseek-changes.md, 2026-12): Android 2.0.4 is the
# newest app persona that worked against the live site (User-Agent "DeepSeek/2.0.4 Android/35"); a
# browser persona of a late-2026 gateway reports web 2.0.2 with a Chrome TLS profile; iOS 2.0.4 (2026-05).
PERSONAS: dict[str, Persona] = {
    "android": Persona(
        name="android",
        version="2.0.4",
        headers={
            "User-Agent": "DeepSeek/{version} Android/35",
            "Accept": "application/json",
            "Accept-Encoding": "gzip",
            "Content-Type": "application/json",
            "x-client-platform": "android",
            "x-client-version": "{version}",
            "x-client-locale": "zh_CN",
            "accept-charset": "UTF-8",
        },
        impersonate="chrome131_android",
        login_os="android",
        evidence="Android app 2.0.4, the newest app version public gateways used successfully (2026-05)",
    ),
    "ios": Persona(
        name="ios",
        version="2.0.4",
        headers={
            "User-Agent": "DeepSeek/2 CFNetwork/1568.100.1 Darwin/24.0.0",
            "Accept": "application/json",
            "Accept-Encoding": "gzip",
            "Content-Type": "application/json",
            "x-client-platform": "ios",
            "x-client-version": "{version}",
            "x-client-bundle-id": "com.deepseek.chat",
            "x-client-locale": "en_US",
        },
        impersonate="safari184_ios",
        login_os="ios",
        evidence="iOS app 2.0.4 (a 2026-05 client library)",
    ),
    "web": Persona(
        name="web",
        version="2.0.2",
        headers={
            "User-Agent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
                          "Chrome/146.0.0.0 Safari/537.36",
            "Accept": "*/*",
            "Accept-Encoding": "gzip, deflate, br",
            "Content-Type": "application/json",
            "Origin": DEFAULT_BASE_URL,
            "Referer": DEFAULT_BASE_URL + "/",
            "x-client-platform": "web",
            "x-client-version": "{version}",
            "x-app-version": "{version}",
            "x-client-locale": "en_US",
        },
        impersonate="chrome146",
        login_os="web",
        evidence="web 2.0.2 with a Chrome TLS profile (a late-2026 gateway)",
    ),
}
DEFAULT_PERSONA = "android"

# The default persona's headers (kept for callers that want the plain dict).
DEFAULT_HEADERS: dict[str, str] = PERSONAS[DEFAULT_PERSONA].rendered_headers()


def persona(name: str) -> Persona:
    """The persona called `name` (any case); KeyError naming the choices when unknown."""
    found = PERSONAS.get(name.strip().lower())
    if found is None:
        raise KeyError(f"unknown persona {name!r} (expected one of {', '.join(PERSONAS)})")
    return found


@dataclass(frozen=True, slots=True)
class Identity:
    """Who we say we are: a persona, the version sent, and header overrides (None removes a header).

    `impersonate` and `login_os` override the persona's when set (`impersonate=""`: plain libcurl, no
    browser fingerprint). This is what the config's
    `upstream` section and the console's "client identity" edit; `ClientProfile.with_identity` applies it.
    """

    persona: str = DEFAULT_PERSONA
    version: str | None = None
    headers: Mapping[str, str | None] = field(default_factory=dict)
    impersonate: str | None = None
    login_os: str | None = None

    def resolved(self) -> tuple[Persona, str, dict[str, str]]:
        """(persona, version sent, final headers)."""
        base = persona(self.persona)
        version = self.version or base.version
        headers = base.rendered_headers(version)
        for name, value in self.headers.items():
            for existing in [k for k in headers if k.lower() == name.lower()]:
                del headers[existing]
            if value is not None:
                headers[name] = value
        return base, version, headers

    def describe(self) -> str:
        """`android 2.0.4` — what the operator reads in errors and the console."""
        _, version, headers = self.resolved()
        sent = {k.lower(): v for k, v in headers.items()}.get("x-client-version", version)
        return f"{self.persona} {sent}"

    def fingerprint(self) -> str | None:
        """The curl_cffi profile to use (None: plain libcurl)."""
        if self.impersonate is None:
            return persona(self.persona).impersonate
        return self.impersonate or None

    def public(self) -> dict[str, object]:
        """JSON view for the console and the admin API (no secret is ever in an identity)."""
        base, version, headers = self.resolved()
        return {"persona": base.name, "version": version, "headers": headers,
                "impersonate": self.fingerprint(), "login_os": self.login_os or base.login_os,
                "default_version": base.version, "evidence": base.evidence, "personas": list(PERSONAS)}


@dataclass(frozen=True, slots=True)
class ClientProfile:
    """Where and as whom we talk to DeepSeek, and how long we wait."""

    base_url: str = DEFAULT_BASE_URL
    headers: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_HEADERS))
    impersonate: str | None = PERSONAS[DEFAULT_PERSONA].impersonate  # curl_cffi profile; None = plain libcurl
    login_os: str = "android"  # the `os` field of the login body
    connect_timeout: float = 10.0  # seconds to establish a connection (through the proxy)
    request_timeout: float = 30.0  # whole non-streaming call (login, session, PoW challenge …)
    idle_timeout: float = 120.0  # longest silence between two stream chunks (reasoning pauses are long)
    first_byte_timeout: float = 60.0  # longest wait for the completion's response headers
    identity: Identity = field(default_factory=Identity)  # what the headers were made from (for messages)

    def url(self, path: str) -> str:
        """Absolute URL of an API path such as `/api/v0/chat/completion`."""
        return self.base_url.rstrip("/") + path

    @property
    def client_version(self) -> str:
        """The `x-client-version` this profile sends ("" when none)."""
        return {k.lower(): v for k, v in self.headers.items()}.get("x-client-version", "")

    def describe(self) -> str:
        """`persona android, x-client-version 2.0.4` for messages and logs."""
        return f"persona {self.identity.persona}, x-client-version {self.client_version or '(none)'}"

    def with_identity(self, identity: Identity) -> ClientProfile:
        """The same connection settings with another identity (the console's persona switch)."""
        base, _, headers = identity.resolved()
        return replace(self, headers=headers, impersonate=identity.fingerprint(),
                       login_os=identity.login_os or base.login_os, identity=identity)
