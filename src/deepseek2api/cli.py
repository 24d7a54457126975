"""`deepseek2api serve | demo | check | simulate | pow`.

Config errors end the program with one clear line and exit code 2 — never a stack trace.
"""

from __future__ import annotations

import argparse
import asyncio
import errno
import json
import logging
import os
import socket
import sys
import time
from collections.abc import Sequence
from typing import Any

from . import __version__
from .entry import report_start
from .serve import run_server, uvicorn_config

log = logging.getLogger(__name__)

DEFAULT_POW_DIFFICULTY = 144000  # what DeepSeek asks for today

EXIT_PORT_IN_USE = 3  # the README's exit codes: the listen address is taken (said before anything starts)


def _fail(message: str, code: int = 2) -> int:
    print(f"deepseek2api: {message}", file=sys.stderr)
    return code


def listeners(server: Any, settings: Any) -> list[Any] | None:
    """The sockets to serve on: None (uvicorn binds `server.config`'s own), or that one plus the Ollama API's
    own listener (`ollama.port`; on loopback unless `ollama.require_key`), answered by the same app."""
    ollama = settings.ollama
    if not ollama.enabled or ollama.port is None:
        return None
    config = server.config
    host = config.host if ollama.require_key else "127.0.0.1"
    extra = type(config)(config.app, host=host, port=ollama.port)
    return [config.bind_socket(), extra.bind_socket()]


def cmd_serve(args: argparse.Namespace) -> int:
    from .logs import configure_logging
    from .settings import ConfigError, load_settings

    try:
        settings = load_settings(args.config)
    except ConfigError as error:
        return _fail(f"invalid configuration: {error}")
    if _nothing_configured(settings):
        return _fail(_NO_CONFIG.format(cwd=os.getcwd()))
    from .chat.turn import model_config_problems

    problems = model_config_problems(settings)
    if problems:
        return _fail(f"invalid configuration: {problems[0]}")
    host = args.host or settings.server.host
    port = args.port if args.port is not None else settings.server.port
    busy = port_in_use(host, port)
    if busy:
        return _fail(busy, EXIT_PORT_IN_USE)
    from .server import create_app  # after the config check: a broken config answers at once

    configure_logging(args.log_level or settings.server.log_level)
    report_start()
    _warn_permissions(args.config)
    import uvicorn

    server = uvicorn.Server(uvicorn_config(create_app(settings), host, port, settings, log_level=args.log_level))
    sockets = listeners(server, settings)  # the Ollama API's own port, when configured
    if sockets is None:
        run_server(server)
    else:
        run_server(server, sockets)
    return 0


_NO_CONFIG = (
    "no configuration found: looked for --config, $DS2API_CONFIG, $DS2API_CONFIG_JSON and ./config.json "
    "(in {cwd}). Copy config.example.json to config.json and put your keys and accounts in it, or run "
    "`deepseek2api demo` to try the gateway against the built-in simulator (no DeepSeek account needed)."
)


def _nothing_configured(settings: Any) -> bool:
    """No file, no inline config, no accounts and no passthrough: serving would only ever answer 401."""
    return (settings.config_path is None and not os.environ.get("DS2API_CONFIG_JSON", "").strip()
            and not settings.accounts and not settings.token_passthrough)


def _warn_permissions(path: str | None) -> None:
    from .settings import check_permissions

    path = path or os.environ.get("DS2API_CONFIG") or ("config.json" if os.path.exists("config.json") else None)
    if path and os.path.exists(path):
        warning = check_permissions(path)
        if warning:
            log.warning("%s", warning)


