"""One TCP connection: its socket, its TLS session if any, its protocol state
machine, and events read ahead.

A `Client` lives across many links (one per reconnection). The link only
moves bytes and decodes them; what the events mean is the client's business.
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

    `send` may be called from any thread (the caller serialises whole frames);
    `next_event` only from the one thread that reads.
    """

    def __init__(self, sock: socket.socket, tls: TlsSession | None = None) -> None:
        self.sock = sock
        self.tls = tls
        self.protocol = ClientConnection()
        # Guards the protocol object, which the reader and the senders both change.
        self._lock = threading.Lock()
        self._backlog: deque[Event] = deque()
        # Events that arrived while the client waited for a specific reply
        # during its handshake; they are handed out first, in order.
        self.held: list[Event] = []
        self._blocking = True
        # Plain text that came in with the end of the TLS handshake.
        self._early = tls.decrypt(b"") if tls is not None else b""

    @classmethod
    def open(
        cls,
        host: str,
        port: int,
        timeout: float,
        cancel: threading.Event,
        tls: ssl.SSLContext | None = None,
    ) -> Link:
        """Connect, and with `tls` complete the TLS handshake, all within `timeout`.

        The server's certificate must be valid for `host`, unless the context
        checks nothing. Raises `TlsError` (`TlsCertificateError`), `OSError`,
        `TimeoutError` or `ClientClosed`.
        """
        deadline = time.monotonic() + timeout
        sock = connect_socket(host, port, timeout, cancel)
        if tls is None:
            return cls(sock)
        try:
            session = TlsSession(tls, host)
            session.handshake(sock, f"{host}:{port}", deadline, cancel)
            return cls(sock, session)
        except BaseException:
            sock.close()
            raise

    def send(self, command: Command) -> None:
        """Encode and write one command. Raises `LocalProtocolError` or `OSError`."""
        with self._lock:
            data = self.protocol.send(command)
        if self.tls is None:
            self.sock.sendall(data)
        else:
            self.tls.seal(self.sock, data)

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
            if deadline is None:
                if not self._blocking:
                    self.sock.settimeout(None)
                    self._blocking = True
            else:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise RequestTimeout("the server did not answer in time")
                self.sock.settimeout(remaining)
                self._blocking = False
            try:
                data = self.sock.recv(_RECV_SIZE)
            except TimeoutError:
                raise RequestTimeout("the server did not answer in time") from None
            if not data:
                raise ConnectionLost("the server closed the connection")
            if self.tls is not None:
                data = self.tls.decrypt(data)
                if self.tls.has_output:
                    self.tls.seal(self.sock, b"")
            self._take(data)
        return self._backlog.popleft()

    def _take(self, data: bytes) -> None:
        if data:
            with self._lock:
                self._backlog.extend(self.protocol.receive_data(data))

    def shutdown(self) -> None:
        """Wake a thread blocked reading this link; it then sees the end of the stream."""
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self.shutdown()
        self.sock.close()
