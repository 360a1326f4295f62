"""TLS for the server's connections, over memory buffers.

A connection's reader thread decrypts what it receives and the writer thread
encrypts what it sends; an `ssl.SSLObject` on memory BIOs lets them share one
TLS session without either doing socket I/O for the other, and without an
SSL socket's blocking reads holding up the writer. A small lock per
connection keeps the two from touching the TLS state at once.
"""

from __future__ import annotations

import socket
import ssl
import threading
import time

__all__ = ["TlsChannel", "looks_like_tls", "server_context"]


def server_context(cert: str, key: str) -> ssl.SSLContext:
    """Modern defaults, TLS 1.2 at least."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert, key)
    return context


def looks_like_tls(data: bytes) -> bool:
    """A TLS handshake record: content type 22, protocol version 3.x."""
    return len(data) >= 2 and data[0] == 0x16 and data[1] == 0x03


class TlsChannel:
    def __init__(self, context: ssl.SSLContext) -> None:
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self._tls = context.wrap_bio(self._incoming, self._outgoing, server_side=True)
        self._lock = threading.Lock()
        self.closed = False

    def handshake(self, sock: socket.socket, timeout: float) -> None:
        """Complete the handshake on `sock` (nothing else uses it yet), within `timeout`."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                self._tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                pass
            self._flush(sock)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("TLS handshake took too long")
            sock.settimeout(remaining)
            data = sock.recv(4096)
            if not data:
                raise ConnectionError("closed during the TLS handshake")
            self._incoming.write(data)
        self._flush(sock)
        sock.settimeout(None)

    def _flush(self, sock: socket.socket) -> None:
        out = self._outgoing.read()
        if out:
            sock.sendall(out)

    def decrypt(self, data: bytes) -> bytes:
        """Plain bytes from received records; `closed` is set on the peer's close_notify."""
        parts = []
        with self._lock:
            self._incoming.write(data)
            while True:
                try:
                    part = self._tls.read(65536)
                except ssl.SSLWantReadError:
                    break
                except ssl.SSLZeroReturnError:
                    self.closed = True
                    break
                if not part:
                    break
                parts.append(part)
        return b"".join(parts)

    @property
    def has_output(self) -> bool:
        """Records (such as a key update) are waiting to be sent."""
        return self._outgoing.pending > 0

    def encrypt(self, data: bytes) -> bytes:
        """Records for `data`, after any records already waiting."""
        with self._lock:
            if data:
                self._tls.write(data)
            return self._outgoing.read()
