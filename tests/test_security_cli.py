"""The server password as people set it: `--password` or CHAT_SERVER_PASSWORD."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.support import Wire

ENV = "CHAT_SERVER_PASSWORD"


@contextmanager
def server(log: Path, *args: str, password_env: str | None = None) -> Iterator[tuple[str, int]]:
    """`python -m chatserver` on a free port with a memory store; stopped by its PID."""
    env = {k: v for k, v in os.environ.items() if k != ENV}
    if password_env is not None:
        env[ENV] = password_env
    with log.open("w") as errors:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "chatserver",
                "--port",
                "0",
                "--store",
                "memory",
                "--log-level",
                "DEBUG",
                *args,
            ],
            stdout=subprocess.PIPE,
            stderr=errors,
            text=True,
            env=env,
        )
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            match = re.search(r"listening on ([\d.]+):(\d+)", line)
            assert match, f"unexpected first line {line!r}"
            yield match.group(1), int(match.group(2))
        finally:
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(5)
                except subprocess.TimeoutExpired:
                    os.kill(proc.pid, signal.SIGKILL)
                    proc.wait(5)
            if proc.stdout is not None:
                proc.stdout.close()


def _needs(address: tuple[str, int], password: str) -> None:
    """The server at `address` admits only a hello carrying `password`."""
    for extra in ({}, {"server_password": "not-" + password}):
        wire = Wire(address)
        reply = wire.hello("alice", **extra)
        assert reply["type"] == "error", reply
        assert (reply["code"], reply["fatal"]) == ("auth_failed", True), reply
        assert wire.closed() == []
        wire.close()
    wire = Wire(address)
    assert wire.hello("alice", server_password=password)["type"] == "welcome"
    assert wire.request(type="bye")["type"] == "ok"
    wire.close()


def test_password_flag(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    with server(log, "--password", "flag-pw-1") as address:
        _needs(address, "flag-pw-1")
    text = log.read_text()
    assert "wrong or missing server password" in text
    assert "flag-pw-1" not in text


def test_password_environment_variable(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    with server(log, password_env="env-pw-2") as address:
        _needs(address, "env-pw-2")
    text = log.read_text()
    assert "wrong or missing server password" in text
    assert "env-pw-2" not in text
