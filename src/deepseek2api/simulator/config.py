"""What the simulator is told to be: its accounts, its PoW difficulty, its stream format and its faults.

One mutable dataclass, so tests and the `/_sim/config` control endpoint can change behaviour while the
server runs (the running server reads the config on every request).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

# Every fault the simulator can inject (names shared with the gateway's tests; see faults.py).
FAULT_NAMES: frozenset[str] = frozenset(
    {
        "token_expired", "pow_rejected", "mute", "ban", "rate_limit", "busy", "waf",
        "stall", "cut", "content_filter", "incomplete", "input_too_long", "slow", "empty",
    }
)

# Stream format generations of docs/protocol.md. C′ is spelt "C'" here.
STREAM_FORMATS = ("C", "C'", "B", "A")
_FORMAT_ALIASES = {
    "c": "C", "fragments": "C",
    "c'": "C'", "c′": "C'", "cp": "C'", "c-prime": "C'", "cprime": "C'", "blocks": "C'",
    "b": "B", "flat": "B",
    "a": "A", "choices": "A",
}


def normalize_format(name: str) -> str:
    """The canonical format name for `name` ("C", "C'", "B", "A"); ValueError when unknown."""
    key = str(name).strip().lower()
    if key not in _FORMAT_ALIASES:
        raise ValueError(f"unknown stream format {name!r} (expected one of C, C', B, A)")
    return _FORMAT_ALIASES[key]


@dataclass
class SimUser:
    """One account the simulator accepts: log in with its email or mobile and password."""

    password: str
    email: str | None = None
    mobile: str | None = None
    banned: bool = False
    token: str | None = None  # a token valid from the start (as if pasted from a logged-in browser)

    def __post_init__(self) -> None:
        if not self.email and not self.mobile:
            raise ValueError("a SimUser needs an email or a mobile number")

    @property
    def account(self) -> str:
        """The account id used by the control API (`/_sim/faults`) and the stats: email, else mobile."""
        return self.email or self.mobile or ""

    @classmethod
    def parse(cls, spec: str) -> SimUser:
        """`"alice@x:pw"` → email user, `"13800000000:pw"` → mobile user (CLI form)."""
        name, sep, password = spec.strip().partition(":")
        if not sep or not name or not password:
            raise ValueError(f"expected ACCOUNT:PASSWORD, got {spec.split(':', 1)[0]!r}:…")
        return cls(password=password, email=name) if "@" in name else cls(password=password, mobile=name)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SimUser:
        return cls(password=str(data["password"]), email=data.get("email") or None,
                   mobile=data.get("mobile") or None, banned=bool(data.get("banned", False)),
                   token=data.get("token") or None)

    def public(self) -> dict[str, Any]:
        """Without the password or the token (for `/_sim/config`)."""
        out: dict[str, Any] = {"email": self.email, "mobile": self.mobile, "banned": self.banned}
        if self.token:
            out["has_token"] = True
        return out


@dataclass
class SimulatorConfig:
    """Behaviour knobs. Defaults mimic chat.deepseek.com as documented in docs/protocol.md."""

    users: list[SimUser] = field(default_factory=list)
    token_ttl: float | None = None  # seconds a token stays valid after login; None = forever
    token_error_http: bool = False  # answer invalid tokens with HTTP 401 instead of the 40003 envelope
    difficulty: int = 144000  # PoW difficulty of new challenges (realistic value; tests use tiny ones)
    pow_required: bool = True  # demand x-ds-pow-response on chat/completion and chat/continue
    pow_ttl: float = 300.0  # seconds a PoW challenge stays valid (expire_after)
    stream_format: str = "C"  # default format; per request: header x-sim-format or [sim:format=X]
    max_streams_per_account: int = 1  # concurrent completion streams allowed per account
    over_limit: str = "429"  # "429" (HTTP 429) or "hint" (SSE error hint) for an extra stream
    over_limit_grace: float = 0.1  # seconds an extra stream waits for a slot before it is a violation
    tokens_per_second: float | None = None  # text pieces per second; None/0 = as fast as possible
    chunk_chars: tuple[int, int] = (1, 4)  # characters per text piece (min, max)
    events_per_write: int = 1  # SSE events per transport write (1 = one write per event, like upstream)
    jitter: float = 0.0  # extra random delay per piece, up to this many seconds (seeded)
    fault_rates: dict[str, float] = field(default_factory=dict)  # fault → probability per completion
    retry_after: float = 1.0  # Retry-After seconds of the rate_limit fault
    mute_seconds: float = 3600.0  # mute_until = now + this, for the mute fault
    stall_seconds: float = 40.0  # stall fault: silence before the first token
    slow_tokens_per_second: float = 5.0  # speed of the slow fault
    waf_status: int = 403  # HTTP status of the WAF page (403 or 200)
    max_prompt_chars: int | None = None  # longer prompts get the input_exceeds_limit hint
    finish_event: bool = False  # also emit the `event: finish` seen in one 2026-04 capture
    seed: int | None = None  # seeds chunking, jitter, fault rolls and PoW answers
    session_ttl: float = 259200.0  # ttl_seconds reported by chat_session/create
    # files (files.py): upload size limit, fetch_files polls until parsed, ref_file_ids per turn, text limit
    max_file_bytes: int = 20 * 1024 * 1024
    file_parse_polls: int = 2
    max_ref_files: int = 20
    max_file_chars: int | None = 2_000_000  # longer text files end CONTENT_TOO_LONG
    vision_available: bool = True  # False: vision turns get the "vision is temporarily unavailable" hint
    # late-2026 behaviour (late2026.py; `profile="late-2026"` sets all of them)
    profile: str = "current"  # "current" (docs/protocol.md as captured in spring 2026) or "late-2026"
    # older x-client-version: {"code":40005,"msg":"CLIENT_VERSION_TOO_LOW"}; "" turns the gate off in late-2026
    min_client_version: str | None = None
    risk_control_logins: bool = False  # password logins answer biz_code 11 RISK_DEVICE_DETECTED
    disabled_modes: tuple[str, ...] = ()  # settings list them enabled:false; completions in them come back empty
    drift_fields: bool = False  # streams carry fields no decoder knows yet (a new event, path, fragment type)

    def __post_init__(self) -> None:
        self.stream_format = normalize_format(self.stream_format)
        self.chunk_chars = _chunk_range(self.chunk_chars)
        unknown = set(self.fault_rates) - FAULT_NAMES
        if unknown:
            raise ValueError(f"unknown fault name(s) in fault_rates: {', '.join(sorted(unknown))}")
        if self.over_limit not in ("429", "hint"):
            raise ValueError(f"over_limit must be '429' or 'hint', not {self.over_limit!r}")
        if int(self.difficulty) <= 0:
            raise ValueError("difficulty must be a positive integer")
        self.difficulty = int(self.difficulty)
        self.events_per_write = max(1, int(self.events_per_write))
        if self.profile not in PROFILES:
            raise ValueError(f"unknown profile {self.profile!r} (expected one of {', '.join(PROFILES)})")
        if self.profile == LATE_2026 and self.min_client_version is None:
            # `SimulatorConfig(profile="late-2026")` alone: the profile's knobs (set them afterwards to differ)
            self.min_client_version = LATE_2026_MIN_VERSION
            self.disabled_modes = tuple(self.disabled_modes) or ("expert", "vision")
            self.risk_control_logins = self.drift_fields = True
            for user in self.users:
                user.token = user.token or preset_token(user.account)
        self.disabled_modes = tuple(str(m).lower() for m in self.disabled_modes)
        if int(self.max_file_bytes) <= 0 or int(self.file_parse_polls) < 1 or int(self.max_ref_files) < 0:
            raise ValueError("max_file_bytes must be > 0, file_parse_polls >= 1 and max_ref_files >= 0")

    def find_user(self, *, email: str | None = None, mobile: str | None = None) -> SimUser | None:
        """The configured user with this email (case-insensitive) or mobile (country prefix optional)."""
        if email:
            wanted = email.strip().lower()
            return next((u for u in self.users if u.email and u.email.lower() == wanted), None)
        if mobile:
            wanted = _bare_mobile(mobile)
            return next((u for u in self.users if u.mobile and _bare_mobile(u.mobile) == wanted), None)
        return None

    def user_by_account(self, account: str) -> SimUser | None:
        return next((u for u in self.users if u.account == account), None)

    def update(self, changes: Mapping[str, Any]) -> None:
        """Apply a `/_sim/config` body; ValueError (nothing changed) on an unknown field or bad value.
        A `profile` in it switches the late-2026 knobs as `use_profile` does, before the other changes."""
        if "profile" in changes:
            changes = dict(changes)
            profile = changes.pop("profile")
            if profile not in PROFILES:
                raise ValueError(f"unknown profile {profile!r} (expected one of {', '.join(PROFILES)})")
            self._update(changes)  # validated first: a bad field leaves the profile alone too
            self.use_profile(profile)
            self._update(changes)  # explicit knobs win over the profile's
            return
        self._update(changes)

    def _update(self, changes: Mapping[str, Any]) -> None:
        if "format" in changes:  # the short name used by the contract and the CLI
            changes = {("stream_format" if k == "format" else k): v for k, v in changes.items()}
        known = {f.name for f in fields(self)}
        unknown = set(changes) - known
        if unknown:
            raise ValueError(f"unknown config field(s): {', '.join(sorted(unknown))}")
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        for name, value in changes.items():
            if name == "users":
                value = [u if isinstance(u, SimUser) else SimUser.from_dict(u) for u in value]
            elif name in ("chunk_chars", "disabled_modes") and isinstance(value, list):
                value = tuple(value)
            elif name == "fault_rates":
                value = {str(k): float(v) for k, v in dict(value).items()}
            values[name] = value
        checked = SimulatorConfig(**values)  # validates everything at once
        for f in fields(self):
            setattr(self, f.name, getattr(checked, f.name))

    def public(self) -> dict[str, Any]:
        """JSON view for `/_sim/config` (no passwords)."""
        out: dict[str, Any] = {f.name: getattr(self, f.name) for f in fields(self)}
        out["users"] = [u.public() for u in self.users]
        out["chunk_chars"] = list(self.chunk_chars)
        out["disabled_modes"] = list(self.disabled_modes)
        return out

    def use_profile(self, name: str) -> None:
        """Switch every late-2026 knob on ("late-2026") or off ("current"); other fields stay."""
        if name not in PROFILES:
            raise ValueError(f"unknown profile {name!r} (expected one of {', '.join(PROFILES)})")
        late = name == LATE_2026
        self._update({"profile": name, "min_client_version": LATE_2026_MIN_VERSION if late else None,
                     "risk_control_logins": late, "disabled_modes": ["expert", "vision"] if late else [],
                     "drift_fields": late})
        if late:
            for user in self.users:
                user.token = user.token or preset_token(user.account)


LATE_2026 = "late-2026"
PROFILES = ("current", LATE_2026)
LATE_2026_MIN_VERSION = "2.0.0"  # the gate of 2026-04-08: 1.6.11 is refused, 2.0.0 and later pass


def preset_token(account: str) -> str:
    """The token a late-2026 simulator account starts with (64 hex characters, like the real ones):
    stable per account, so the operator can paste it into the gateway's config (`deepseek2api simulate`
    prints them)."""
    return hashlib.sha256(f"deepseek2api-simulator:{account}".encode()).hexdigest()


def _chunk_range(value: Any) -> tuple[int, int]:
    if isinstance(value, int):
        lo = hi = value
    else:
        lo, hi = (int(v) for v in value)
    if lo < 1 or hi < lo:
        raise ValueError(f"chunk_chars must be (min, max) with 1 <= min <= max, not {value!r}")
    return lo, hi


def _bare_mobile(number: str) -> str:
    digits = number.strip().replace(" ", "").lstrip("+")
    return digits[2:] if digits.startswith("86") and len(digits) == 13 else digits


DEMO_DIFFICULTY = 20000
"""Demo PoW difficulty: a real solve (same algorithm, same checks) that stays fast on any machine,
even without the native solver. The realistic value is 144000."""


def demo_config(n_accounts: int = 3, profile: str = "current") -> SimulatorConfig:
    """The simulator behind `deepseek2api demo`: demo1@simulator.local … with password demo-password-N.

    Streams at 40 pieces per second so a person can watch the tokens arrive.
    """
    users = [SimUser(email=f"demo{i}@simulator.local", password=f"demo-password-{i}") for i in range(1, n_accounts + 1)]
    config = SimulatorConfig(users=users, difficulty=DEMO_DIFFICULTY, tokens_per_second=40.0)
    config.use_profile(profile)
    return config