def port_in_use(host: str, port: int) -> str | None:
    """A one-line reason when `host:port` cannot be listened on (checked before anything starts), or None.

    uvicorn would only find out after the banner and "gateway ready", then exit with status 3."""
    if port == 0:
        return None
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds: TIME_WAIT is no obstacle
        try:
            probe.bind((host, port))
        except OSError as exc:
            why = "already in use" if exc.errno == errno.EADDRINUSE else (exc.strerror or str(exc))
            return (f"cannot listen on {host}:{port}: {why} (another gateway or program has it?); "
                    "choose another with --port or server.port")
    return None


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import build_demo_app
    from .logs import configure_logging

    busy = port_in_use(args.host, args.port)
    if busy:
        return _fail(busy, EXIT_PORT_IN_USE)

    configure_logging(args.log_level or "info")
    report_start()
    app, settings, banner = build_demo_app(host=args.host, port=args.port, accounts=args.accounts,
                                           simulator_port=args.simulator_port)
    print(banner, flush=True)
    import uvicorn

    run_server(uvicorn.Server(uvicorn_config(app, args.host, args.port, settings, log_level=args.log_level or "info")))
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    """Exit 0: config valid and every enabled account logged in; 1: some enabled account cannot be
    used; 2: the config is invalid or missing (README, Command line)."""
    from .logs import configure_logging
    from .settings import ConfigError, load_settings

    try:
        settings = load_settings(args.config)
    except ConfigError as error:
        return _fail(f"invalid configuration: {error}")
    if _nothing_configured(settings):
        return _fail(_NO_CONFIG.format(cwd=os.getcwd()))
    configure_logging(args.log_level or "warning")
    _warn_permissions(args.config)
    print(_config_source(settings.config_path))
    print(f"configuration OK: {len(settings.keys)} key(s), {len(settings.accounts)} account(s), "
          f"{len(settings.proxy_pool)} prox{'y' if len(settings.proxy_pool) == 1 else 'ies'}"
          f"{' (pool disabled)' if settings.proxy_pool and not settings.proxy_pool_enabled else ''}, "
          f"upstream {settings.upstream.base_url}")
    if args.no_login or not settings.accounts:
        return 0
    if args.live:
        return _print_live(asyncio.run(_live_reports(settings)))
    rows = asyncio.run(_check_accounts(settings))
    width = max(len("account"), *(len(r[0]) for r in rows))
    via_width = max(len("via"), *(len(r[2]) for r in rows))
    print(f"{'account'.ljust(width)}  {'state':<16} {'via'.ljust(via_width)}  detail")
    for account_id, state, via, detail in rows:
        print(f"{account_id.ljust(width)}  {state:<16} {via.ljust(via_width)}  {detail}")
    enabled = [state for _, state, _, _ in rows if state != "disabled"]
    unusable = sum(state != "ready" for state in enabled)
    print(f"{len(enabled) - unusable} of {len(enabled)} enabled account(s) usable")
    return 1 if unusable else 0


def _config_source(path: str | None) -> str:
    """Which file `check` read, so a wrong working directory or $DS2API_CONFIG shows at once."""
    inline = " merged with $DS2API_CONFIG_JSON" if os.environ.get("DS2API_CONFIG_JSON", "").strip() else ""
    if path is None:
        return "config file: none (only $DS2API_CONFIG_JSON and DS2API_* variables)"
    return f"config file: {path}{inline}"


async def _check_accounts(settings: Any) -> list[tuple[str, str, str, str]]:
    """Log in every account (through its proxy) and ask for its user record."""
    from .deepseek.client import DeepSeekClient
    from .deepseek.errors import UpstreamFailure
    from .pool.login import AccountLogin, register_secrets
    from .pool.proxies import ProxyPool, redact_proxy

    register_secrets(settings)
    client = DeepSeekClient(settings.profile(), max_clients=max(16, len(settings.accounts) + 8))
    login = AccountLogin(client)
    proxies = ProxyPool.from_settings(settings)

    async def one(account: Any) -> tuple[str, str, str, str]:
        """(account id, state, exit it used — proxy with credentials masked or "direct", detail)."""
        if not account.enabled:
            return account.id, "disabled", "-", "enabled: false in config"
        proxy = proxies.exit_for(account)
        via = redact_proxy(proxy)
        started = time.perf_counter()
        try:
            token = account.token or await login(account, proxy)
            await client.current_user(token, proxy=proxy)
        except UpstreamFailure as failure:
            return account.id, failure.kind.value, via, failure.error.message
        how = "token accepted" if account.token else "login ok"
        return account.id, "ready", via, f"{how} in {(time.perf_counter() - started) * 1000:.0f} ms"

    try:
        return list(await asyncio.gather(*(one(a) for a in settings.accounts)))
    finally:
        await client.aclose()


