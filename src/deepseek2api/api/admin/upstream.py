"""The console's Upstream panel: the client identity (persona, version, headers) the gateway presents to
DeepSeek, changeable at runtime, and what DeepSeek said about it (the version gate, the drift canary).

A changed identity applies from the next upstream call on, without a restart, and is kept in the state
file (`store/runtime_settings.py`), so it survives one. It is kept together with the config's identity
at the time: when the operator later edits the config's `upstream` identity, the file wins again (the
newer decision), and the stored one is dropped.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

from ...deepseek.client import DeepSeekClient
from ...deepseek.drift import CANARY
from ...deepseek.profile import PERSONAS, Identity
from ...store.runtime_settings import RuntimeSettings, RuntimeSettingsError
from .backend import AdminError, AdminErrorKind

logger = logging.getLogger(__name__)

KEY = "upstream.identity"
MAX_HEADER_CHARS = 512
MAX_HEADERS = 32


def identity_dict(identity: Identity) -> dict[str, Any]:
    return {"persona": identity.persona, "version": identity.version, "headers": dict(identity.headers),
            "impersonate": identity.impersonate, "login_os": identity.login_os}


def identity_from(data: Mapping[str, Any]) -> Identity:
    """An identity from the console's JSON; `AdminError(INVALID)` naming the bad field."""
    persona = data.get("persona", "android")
    if not isinstance(persona, str) or persona.strip().lower() not in PERSONAS:
        raise AdminError(AdminErrorKind.INVALID, f"`persona` must be one of {', '.join(PERSONAS)}")
    fields: dict[str, str | None] = {}
    for name in ("version", "impersonate", "login_os"):
        value = data.get(name)
        if value is not None and (not isinstance(value, str) or len(value) > 64
                                  or any(c in value for c in "\r\n\0")):
            raise AdminError(AdminErrorKind.INVALID, f"`{name}` must be a short string (or null for the default)")
        fields[name] = value.strip() if isinstance(value, str) and (value.strip() or name == "impersonate") \
            else None
    headers = data.get("headers") or {}
    if not isinstance(headers, Mapping) or len(headers) > MAX_HEADERS:
        raise AdminError(AdminErrorKind.INVALID, f"`headers` must be an object of at most {MAX_HEADERS} headers")
    clean: dict[str, str | None] = {}
    for name, value in headers.items():
        if not isinstance(name, str) or not name.strip() or any(c in name for c in "\r\n\0: "):
            raise AdminError(AdminErrorKind.INVALID, "`headers` names must be plain header names")
        if name.lower() == "authorization":
            raise AdminError(AdminErrorKind.INVALID, "`headers` may not set Authorization (the token is per call)")
        if value is not None and (not isinstance(value, str) or len(value) > MAX_HEADER_CHARS
                                  or any(c in value for c in "\r\n\0")):
            raise AdminError(AdminErrorKind.INVALID, f"header {name!r}: a single-line string (or null to remove)")
        clean[name.strip()] = value
    return Identity(persona=persona.strip().lower(), version=fields["version"], headers=clean,
                    impersonate=fields["impersonate"], login_os=fields["login_os"])


class UpstreamPanel:
    """The identity switch (persisted), the version-gate banner and the drift canary's findings."""

    def __init__(self, client: DeepSeekClient, configured: Identity, store: RuntimeSettings) -> None:
        self.client = client
        self.configured = configured
        self.store = store
        self.source = "config"

    async def load(self) -> None:
        """At start: the console's identity from the state file, unless the config changed since."""
        try:
            stored = await self.store.get(KEY)
        except RuntimeSettingsError as exc:
            logger.warning("could not read the console's client identity (%s): using the config's", exc)
            return
        if not isinstance(stored, Mapping) or not isinstance(stored.get("identity"), Mapping):
            return
        if stored.get("config") != identity_dict(self.configured):
            logger.info("the config's client identity changed since it was set in the console: the config's is used")
            try:
                await self.store.delete(KEY)
            except RuntimeSettingsError:
                pass
            return
        try:
            identity = identity_from(stored["identity"])
        except AdminError:
            logger.warning("the stored client identity is invalid: using the config's")
            return
        self.client.set_identity(identity)
        self.source = "console"
        logger.info("client identity set in the console: %s", self.client.profile.describe())

    async def set_identity(self, data: Mapping[str, Any]) -> dict[str, Any]:
        identity = identity_from(data)
        try:
            await self.store.put(KEY, {"identity": identity_dict(identity), "config": identity_dict(self.configured)})
        except RuntimeSettingsError as exc:
            raise AdminError(AdminErrorKind.UNAVAILABLE, f"could not keep the identity: {exc}") from None
        self.client.set_identity(identity)
        self.source = "console"
        return self.view()

    async def reset(self) -> dict[str, Any]:
        """Back to the config's identity."""
        try:
            await self.store.delete(KEY)
        except RuntimeSettingsError as exc:
            raise AdminError(AdminErrorKind.UNAVAILABLE, f"could not forget the identity: {exc}") from None
        self.client.set_identity(self.configured)
        self.source = "config"
        return self.view()

    def gate(self) -> dict[str, Any]:
        return asdict(self.client.gate.state())

    def view(self) -> dict[str, Any]:
        profile = self.client.profile
        return {"identity": profile.identity.public(), "source": self.source, "sent": profile.describe(),
                "version_gate": self.gate(),
                "drift": {"counts": dict(CANARY.counts), "shapes": CANARY.shapes()}}


__all__ = ["UpstreamPanel", "identity_dict", "identity_from"]
