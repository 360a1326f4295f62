"""Connections that end in every way leave no thread, descriptor or nick behind."""

from __future__ import annotations

import contextlib
import os
import socket
import struct
import threading

from tests.support import Wire, running

CYCLES = 1000


def _fds() -> set[tuple[str, str]]:
    """Open descriptors with what they point at, so that a leak shows as a new entry
    even while other tests' leftovers are being collected."""
    found = set()
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(FileNotFoundError):  # the one listdir itself used
            found.add((fd, os.readlink(f"/proc/self/fd/{fd}")))
    return found


def _abrupt(sock: socket.socket) -> None:
    # SO_LINGER with a zero timeout: close sends RST.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def test_thousand_connections_leave_nothing_behind() -> None:
    with running(handshake_timeout=2.0) as server:
        Wire(server.address).close()  # warm up: the server's threads all exist now
        assert server.wait_idle(5)
        threads, fds = set(threading.enumerate()), _fds()
        for n in range(CYCLES):
            wire = Wire(server.address)
            kind = n % 5
            if kind == 0:  # clean: hello, bye
                wire.hello(f"u{n}")
                wire.request(type="join", room="lobby")
                assert wire.request(type="bye")["type"] == "ok"
                wire.close()
            elif kind == 1:  # reset after joining
                wire.hello(f"u{n}")
                wire.request(type="join", room="lobby")
                _abrupt(wire.sock)
            elif kind == 2:  # half-close after a command
                wire.hello(f"u{n}")
                wire.sock.shutdown(socket.SHUT_WR)
                wire.closed()
                wire.close()
            elif kind == 3:  # close in the middle of a frame
                wire.raw(b'{"type":"hello","nick":"half')
                _abrupt(wire.sock)
            else:  # connect and go away at once
                wire.close()
        # Connections are accepted in order: once this one is answered, all were.
        sentinel = Wire(server.address)
        sentinel.hello("sentinel")
        sentinel.close()
        assert server.wait_idle(10)
        assert _fds() - fds == set()
        assert set(threading.enumerate()) - threads == set()
        # Every nick was released and the room is empty again.
        last = Wire(server.address)
        last.hello("u1")
        assert last.request(type="members", room="lobby")["members"] == []
        last.close()
