"""One TCP connection: its socket, its TLS session if any, its protocol state
machine, events read ahead, and frames waiting to be written.

A `Client` lives across many links (one per reconnection). The link only
moves bytes and decodes them; what the events mean is the session's business.

Writes go through a bounded queue drained by the link's own sender thread,
so that no caller ever blocks in `sendall`: a server that stops reading
fills the queue, callers wait for room only until their own deadline, and
the reader (which answers pings) never waits at all.
"""

from __future__ import annotations

import contextlib
import errno
import os
import select
import socket
import ssl
import threading
import time
from collections import deque

from chatclient.errors import ClientClosed, ConnectionLost, RequestTimeout
from chatclient.tls import TlsSession
from chatproto import ClientConnection, Command, Event

__all__ = ["Link", "connect_socket"]

_RECV_SIZE = 65536
_POLL = 0.05  # how often a pending connect looks at its cancel flag
# Bytes queued for the sender beyond which callers wait for room (one frame may overshoot).
OUTBOX_BYTES = 256 * 1024
_SENDER_EXIT = 1.0  # seconds a closing link waits for its sender thread, at most


def connect_socket(host: str, port: int, timeout: float, cancel: threading.Event) -> socket.socket:
    """A connected TCP socket (blocking, TCP_NODELAY); `cancel` aborts the attempt.

    Connects without blocking so that `close()` need not wait out a connect
    to a host that does not answer.
    """
    deadline = time.monotonic() + timeout
    last: OSError | None = None
    for family, kind, proto, _, addr in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM):
        sock = socket.socket(family, kind, proto)
        try:
            sock.setblocking(False)
            code = sock.connect_ex(addr)
            while code in (errno.EINPROGRESS, errno.EWOULDBLOCK, errno.EALREADY):
                if cancel.is_set():
                    raise ClientClosed("the client was closed while connecting")
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"connecting to {host}:{port} timed out")
                _, writable, _ = select.select([], [sock], [], min(remaining, _POLL))
                if writable:
                    code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if code:
                raise OSError(code, os.strerror(code))
            sock.setblocking(True)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return sock
        except ClientClosed:
            sock.close()
            raise
        except OSError as exc:
            sock.close()
            last = exc
    raise last or OSError(f"no address found for {host}:{port}")


