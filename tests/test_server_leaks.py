"""Connections that end in every way leave no thread, descriptor or nick behind."""

from __future__ import annotations

import os
import socket
import struct
import threading
import time

from tests.support import Wire, running

CYCLES = 1000


def _fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def _abrupt(sock: socket.socket) -> None:
    # SO_LINGER with a zero timeout: close sends RST.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def test_thousand_connections_leave_nothing_behind() -> None:
    with running(handshake_timeout=2.0) as server:
        Wire(server.address).close()  # warm up: the server's threads all exist now
        assert server.wait_idle(5)
        threads, fds = threading.active_count(), _fds()
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
        assert server.wait_idle(10)
        deadline = time.monotonic() + 5
        while _fds() > fds and time.monotonic() < deadline:
            time.sleep(0.01)  # the writer closes descriptors just after the readers end
        assert _fds() == fds
        assert threading.active_count() == threads
        # Every nick was released and the room is empty again.
        last = Wire(server.address)
        last.hello("u1")
        assert last.request(type="members", room="lobby")["members"] == []
        last.close()
