"""A TCP relay between clients and a server, which a test can cut on the client's side only.

Cutting closes the sockets towards the clients and leaves those towards the
server open and unread: the server keeps a ghost session, as when a client's
network dies without a word. `hold` stops passing the server's bytes on,
so that a request reaches the server but its reply never reaches the client.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from types import TracebackType


class Proxy:
    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.05)
        self.port: int = self._listener.getsockname()[1]
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._downstream: list[socket.socket] = []
        self._upstream: list[socket.socket] = []
        self._held = threading.Event()
        self._holding = threading.Event()  # a relay of the server's bytes has stopped
        self._threads: list[threading.Thread] = []
        self._accepting = threading.Thread(target=self._accept, name="chat-proxy", daemon=True)

    def __enter__(self) -> Proxy:
        self._accepting.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        self._accepting.join(5)
        self._listener.close()
        with self._lock:
            for sock in self._downstream + self._upstream:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
        for thread in self._threads:
            thread.join(5)

    def hold(self) -> None:
        """From now on, the server's bytes are not passed on (nor read).

        Returns once the relay has stopped: a read it had under way when
        called may still have passed on what arrived by then, nothing later.
        """
        self._holding.clear()
        self._held.set()
        if not self._holding.wait(5):
            raise AssertionError("the relay did not stop")

    def cut(self) -> None:
        """Close every client's side; the server's side stays open, unread (a ghost)."""
        with self._lock:
            doomed, self._downstream = self._downstream, []
        for sock in doomed:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        self._held.clear()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                down, _ = self._listener.accept()
            except TimeoutError:
                continue
            up = socket.create_connection(self.target)
            with self._lock:
                self._downstream.append(down)
                self._upstream.append(up)
            for source, sink, held in ((down, up, None), (up, down, self._held)):
                thread = threading.Thread(
                    target=self._pump, args=(source, sink, held), name="chat-proxy", daemon=True
                )
                self._threads.append(thread)
                thread.start()

    def _pump(
        self, source: socket.socket, sink: socket.socket, held: threading.Event | None
    ) -> None:
        source.settimeout(0.05)
        while not self._stop.is_set():
            if held is not None and held.is_set():
                self._holding.set()
                if self._closed(sink):
                    return  # cut while held: the server's side is a ghost now
                held.wait(0.05)
                continue
            try:
                data = source.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return
            if not data:
                return
            try:
                sink.sendall(data)
            except OSError:
                return

    @staticmethod
    def _closed(sock: socket.socket) -> bool:
        return sock.fileno() == -1