async def _live_reports(settings: Any) -> list[Any]:
    """`check --live`: the live probe (deepseek/probe.py) on every enabled account, one after another
    (gentle on the accounts), with the identity and the tokens the gateway itself would use: the console's
    identity and the learned or pasted tokens from the state file, else the config's token, else a login."""
    from .api.admin.upstream import UpstreamPanel
    from .deepseek.client import DeepSeekClient
    from .deepseek.errors import UpstreamFailure
    from .deepseek.probe import LiveReport, ProbeStep, probe_account
    from .logs import redactor
    from .pool.login import AccountLogin, register_secrets
    from .pool.proxies import ProxyPool
    from .pool.record import settle_fingerprint
    from .store import open_store
    from .store.runtime_settings import open_runtime_settings

    register_secrets(settings)
    client = DeepSeekClient(settings.profile(), max_clients=8)
    store = open_store(settings.state)
    runtime = open_runtime_settings(settings.state.backend, settings.state.path)
    reports: list[Any] = []
    try:
        await UpstreamPanel(client, settings.upstream.identity(), runtime).load()
        print(f"client identity: {client.profile.describe()}")
        try:
            stored = await store.load()
        except Exception as exc:  # noqa: BLE001 - the probe works from the config alone
            log.warning("could not read the state file (%s): using the config's tokens", exc)
            stored = {}
        login = AccountLogin(client)
        proxies = ProxyPool.from_settings(settings)
        for account in settings.accounts:
            if not account.enabled:
                continue
            proxy = proxies.exit_for(account)
            state = stored.get(account.id)
            token = None
            if state is not None and state.token and state.credentials:
                _, unchanged = await asyncio.to_thread(settle_fingerprint, account, state.credentials)
                token = state.token if unchanged else None
            try:
                token = token or account.token or await login(account, proxy)
            except UpstreamFailure as failure:
                reports.append(LiveReport(account.id, [ProbeStep("login", False, f"{failure.kind.value}: "
                                                                                 f"{failure.error.message}")],
                                          error_kind=failure.kind.value))
                continue
            redactor.add(token)
            reports.append(await probe_account(client, account.id, token, proxy=proxy))
    finally:
        await store.close()
        await runtime.close()
        await client.aclose()
    return reports


