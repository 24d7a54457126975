"""Test support for the shared pool: a real `redis-server` per test, a relay the test can cut, helpers.

The server runs on a free loopback port without persistence (`--save "" --appendonly no`) and is
stopped by its PID; `restart()` brings up an empty one on the same port (what a Redis without
persistence looks like after a crash).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Sequence
from typing import cast

import redis

from deepseek2api.pool.cluster import ClusterAccount, ClusterConfig, ClusterCoordinator
from deepseek2api.pool.cluster.membership import Membership

REDIS_SERVER = shutil.which("redis-server")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class RedisServer:
    """One redis-server process on 127.0.0.1:<port>, started and stopped by PID."""

    def __init__(self) -> None:
        assert REDIS_SERVER is not None
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="ds2api-redis-")
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        assert REDIS_SERVER is not None
        self.process = subprocess.Popen(
            [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", self.dir, "--protected-mode", "no", "--loglevel", "warning"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis(host="127.0.0.1", port=self.port, socket_connect_timeout=0.2)
        try:
            for _ in range(200):
                try:
                    if client.ping():
                        return
                except redis.exceptions.ConnectionError:
                    time.sleep(0.025)
            raise RuntimeError("redis-server did not start")
        finally:
            client.close()

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGCONT)
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self.process = None

    def kill(self) -> None:
        """SIGKILL: the data is gone (no persistence)."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(5)
            self.process = None

    def restart(self) -> None:
        self.kill()
        self.start()

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port)

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


class Relay:
    """A TCP relay between a coordinator and Redis that the test can cut (a network partition)."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.open = True

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self.open:
            writer.close()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.close()
            return
        self._writers.update((writer, up_writer))

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError, asyncio.CancelledError):
                while self.open:
                    data = await src.read(65536)
                    if not data or not self.open:
                        break
                    dst.write(data)
                    await dst.drain()
            dst.close()

        await asyncio.gather(pump(reader, up_writer), pump(up_reader, writer))

    def cut(self) -> None:
        """Drop every connection and refuse new ones (silently: the client only sees errors/timeouts)."""
        self.open = False
        for writer in list(self._writers):
            writer.close()
        self._writers.clear()

    def heal(self) -> None:
        self.open = True

    async def close(self) -> None:
        self.cut()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


def accounts(n: int, prefix: str = "acc") -> list[ClusterAccount]:
    return [ClusterAccount(id=f"{prefix}{i}", credentials=f"cred{i}") for i in range(n)]


def coordinator(
    url: str,
    config: ClusterConfig,
    accs: Sequence[ClusterAccount],
    proxies: Sequence[str] = (),
    *,
    replica: str,
    membership: Membership | None = None,
) -> ClusterCoordinator:
    return ClusterCoordinator.from_url(url, config, accs, proxies, replica_id=replica, timeout=0.5,
                                       membership=membership)


def leftover_keys(server: RedisServer, config: ClusterConfig) -> dict[str, object]:
    """What a quiet cluster should not have: leases, tickets, grants, proxy use above zero."""
    client = server.client()
    try:
        prefix = config.prefix
        tickets = list(client.scan_iter(match=prefix + "T:*"))
        grants = list(client.scan_iter(match=prefix + "G:*"))
        proxy_use = client.zrange(prefix + "P", 0, -1, withscores=True)
        return {
            "leases": client.zcard(prefix + "exp"),
            "lease_info": client.hlen(prefix + "LI"),
            "queue": client.zcard(prefix + "Q"),
            "tickets": len(tickets),
            "grants": len(grants),
            "proxy_use": sum(score for _, score in cast(list[tuple[bytes, float]], proxy_use)),
        }
    finally:
        client.close()


NOTHING_LEFT = {"leases": 0, "lease_info": 0, "queue": 0, "tickets": 0, "grants": 0, "proxy_use": 0}
