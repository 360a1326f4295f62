"""Admitting connections: idle sockets that never say hello cannot lock anyone out
(issue 11 item 9a), and a reader thread that cannot start costs only its client
(item 9). Real sockets, from several loopback addresses."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from chatserver.server import ChatServer
from chatserver.store import MemoryStore
from tests.support import WAIT, Wire, login, running

ROOT = Path(__file__).resolve().parent.parent


def _idle(address: tuple[str, int], source: str) -> Wire:
    """A connection that says nothing."""
    return Wire(address, source=source)


def _counted(server: ChatServer, count: int) -> None:
    """Wait until the server counts `count` connections in the handshake (the
    listener accepts on its own thread)."""
    deadline = time.monotonic() + WAIT
    while len(server.gate) != count:
        assert time.monotonic() < deadline, f"{len(server.gate)} in the handshake, not {count}"
        time.sleep(0.01)


def test_an_address_with_idle_sockets_gets_no_more_and_others_get_in() -> None:
    with running(max_handshaking_per_address=2, max_handshaking=100) as server:
        idle = [_idle(server.address, "127.0.0.2") for _ in range(2)]
        _counted(server, 2)
        third = Wire(server.address, source="127.0.0.2")
        assert [(f["code"], f["fatal"]) for f in third.closed()] == [("too_many_connections", True)]
        # Another address is not affected.
        assert login(server, "elsewhere").request(type="ping")["type"] == "pong"
        # Saying hello frees the slot.
        assert idle[0].hello("talker")["type"] == "welcome"
        _counted(server, 1)
        fourth = Wire(server.address, source="127.0.0.2")
        assert fourth.hello("fourth")["type"] == "welcome"


def test_when_the_handshake_is_full_the_oldest_idle_socket_makes_room() -> None:
    with running(max_handshaking=4, max_handshaking_per_address=2, max_clients=6) as server:
        idle = [_idle(server.address, f"127.0.0.{2 + n // 2}") for n in range(4)]
        _counted(server, 4)
        newcomer = Wire(server.address, source="127.0.0.9")
        assert newcomer.hello("newcomer")["type"] == "welcome"
        frames = idle[0].closed()
        assert [(f["code"], f["fatal"]) for f in frames] == [("server_full", True)]
        for wire in idle[1:]:
            assert wire.hello(f"late{idle.index(wire)}")["type"] == "welcome"


def test_many_idle_addresses_cannot_fill_max_clients() -> None:
    """16 addresses each with sockets that never say hello: a client that says
    hello still gets in, every time."""
    with running(max_handshaking=8, max_handshaking_per_address=4, max_clients=16) as server:
        idle = []
        for round_ in range(3):
            for n in range(16):
                idle.append(_idle(server.address, f"127.0.1.{n + 1}"))
            wire = Wire(server.address, source="127.0.2.1")
            assert wire.hello(f"legit{round_}")["type"] == "welcome", round_
        for wire in idle:
            wire.close()


def _fail_once(real: Callable[..., threading.Thread]) -> Callable[..., threading.Thread]:
    failed = threading.Event()

    def start(target: Callable[[], None], name: str) -> threading.Thread:
        if name.startswith("chat-reader") and not failed.is_set():
            failed.set()
            raise RuntimeError("can't start new thread")
        return real(target, name)

    return start


class _Store(MemoryStore):
    closed = False

    def close(self) -> None:
        self.closed = True
        super().close()


def test_a_reader_thread_that_cannot_start_costs_only_its_client() -> None:
    store = _Store()
    with running(store, max_clients=3, max_per_address=3) as server:
        bystander = login(server, "bystander")
        listener = server.listener
        listener.start_thread = _fail_once(listener.start_thread)
        unlucky = Wire(server.address)
        assert [(f["code"], f["fatal"]) for f in unlucky.closed()] == [("server_full", True)]
        # Nothing stays counted for it: two more clients fit in max_clients=3.
        assert len(server.gate) == 0
        with server.hub.lock:
            assert len(server.hub.sessions) == 1
        second, third = login(server, "second"), login(server, "third")
        assert second.request(type="ping")["type"] == "pong"
        assert third.request(type="ping")["type"] == "pong"
        assert bystander.request(type="ping")["type"] == "pong"
    assert store.closed


def test_shutdown_closes_the_store_whatever_fails_on_the_way() -> None:
    store = _Store()
    with running(store) as server:
        login(server, "someone")

        def broken() -> None:
            raise RuntimeError("stop failed")

        server.backend.stop = broken  # type: ignore[method-assign]
    assert store.closed


def test_refused_connections_release_their_handshake_slot() -> None:
    count = 3
    with running(max_clients=1, max_handshaking=count) as server:
        first = login(server, "first")
        for _ in range(count * 3):
            refused = Wire(server.address)
            assert [f["code"] for f in refused.closed()] == ["server_full"]
        _counted(server, 0)
        assert first.request(type="ping")["type"] == "pong"


def test_a_server_process_that_could_not_start_a_reader_still_exits_0(tmp_path: Path) -> None:
    """The same failure in a real process: it goes on serving, and SIGTERM stops it
    with exit status 0 and its SQLite file closed (a clean WAL checkpoint)."""
    db = tmp_path / "chat.db"
    code = (
        "import sys, threading\n"
        "from chatserver.listener import Listener\n"
        "real, failed = Listener.start_thread, threading.Event()\n"
        "def start(target, name):\n"
        "    if name.startswith('chat-reader') and not failed.is_set():\n"
        "        failed.set()\n"
        '        raise RuntimeError("can\'t start new thread")\n'
        "    return real(target, name)\n"
        "Listener.start_thread = staticmethod(start)\n"
        "from chatserver.cli import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code, "--port", "0", "--db", str(db), "--log-level", "ERROR"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        match = re.search(r"listening on ([\d.]+):(\d+)", proc.stdout.readline())
        assert match
        address = (match.group(1), int(match.group(2)))
        unlucky = Wire(address)
        assert [f["code"] for f in unlucky.closed()] == ["server_full"]
        wire = Wire(address)
        assert wire.hello("after")["type"] == "welcome"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
        if proc.stdout is not None:
            proc.stdout.close()
    assert not (tmp_path / "chat.db-wal").exists() or (tmp_path / "chat.db-wal").stat().st_size == 0


_NPROC = ("prlimit", "setpriv")


@pytest.mark.skipif(
    os.geteuid() != 0 or any(shutil.which(tool) is None for tool in _NPROC),
    reason="needs root, prlimit and setpriv (to run the server as a user of its own)",
)
def test_under_a_real_thread_limit_refused_clients_cost_nothing(tmp_path: Path) -> None:
    """The fault itself: the server runs under RLIMIT_NPROC as `nobody` (the limit
    does not bind root, and counts every process of its user), so starting reader
    threads fails."""
    command = [
        *("prlimit", "--nproc=12"),
        *("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"),
        *(sys.executable, "-m", "chatserver", "--port", "0", "--store", "memory"),
        *("--log-level", "ERROR"),
    ]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert proc.stdout is not None
        match = re.search(r"listening on ([\d.]+):(\d+)", proc.stdout.readline())
        assert match
        address = (match.group(1), int(match.group(2)))
        welcomed: list[Wire] = []
        refused = 0
        for n in range(20):
            wire = Wire(address)
            wire.send(type="hello", nick=f"n{n}")
            reply = wire.recv()
            assert reply is not None
            if reply["type"] == "welcome":
                welcomed.append(wire)
            else:
                assert (reply["code"], reply["fatal"]) == ("server_full", True)
                refused += 1
        assert welcomed and refused, (len(welcomed), refused)
        # Room again as soon as clients leave: nothing stayed counted, and the
        # listener is still accepting.
        for wire in welcomed:
            assert wire.request(type="bye")["type"] == "ok"
            wire.closed()
        deadline = time.monotonic() + WAIT
        while True:
            late = Wire(address)
            late.send(type="hello", nick="late")
            reply = late.recv()
            if reply is not None and reply["type"] == "welcome":
                break
            assert time.monotonic() < deadline, "no room after every client left"
            time.sleep(0.05)  # the readers' threads take a moment to end
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
        if proc.stdout is not None:
            proc.stdout.close()
