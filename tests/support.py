"""Test helpers: in-process servers on port 0 and a raw wire client."""

from __future__ import annotations

import contextlib
import json
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from chatserver.config import ServerConfig
from chatserver.server import ChatServer
from chatserver.store import MemoryStore, Store

WAIT = 5.0


@contextmanager
def running(store: Store | None = None, **settings: Any) -> Iterator[ChatServer]:
    """A server on 127.0.0.1, port 0, shut down afterwards."""
    config = ServerConfig(host="127.0.0.1", port=0, **settings)
    server = ChatServer(config, store if store is not None else MemoryStore()).start()
    try:
        yield server
    finally:
        server.shutdown()


class FrameReader:
    """Waiting for frames, whatever carries them: a subclass supplies `recv`."""

    def recv(self, timeout: float = WAIT) -> dict[str, Any] | None:
        raise NotImplementedError

    def _closed_note(self) -> str:
        return "closed"

    def until(
        self, match: Callable[[dict[str, Any]], bool], timeout: float = WAIT
    ) -> dict[str, Any]:
        """Skip frames until one matches."""
        deadline = time.monotonic() + timeout
        while True:
            frame = self.recv(max(0.01, deadline - time.monotonic()))
            if frame is None:
                raise ConnectionError(f"{self._closed_note()} before the expected frame")
            if match(frame):
                return frame

    def closed(self, timeout: float = WAIT) -> list[dict[str, Any]]:
        """Read to the end of the stream; return the frames on the way."""
        frames = []
        while (frame := self.recv(timeout)) is not None:
            frames.append(frame)
        return frames


class Wire(FrameReader):
    """A client that speaks raw JSON lines, for tests that need the bare wire."""

    def __init__(
        self,
        address: tuple[str, int],
        *,
        nodelay: bool = True,
        rcvbuf: int | None = None,
        source: str | None = None,
    ) -> None:
        """`source`: the loopback address to connect from (127.0.0.1 by default)."""
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        if source is not None:
            self.sock.bind((source, 0))
        self.sock.settimeout(WAIT)
        self.sock.connect(address)
        if nodelay:
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._buf = b""
        self._ids = 0

    def send(self, **frame: Any) -> None:
        self.sock.sendall(json.dumps(frame).encode() + b"\n")

    def raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def request(self, **frame: Any) -> dict[str, Any]:
        """Send a command with a fresh id and return the frame that answers it."""
        self._ids += 1
        rid = f"r{self._ids}"
        self.send(id=rid, **frame)
        return self.until(lambda f: f.get("ref") == rid)

    def recv(self, timeout: float = WAIT) -> dict[str, Any] | None:
        """The next frame, or None at end of stream."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buf:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("no frame in time")
            self.sock.settimeout(remaining)
            try:
                data = self.sock.recv(65536)
            except ConnectionResetError:
                return None
            if not data:
                return None
            self._buf += data
        line, self._buf = self._buf.split(b"\n", 1)
        frame: dict[str, Any] = json.loads(line)
        return frame

    def hello(self, nick: str, **extra: Any) -> dict[str, Any]:
        return self.request(type="hello", nick=nick, **extra)

    def close(self) -> None:
        self.sock.close()


class Collector(threading.Thread):
    """Reads a client's frames in the background; tests wait on what it has seen."""

    def __init__(self, wire: Wire) -> None:
        super().__init__(daemon=True)
        self.wire = wire
        self.frames: list[dict[str, Any]] = []
        self._seen = threading.Condition()
        self.start()

    def run(self) -> None:
        with contextlib.suppress(OSError, TimeoutError):
            while (frame := self.wire.recv(60)) is not None:
                with self._seen:
                    self.frames.append(frame)
                    self._seen.notify_all()

    def wait_for(
        self, match: Callable[[list[dict[str, Any]]], bool], timeout: float = WAIT
    ) -> None:
        with self._seen:
            assert self._seen.wait_for(lambda: match(self.frames), timeout), "not seen in time"

    def snapshot(self) -> list[dict[str, Any]]:
        with self._seen:
            return list(self.frames)


def login(server: ChatServer, nick: str, *rooms: str) -> Wire:
    """A connected, welcomed client in `rooms`."""
    wire = Wire(server.address)
    assert wire.hello(nick)["type"] == "welcome"
    for room in rooms:
        assert wire.request(type="join", room=room)["type"] == "joined"
    return wire


@contextmanager
def listening_process(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> Iterator[tuple[subprocess.Popen[str], str, tuple[str, int]]]:
    """`python -m chatserver` on a free port: the process, the line that says where
    it listens, and that address; killed by its PID if still running."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "chatserver", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
        cwd=cwd,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        match = re.search(r"listening on ([\d.]+):(\d+)", line)
        assert match, f"unexpected first line {line!r}"
        yield proc, line, (match.group(1), int(match.group(2)))
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)
        if proc.stdout is not None:
            proc.stdout.close()


@contextmanager
def server_process(*args: str) -> Iterator[tuple[subprocess.Popen[str], tuple[str, int]]]:
    """`python -m chatserver` on a free port, logging warnings only."""
    with listening_process("--log-level", "WARNING", *args) as (proc, _, address):
        yield proc, address


def assert_one_order(orders: list[list[tuple[int, str, str]]], senders: int, each: int) -> None:
    """Every receiver's (id, nick, text) list is the same complete order, with ids
    strictly increasing and each sender `s<i>`'s texts `<i>:<n>` in the order sent."""
    first = orders[0]
    ids = [m[0] for m in first]
    assert ids == sorted(set(ids)), "ids must strictly increase, without repeats"
    assert {text for _, _, text in first} == {
        f"{i}:{n}" for i in range(senders) for n in range(each)
    }
    for other in orders[1:]:
        assert other == first
    for i in range(senders):
        mine = [text for _, nick, text in first if nick == f"s{i}"]
        assert mine == [f"{i}:{n}" for n in range(each)]
