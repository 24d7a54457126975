"""Clients that stop reading a stream: how long they hold accounts, and gateway memory.

Two raw sockets with tiny receive buffers (SO_RCVBUF 1 KiB) send a streaming request for a long reply
to a 2-account gateway and never read. For `--hold` seconds the script samples the leased accounts
(`/admin/status`), the gateway's RSS, and whether a third, normal request gets served (200) or refused
(429). Then it closes the sockets. Rows:
- "before": the tree at `--before` (default `main`, exported with `git archive`), which has no write timeout;
- "after": this tree with `server.write_timeout` = `--timeout` (default 5 s).

    python bench/write_timeout.py [--hold 20] [--timeout 5] [--before main] [--words 200000]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import (
    API_KEY,
    HOST,
    ROOT,
    Gateway,
    Simulator,
    _http_json,
    machine_line,
    table,
)


def _stalled(port: int, words: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
    sock.connect((HOST, port))
    body = json.dumps({"model": "deepseek-chat", "stream": True,
                       "messages": [{"role": "user", "content": f"long [sim:words={words}]"}]}).encode()
    sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nhost: bench\r\ncontent-type: application/json\r\n"
                 + f"authorization: Bearer {API_KEY}\r\ncontent-length: {len(body)}\r\n\r\n".encode() + body)
    return sock


def _leases(gateway: Gateway) -> int:
    status, body = _http_json("GET", f"{gateway.base_url}/admin/status",
                              headers={"authorization": f"Bearer {API_KEY}"})
    return int(body["leases_out"]) if status == 200 else -1


def _probe(gateway: Gateway) -> int:
    status, _ = _http_json("POST", f"{gateway.base_url}/v1/chat/completions",
                           {"model": "deepseek-chat", "messages": [{"role": "user", "content": "probe"}]},
                           headers={"authorization": f"Bearer {API_KEY}"}, timeout=60)
    return status


def run_row(name: str, src: str | None, overrides: dict[str, Any], hold: float, words: int) -> list[object]:
    if src is not None:
        os.environ["BENCH_GATEWAY_SRC"] = src
    else:
        os.environ.pop("BENCH_GATEWAY_SRC", None)
    with Simulator(2) as simulator:
        gateway = Gateway(simulator, pool={"queue_timeout": 1.0}, **overrides)
        with gateway:
            _probe(gateway)  # warm: tokenizer loaded, both accounts logged in
            _probe(gateway)
            idle = gateway.stats.rss_mb()
            sockets = [_stalled(gateway.port, words) for _ in range(2)]
            started = time.monotonic()
            freed_at: float | None = None
            peak = idle
            statuses: list[int] = []
            done = threading.Event()

            def probe_every_2s() -> None:  # a normal user next to the stalled ones
                while not done.wait(2.0):
                    statuses.append(_probe(gateway))

            prober = threading.Thread(target=probe_every_2s)
            prober.start()
            try:
                while time.monotonic() - started < hold:
                    peak = max(peak, gateway.stats.rss_mb())
                    leased = _leases(gateway)
                    if freed_at is None and leased == 0 and time.monotonic() - started > 0.5:
                        freed_at = time.monotonic() - started
                    time.sleep(0.1)
                held_rss = gateway.stats.rss_mb()
                still = _leases(gateway)
            finally:
                done.set()
                prober.join()
                for sock in sockets:
                    sock.close()
            served, refused = statuses.count(200), statuses.count(429)
            time.sleep(1.0)
            after = gateway.stats.rss_mb()
    freed = f"{freed_at:.1f} s" if freed_at is not None else f"> {hold:g} s ({still} still leased)"
    return [name, freed, f"{served} / {refused}", f"{idle:.0f} / {peak:.0f} / {held_rss:.0f} / {after:.0f}"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hold", type=float, default=20.0, help="seconds the sockets stay open unread")
    parser.add_argument("--timeout", type=float, default=5.0, help="server.write_timeout of the 'after' row")
    parser.add_argument("--before", default="main", help="git revision of the 'before' row ('' to skip)")
    parser.add_argument("--words", type=int, default=200_000, help="length of the stalled replies")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="ds2api-before-") as before_dir:
        if args.before:
            archive = subprocess.run(["git", "-C", str(ROOT), "archive", args.before, "src"],
                                     check=True, capture_output=True).stdout
            subprocess.run(["tar", "-x", "-C", before_dir], input=archive, check=True)  # PoW difficulty is tiny
            rows.append(run_row(f"before ({args.before}, no write timeout)", str(Path(before_dir) / "src"), {},
                                args.hold, args.words))
        rows.append(run_row(f"after (write_timeout {args.timeout:g} s)", None,
                            {"server": {"write_timeout": args.timeout}}, args.hold, args.words))
    print(machine_line())
    print(f"2 accounts, 2 stalled streams (SO_RCVBUF 1 KiB, {args.words} words each), held {args.hold:g} s\n")
    header = ["row", "accounts back after", "probe requests 200 / 429", "gateway RSS MB idle / peak / held / closed"]
    print(table(header, rows))


if __name__ == "__main__":
    main()
