"""`python -m deepseek2api.simulator` / `deepseek2api simulate`: run the simulator in the foreground."""

from __future__ import annotations

import argparse
import sys

from .config import PROFILES, STREAM_FORMATS, SimulatorConfig, SimUser, demo_config


def _fault_rate(text: str) -> tuple[str, float]:
    name, sep, value = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"expected NAME=PROBABILITY, got {text!r}")
    try:
        return name.strip(), float(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"bad probability in {text!r}") from exc


def _chunk_chars(text: str) -> tuple[int, int]:
    lo, _, hi = text.partition("-")
    try:
        return int(lo), int(hi or lo)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected N or MIN-MAX, got {text!r}") from exc


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="deepseek2api simulate",
        description="A simulated chat.deepseek.com for offline tests and demos. Without --users it serves "
                    "the demo accounts demo1@simulator.local … (password demo-password-N).")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5002, help="listen port (default 5002)")
    parser.add_argument("--users", default="", help="comma-separated ACCOUNT:PASSWORD (email or mobile)")
    parser.add_argument("--demo-accounts", type=int, default=3, help="demo accounts when --users is not given")
    parser.add_argument("--difficulty", type=int, default=None, help="PoW difficulty (default 144000; demo 20000)")
    parser.add_argument("--format", default="C", help=f"stream format: {', '.join(STREAM_FORMATS)}")
    parser.add_argument("--tokens-per-second", type=float, default=None, help="0 = as fast as possible")
    parser.add_argument("--chunk-chars", type=_chunk_chars, default=(1, 4), help="characters per piece, N or MIN-MAX")
    parser.add_argument("--max-streams-per-account", type=int, default=1)
    parser.add_argument("--over-limit", choices=("429", "hint"), default="429")
    parser.add_argument("--token-ttl", type=float, default=None, help="seconds a login token stays valid")
    parser.add_argument("--max-prompt-chars", type=int, default=None)
    parser.add_argument("--fault-rate", type=_fault_rate, action="append", default=[], metavar="NAME=P",
                        help="inject fault NAME with probability P per completion (repeatable)")
    parser.add_argument("--no-pow", action="store_true", help="do not require x-ds-pow-response")
    parser.add_argument("--profile", choices=PROFILES, default="current",
                        help="current: DeepSeek as captured in spring 2026; late-2026: the version gate (2.0.0+), "
                             "risk-controlled password logins (accounts work with the tokens printed at start), "
                             "expert and vision disabled, new stream fields (docs/deepseek-changes.md)")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--log-level", default="info")
    return parser


def config_from_args(args: argparse.Namespace) -> SimulatorConfig:
    if args.users.strip():
        config = SimulatorConfig(users=[SimUser.parse(spec) for spec in args.users.split(",") if spec.strip()])
    else:
        config = demo_config(args.demo_accounts)
    changes = {
        "stream_format": args.format, "chunk_chars": args.chunk_chars,
        "max_streams_per_account": args.max_streams_per_account, "over_limit": args.over_limit,
        "token_ttl": args.token_ttl, "max_prompt_chars": args.max_prompt_chars,
        "fault_rates": dict(args.fault_rate), "pow_required": not args.no_pow, "seed": args.seed,
    }
    if args.difficulty is not None:
        changes["difficulty"] = args.difficulty
    if args.tokens_per_second is not None:
        changes["tokens_per_second"] = args.tokens_per_second or None
    config.update(changes)
    config.use_profile(args.profile)
    return config


def main(argv: list[str] | None = None) -> int:
    """Parse `argv`, then serve until interrupted. Returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        config = config_from_args(args)
    except (ValueError, TypeError) as exc:
        parser.error(str(exc))
    import uvicorn

    from .app import create_app

    names = [u.account for u in config.users]
    accounts = ", ".join(names[:5]) + (f" … ({len(names)} accounts)" if len(names) > 5 else "")
    print(f"DeepSeek simulator on http://{args.host}:{args.port} — accounts: {accounts}; "
          f"format {config.stream_format}, PoW difficulty {config.difficulty}, profile {config.profile}",
          file=sys.stderr)
    for user in config.users:
        if user.token:  # simulator tokens, to paste into the gateway's config (never real ones)
            print(f"  token of {user.account}: {user.token}", file=sys.stderr)
    uvicorn.run(create_app(config), host=args.host, port=args.port, log_level=args.log_level)
    return 0
