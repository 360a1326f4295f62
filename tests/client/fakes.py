"""A scripted server, for what a real one does only by chance or never.

Each accepted connection runs the next script, a function that talks to the
client through a `Peer` (on `chatproto.ServerConnection`, so the script
cannot send what the protocol forbids). A failed script fails the test.
"""

from __future__ import annotations

import socket
import threading
from collections import deque
from collections.abc import Callable
from types import TracebackType
from typing import TypeVar

from chatproto import (
    Command,
    Event,
    Hello,
    Limits,
    Pong,
    Rejected,
    RoomMessage,
    ServerConnection,
    Welcome,
)

C = TypeVar("C")

LIMITS = Limits(
    max_frame=65536,
    max_text=4000,
    rate=1000.0,
    burst=1000,
    history=20,
    ping_interval=30.0,
    ping_timeout=30.0,
)


def message(mid: int, room: str = "lobby") -> RoomMessage:
    return RoomMessage(id=mid, room=room, nick="bob", text=f"m{mid}", ts=1_700_000_000_000 + mid)


class Peer:
    """The server's side of one scripted connection."""

    def __init__(self, sock: socket.socket, stop: threading.Event) -> None:
        self.sock = sock
        self.conn = ServerConnection()
        self._stop = stop
        self._commands: deque[Command] = deque()
        sock.settimeout(0.05)

    def expect(self, kind: type[C]) -> C:
        """The client's next command (pongs skipped), which must be a `kind`."""
        while not self._commands:
            if self._stop.is_set():
                raise EOFError("the test ended")
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                continue
            if not data:
                raise EOFError("the client hung up")
            for item in self.conn.receive_data(data):
                assert not isinstance(item, Rejected), item
                if not isinstance(item, Pong):
                    self._commands.append(item)
        command = self._commands.popleft()
        assert isinstance(command, kind), f"expected {kind.__name__}, got {command!r}"
        return command

    def send(self, *events: Event) -> None:
        self.sock.sendall(b"".join(self.conn.send(event) for event in events))

    def welcome(self, *, epoch: str | None = None, resume: str | None = None) -> Hello:
        hello = self.expect(Hello)
        self.send(
            Welcome(
                ref=hello.id,
                session="fake",
                nick=hello.nick,
                server="fake",
                version="1.3" if epoch or resume else "1.0",
                limits=LIMITS,
                epoch=epoch,
                resume=resume,
            )
        )
        return hello

    def idle(self) -> None:
        """Read and ignore commands until the client hangs up or the test ends."""
        try:
            while True:
                self.expect(object)
        except EOFError:
            return


Script = Callable[[Peer], None]


class ScriptedServer:
    """Runs one script per connection, in order of arrival."""

    def __init__(self, *scripts: Script) -> None:
        self._scripts = list(scripts)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.05)
        self.port: int = self._listener.getsockname()[1]
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self.finished = threading.Event()
        self.accepted = threading.Event()  # set at the first connection
        self._thread = threading.Thread(target=self._serve, name="chat-scripted", daemon=True)

    def __enter__(self) -> ScriptedServer:
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join(5)
        self._listener.close()
        if self._error is not None and exc is None:
            raise AssertionError(f"the scripted server failed: {self._error!r}") from self._error

    def _serve(self) -> None:
        try:
            for script in self._scripts:
                while True:
                    if self._stop.is_set():
                        return
                    try:
                        sock, _ = self._listener.accept()
                        self.accepted.set()
                        break
                    except TimeoutError:
                        continue
                with sock:
                    script(Peer(sock, self._stop))
            self.finished.set()
        except EOFError:
            return
        except BaseException as exc:
            self._error = exc


def silent(peer: Peer) -> None:
    """Welcome the client, then never answer anything."""
    peer.welcome()
    peer.idle()


def hang_up(peer: Peer) -> None:
    """Welcome the client, then close the connection at its first command."""
    peer.welcome()
    peer.expect(object)
