"""A real redis-server for cluster tests: own port, own directory, stopped by PID.

Without the `redis-server` binary the cluster tests are skipped with a note on
how to install it, except where the `CI` variable is set: there they fail.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import redis

from chatserver.config import ServerConfig
from chatserver.server import ChatServer

BINARY = "redis-server"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def need_redis() -> str:
    """The path of redis-server, or skip (fail under CI) without it."""
    path = shutil.which(BINARY) or next(
        (p for p in ("/usr/bin/redis-server", "/usr/sbin/redis-server") if Path(p).exists()), None
    )
    if path is None:
        message = "redis-server not found: install it with `apt-get install redis-server`"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


class RedisProcess:
    """One redis-server with append-only persistence in `directory`; restartable."""

    def __init__(self, directory: Path) -> None:
        self.binary = need_redis()
        self.directory = directory
        self.port = _free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                self.binary,
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--dir",
                str(self.directory),
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--daemonize",
                "no",
                "--protected-mode",
                "yes",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=1)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.exceptions.RedisError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise RuntimeError("redis-server did not start") from None
                time.sleep(0.02)
        client.close()

    def stop(self) -> None:
        """Stop the server (SIGTERM to our own PID) and wait for it."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def client(self) -> Any:
        return redis.Redis(host="127.0.0.1", port=self.port, decode_responses=True)


@contextmanager
def redis_server(directory: Path) -> Iterator[RedisProcess]:
    server = RedisProcess(directory)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@contextmanager
def node(redis_url: str, **settings: Any) -> Iterator[ChatServer]:
    """A cluster node on 127.0.0.1, port 0, sharing `redis_url`."""
    config = ServerConfig(host="127.0.0.1", port=0, redis_url=redis_url, **settings)
    server = ChatServer(config).start()
    try:
        yield server
    finally:
        with contextlib.suppress(Exception):
            server.shutdown()
