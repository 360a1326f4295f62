"""TLS for the client's connection, over memory buffers.

The client reads in one thread and sends from any thread. An `ssl.SSLSocket`
must not be used by a thread blocked in `recv` and another sending at the
same time (OpenSSL objects are not safe for concurrent use), so the socket
stays a plain one and the TLS state is an `ssl.SSLObject` on two
`ssl.MemoryBIO`s, as on the server: the receive thread feeds in the bytes it
received and takes out plain text; a sender encrypts its frame and writes
the records itself. A small lock keeps the two from touching the TLS state
at once, and a send lock, held from encrypting until the records are
written, keeps records on the wire in the order they were made.
"""

from __future__ import annotations

import contextlib
import select
import socket
import ssl
import threading
import time

from chatclient.errors import ClientClosed, TlsCertificateError, TlsError

__all__ = ["TlsSession", "client_context"]

_POLL = 0.05  # how often a pending handshake looks at its cancel flag
_READ = 65536


def client_context(*, ca: str | None = None, insecure: bool = False) -> ssl.SSLContext:
    """A context that checks the server's certificate and name; TLS 1.2 at least.

    `ca` is a PEM file of the certificate authorities to trust instead of the
    system's. `insecure` checks nothing: for development servers with a
    self-signed certificate only. Raises `ValueError` if `ca` cannot be loaded.
    """
    if insecure and ca is not None:
        raise ValueError("insecure=True checks no certificate, so ca= would be ignored")
    try:
        context = ssl.create_default_context(cafile=ca)
    except (OSError, ssl.SSLError) as exc:
        raise ValueError(f"cannot load the CA file {ca!r}: {exc}") from None
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


class TlsSession:
    """One connection's TLS state: handshake, then `decrypt` and `seal`.

    `decrypt` is for the one thread that reads; `seal`, which encrypts and
    sends, for any thread. `closed` turns true at the server's close_notify.
    """

    def __init__(self, context: ssl.SSLContext, server_hostname: str) -> None:
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self._tls = context.wrap_bio(
            self._incoming, self._outgoing, server_side=False, server_hostname=server_hostname
        )
        self._lock = threading.Lock()  # the SSLObject and its buffers
        self.send_lock = threading.Lock()  # from taking records out until they are sent
        self.closed = False

    def handshake(
        self, sock: socket.socket, where: str, deadline: float, cancel: threading.Event
    ) -> None:
        """Complete the handshake on `sock`, which nothing else uses yet, by `deadline`.

        Raises `TlsCertificateError` if the server's certificate is refused,
        `TlsError` if the handshake fails otherwise, `ClientClosed` when
        `cancel` is set, and `TimeoutError`.
        """
        try:
            while True:
                try:
                    self._tls.do_handshake()
                    done = True
                except ssl.SSLWantReadError:
                    done = False
                out = self._outgoing.read()
                if out:
                    sock.sendall(out)
                if done:
                    return
                data = _recv(sock, deadline, cancel, where)
                if not data:
                    raise TlsError(
                        f"{where} closed the connection during the TLS handshake "
                        "(is it a plaintext port?)"
                    )
                self._incoming.write(data)
        except TlsError:
            raise
        except ssl.SSLCertVerificationError as exc:
            self._alert(sock)
            reason = exc.verify_message or exc.reason or str(exc)
            raise TlsCertificateError(
                f"the TLS certificate of {where} was refused: {reason}"
            ) from None
        except ssl.SSLError as exc:
            self._alert(sock)
            raise TlsError(f"TLS handshake with {where} failed: {exc.reason or exc}") from None
        except ConnectionError as exc:
            raise TlsError(
                f"{where} broke the connection during the TLS handshake "
                f"(is it a plaintext port?): {exc.strerror or exc}"
            ) from None

    def _alert(self, sock: socket.socket) -> None:
        """Tell the server why the handshake failed, if OpenSSL made an alert for it."""
        out = self._outgoing.read()
        if out:
            with contextlib.suppress(OSError):
                sock.sendall(out)

    def decrypt(self, data: bytes) -> bytes:
        """The plain text in `data`, the next bytes received; may be empty.

        Raises `TlsError` if the server sent something that is not TLS.
        """
        parts: list[bytes] = []
        with self._lock:
            self._incoming.write(data)
            while True:
                try:
                    part = self._tls.read(_READ)
                except ssl.SSLWantReadError:
                    break
                except ssl.SSLZeroReturnError:
                    self.closed = True
                    break
                except ssl.SSLError as exc:
                    raise TlsError(f"TLS failed: {exc.reason or exc}") from None
                if not part:
                    break
                parts.append(part)
        return b"".join(parts)

    @property
    def has_output(self) -> bool:
        """Records the TLS layer made on its own (e.g. a key update) wait to be sent."""
        return self._outgoing.pending > 0

    def seal(self, sock: socket.socket, data: bytes) -> None:
        """Encrypt `data` (may be empty: only what waits) and send it, in order."""
        with self.send_lock:
            with self._lock:
                if data:
                    self._tls.write(data)
                records = self._outgoing.read()
            if records:
                sock.sendall(records)


def _recv(sock: socket.socket, deadline: float, cancel: threading.Event, where: str) -> bytes:
    while True:
        if cancel.is_set():
            raise ClientClosed("the client was closed while connecting")
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"the TLS handshake with {where} took too long")
        readable, _, _ = select.select([sock], [], [], min(remaining, _POLL))
        if readable:
            return sock.recv(_READ)