class Link:
    """A connected socket, its TLS session if any, and its `ClientConnection`.

    `send` and `send_nowait` may be called from any thread; `next_event`
    only from the one thread that reads.
    """

    def __init__(
        self, sock: socket.socket, tls: TlsSession | None = None, name: str = "chatclient"
    ) -> None:
        self.sock = sock
        self.tls = tls
        self.protocol = ClientConnection()
        self._backlog: deque[Event] = deque()
        # Guards the protocol object and the outgoing queue: encoding a frame
        # and queueing it happen together, so frames leave in encoding order.
        self._cond = threading.Condition()
        self._outgoing: deque[bytes] = deque()
        self._queued = 0  # bytes in _outgoing
        self._ended: str | None = None  # why nothing more can be sent
        # Plain text that came in with the end of the TLS handshake.
        self._early = tls.decrypt(b"") if tls is not None else b""
        self._sender = threading.Thread(target=self._drain, name=f"{name}-send", daemon=True)
        self._sender.start()

    @classmethod
    def open(
        cls,
        host: str,
        port: int,
        timeout: float,
        cancel: threading.Event,
        tls: ssl.SSLContext | None = None,
        *,
        name: str = "chatclient",
    ) -> Link:
        """Connect, and with `tls` complete the TLS handshake, all within `timeout`.

        The server's certificate must be valid for `host`, unless the context
        checks nothing. `name` names the sender thread. Raises `TlsError`
        (`TlsCertificateError`), `OSError`, `TimeoutError` or `ClientClosed`.
        """
        deadline = time.monotonic() + timeout
        sock = connect_socket(host, port, timeout, cancel)
        if tls is None:
            return cls(sock, name=name)
        try:
            session = TlsSession(tls, host)
            session.handshake(sock, f"{host}:{port}", deadline, cancel)
            return cls(sock, session, name)
        except BaseException:
            sock.close()
            raise

    # -- writing ---------------------------------------------------------------

    def send(self, command: Command, deadline: float | None = None) -> None:
        """Encode `command` and queue it, waiting for room until `deadline` (monotonic).

        Raises `LocalProtocolError`, `RequestTimeout` if the queue stayed full
        (the command was not sent), or `ConnectionLost` once the link ended.
        """
        with self._cond:
            while self._ended is None and self._queued >= OUTBOX_BYTES:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise RequestTimeout("the server is not reading: nothing more can be sent")
                self._cond.wait(remaining)
            self._queue(self.protocol.send(command))

    def send_nowait(self, command: Command) -> bool:
        """Queue `command` only if there is room at once; whether it was queued."""
        with self._cond:
            if self._ended is not None or self._queued >= OUTBOX_BYTES:
                return False
            self._queue(self.protocol.send(command))
            return True

    def _queue(self, data: bytes) -> None:
        if self._ended is not None:
            raise ConnectionLost(self._ended)
        self._outgoing.append(data)
        self._queued += len(data)
        self._cond.notify_all()

    def _drain(self) -> None:
        """The sender thread: write queued frames in order until the link ends."""
        while True:
            with self._cond:
                while not self._outgoing and self._ended is None:
                    self._cond.wait()
                if self._ended is not None:
                    return
                data = self._outgoing[0]
            try:
                if self.tls is None:
                    self.sock.sendall(data)
                else:
                    self.tls.seal(self.sock, data)
            except OSError as exc:
                self._end(f"cannot send: {exc}")
                self.shutdown()  # the reader sees the end of the stream
                return
            with self._cond:
                if self._outgoing:
                    self._outgoing.popleft()
                    self._queued -= len(data)
                self._cond.notify_all()

    def _end(self, why: str) -> None:
        with self._cond:
            if self._ended is None:
                self._ended = why
            self._outgoing.clear()
            self._queued = 0
            self._cond.notify_all()

    def flushed(self, deadline: float) -> bool:
        """Wait until every queued frame was written (or the link ended), until `deadline`."""
        with self._cond:
            while self._outgoing and self._ended is None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
            return self._ended is None

    # -- reading ---------------------------------------------------------------

    def next_event(self, deadline: float | None = None) -> Event:
        """The next event from the server, waiting until `deadline` (monotonic) at most.

        Raises `ConnectionLost` at the end of the stream (`TlsError` if TLS
        failed), `RequestTimeout` at the deadline, `OSError`, or
        `RemoteProtocolError` if the server broke the protocol.
        """
        if self._early:
            early, self._early = self._early, b""
            self._take(early)
        while not self._backlog:
            if self.tls is not None and self.tls.closed:
                raise ConnectionLost("the server closed the connection")
            if deadline is not None:
                # select, not a socket timeout: the timeout would apply to the
                # sender thread's writes on the same socket too.
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise RequestTimeout("the server did not answer in time")
                readable, _, _ = select.select([self.sock], [], [], remaining)
                if not readable:
                    raise RequestTimeout("the server did not answer in time")
            data = self.sock.recv(_RECV_SIZE)
            if not data:
                raise ConnectionLost("the server closed the connection")
            if self.tls is not None:
                data = self.tls.decrypt(data)
                if self.tls.has_output:
                    with self._cond:
                        self._queue(b"")  # the sender writes what TLS made on its own
            self._take(data)
        return self._backlog.popleft()

    def _take(self, data: bytes) -> None:
        if data:
            with self._cond:
                self._backlog.extend(self.protocol.receive_data(data))

    # -- ending ------------------------------------------------------------------

    def shutdown(self) -> None:
        """Wake the reader and the sender, wherever they are blocked; nothing more is sent."""
        self._end("the connection is closed")
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        """Shut down, let the sender thread end (it fails at once now), close the socket."""
        self.shutdown()
        if threading.current_thread() is not self._sender:
            self._sender.join(_SENDER_EXIT)
        self.sock.close()