def _print_live(reports: list[Any]) -> int:
    """The table of `check --live`; exit 1 when any step failed on any account."""
    rows = [(r.account_id, step.name, "ok" if step.ok else "FAIL", step.detail) for r in reports for step in r.steps]
    if not rows:
        print("no enabled account to probe")
        return 1
    width = max(len("account"), *(len(r[0]) for r in rows))
    step_width = max(len("step"), *(len(r[1]) for r in rows))
    print(f"{'account'.ljust(width)}  {'step'.ljust(step_width)}  result  detail")
    for account_id, step, result, detail in rows:
        print(f"{account_id.ljust(width)}  {step.ljust(step_width)}  {result:<6}  {detail}")
    for report in reports:
        for shape in report.unknown_shapes:
            print(f"{report.account_id}: unknown stream shape: {shape} (answer decoded as before; "
                  "see docs/deepseek-changes.md)")
    failed = [r.account_id for r in reports if not r.ok]
    print(f"{len(reports) - len(failed)} of {len(reports)} account(s) passed the live probe"
          + (f"; failed: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


def cmd_simulate(args: argparse.Namespace, rest: list[str]) -> int:
    from .simulator.cli import main as simulator_main

    return simulator_main(rest)


def cmd_pow(args: argparse.Namespace) -> int:
    """Solve one challenge (given as JSON, or a random one at --difficulty) and say how long it took."""
    from .deepseek import pow as pow_module

    if args.challenge:
        try:
            challenge = pow_module.PowChallenge.from_dict(json.loads(args.challenge))
        except (ValueError, TypeError, KeyError) as error:
            return _fail(f"--challenge is not a challenge object: {error}")
    else:
        challenge = _random_challenge(args.difficulty, pow_module)
    if (args.backend or pow_module.active_backend()) == "python":
        print("deepseek2api: warning: the python backend is the pure-Python reference search, kept for tests; "
              f"it takes minutes at the default difficulty ({DEFAULT_POW_DIFFICULTY}) where native or numpy "
              "take well under a second", file=sys.stderr, flush=True)
    started = time.perf_counter()
    try:
        answer = pow_module.solve(challenge, backend=args.backend)
    except pow_module.PowError as error:
        return _fail(f"cannot solve: {error}", 1)
    elapsed = (time.perf_counter() - started) * 1000
    print(json.dumps({"answer": answer, "backend": args.backend or pow_module.active_backend(),
                      "difficulty": challenge.difficulty, "ms": round(elapsed, 1),
                      "header": pow_module.encode_pow_response(challenge, answer)}))
    return 0


def _random_challenge(difficulty: int, pow_module: Any) -> Any:
    import secrets

    salt = secrets.token_hex(10)
    expire_at = int(time.time() * 1000) + 300_000
    answer = secrets.randbelow(difficulty)
    digest = pow_module.hash_hex(f"{salt}_{expire_at}_{answer}".encode())
    return pow_module.PowChallenge(algorithm="DeepSeekHashV1", challenge=digest, salt=salt, signature="0" * 64,
                                   difficulty=difficulty, expire_at=expire_at, target_path="/api/v0/chat/completion",
                                   expire_after=300_000)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="deepseek2api",
                                     description="OpenAI-compatible gateway for DeepSeek's web chat.")
    parser.add_argument("--version", action="version", version=f"deepseek2api {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the gateway")
    serve.add_argument("--config", help="config.json path (default: $DS2API_CONFIG or ./config.json)")
    serve.add_argument("--host", help="listen address (default: server.host, 0.0.0.0)")
    serve.add_argument("--port", type=int, help="listen port (default: server.port, 5001)")
    serve.add_argument("--log-level", choices=["debug", "info", "warning", "error"])

    demo = sub.add_parser("demo", help="run the gateway against the built-in simulator (no DeepSeek account needed)")
    demo.add_argument("--host", default="127.0.0.1")
    demo.add_argument("--port", type=int, default=5001)
    demo.add_argument("--accounts", type=int, default=3, help="simulated accounts (default 3)")
    demo.add_argument("--simulator-port", type=int, default=0)
    demo.add_argument("--log-level", choices=["debug", "info", "warning", "error"])

    check = sub.add_parser("check", help="validate the config and log in every account")
    check.add_argument("--config")
    check.add_argument("--no-login", action="store_true", help="only validate the config")
    check.add_argument("--live", action="store_true",
                       help="probe every account against DeepSeek: token, model settings, session, PoW, one tiny "
                            "completion (with unknown stream shapes), session delete; exit 1 on any failure")
    check.add_argument("--log-level", choices=["debug", "info", "warning", "error"])

    sub.add_parser("simulate", help="run the DeepSeek simulator (see `deepseek2api simulate --help`)",
                   add_help=False)

    pow_parser = sub.add_parser("pow", help="solve a DeepSeekHashV1 proof-of-work challenge")
    pow_parser.add_argument("--challenge", help="the challenge object as JSON (biz_data.challenge)")
    pow_parser.add_argument("--difficulty", type=int, default=DEFAULT_POW_DIFFICULTY,
                            help=f"for a random challenge (default {DEFAULT_POW_DIFFICULTY})")
    pow_parser.add_argument("--backend", choices=["native", "numpy", "python"])
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["simulate"]:
        return cmd_simulate(argparse.Namespace(), argv[1:])
    args = build_parser().parse_args(argv)
    try:
        handler = {"serve": cmd_serve, "demo": cmd_demo, "check": cmd_check, "pow": cmd_pow}[args.command]
        return handler(args)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
