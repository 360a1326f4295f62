"""The listener: accepts connections, admits or refuses each, starts its reader.

Admitting a client must cost only that client when it fails: a reader thread
that cannot be started (a thread or process limit) gets the client a
`server_full` and releases what was counted for it, and the listener goes on
accepting. A refusal on a TLS port is sent after the TLS handshake (a client
could not read it otherwise), by a short-lived thread counted among the
connections in the handshake, so that refusals cannot pile up either.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import ssl
import threading
import time
from collections.abc import Callable

from chatproto import Error, ErrorCode, ServerConnection
from chatserver.admission import HandshakeGate, Refusal
from chatserver.config import ServerConfig
from chatserver.housekeeping import evict
from chatserver.hub import Hub
from chatserver.logs import log_failure
from chatserver.reader import ConnectionLoop
from chatserver.session import Session
from chatserver.tls import TlsChannel
from chatserver.web import WebPolicy

__all__ = ["Listener"]

log = logging.getLogger(__name__)

_NO_THREAD = (ErrorCode.SERVER_FULL, "the server cannot take more connections now")


def _start(target: Callable[[], None], name: str) -> threading.Thread:
    thread = threading.Thread(target=target, name=name, daemon=True)
    thread.start()
    return thread


class Listener(threading.Thread):
    """The accept loop, and the reader threads it has started."""

    # How a thread is started; a test may make it fail.
    start_thread: Callable[[Callable[[], None], str], threading.Thread] = staticmethod(_start)

    def __init__(
        self,
        sock: socket.socket,
        *,
        config: ServerConfig,
        hub: Hub,
        loop: ConnectionLoop,
        gate: HandshakeGate,
        tls: ssl.SSLContext | None,
        web: WebPolicy | None,
        stopping: threading.Event,
    ) -> None:
        super().__init__(name="chat-listener")
        self._web = web
        self._sock = sock
        self._config = config
        self._hub = hub
        self._loop = loop
        self._gate = gate
        self._tls = tls
        self._stopping = stopping
        self._readers: set[threading.Thread] = set()
        self._readers_lock = threading.Condition()

    def run(self) -> None:
        while not self._stopping.is_set():
            try:
                sock, addr = self._sock.accept()
            except OSError as exc:
                if self._stopping.is_set():
                    break
                log.error("accept failed: %s", exc)
                time.sleep(0.05)  # out of descriptors: let some close
                continue
            try:
                self._admit(sock, addr)
            except Exception:
                # Whatever went wrong costs this connection only.
                log_failure(log, "admitting %s:%d failed", *addr[:2])
                with contextlib.suppress(OSError):
                    sock.close()

    def _admit(self, sock: socket.socket, address: tuple[str, int]) -> None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        config = self._config
        session = Session(
            sock, address, max_frame=config.max_frame, rate=config.rate, burst=config.burst
        )
        # A trusted proxy's connections are counted under the address it forwards
        # (`ConnectionLoop.readdress`), not under its own.
        proxy = self._web is not None and self._web.trusts(address[0])
        refusal, evicted = self._gate.enter(session, exempt=proxy)
        if evicted is not None:
            evict(self._hub, evicted)
        if refusal is not None:
            # The handshake gate itself is full for this address: no thread for it.
            self._refuse(session, refusal, secure=False)
            return
        per_address = config.max_clients if proxy else config.max_per_address
        refusal = self._hub.add(session, config.max_clients, per_address)
        if refusal is not None:
            self._refuse(session, refusal, secure=self._tls is not None)
            return
        try:
            self._run_reader(session)
        except RuntimeError:
            # No thread for its reader: undo the admission, tell it if we can.
            self._hub.forget(session)
            self._gate.leave(session)
            self._refuse(session, _NO_THREAD, secure=False)

    def _run_reader(self, session: Session) -> None:
        started = threading.Event()
        thread: threading.Thread | None = None

        def serve() -> None:
            started.wait()
            try:
                self._loop.run(session)
            finally:
                with self._readers_lock:
                    self._readers.discard(threading.current_thread())
                    self._readers_lock.notify_all()

        with self._readers_lock:
            thread = self.start_thread(serve, f"chat-reader-{session.id}")
            self._readers.add(thread)
        started.set()

    def _refuse(self, session: Session, refusal: Refusal, *, secure: bool) -> None:
        code, message = refusal
        clog = self._loop.client_log(session)
        clog.log(
            logging.WARNING, "refused %s: %s (%s)", session.peer, code.value, message, always=True
        )
        if not secure:
            # A plaintext client reads the reason; a TLS one could not.
            if self._tls is None:
                _send_refusal(session.sock, code, message)
            session.sock.close()
            self._gate.leave(session)
            return
        # On a TLS port the reason goes after the handshake, which takes a thread;
        # the session stays counted in the handshake gate until it is done.
        try:
            self.start_thread(
                lambda: self._refuse_tls(session, code, message), f"chat-refuse-{session.id}"
            )
        except RuntimeError:
            session.sock.close()
            self._gate.leave(session)

    def _refuse_tls(self, session: Session, code: ErrorCode, message: str) -> None:
        assert self._tls is not None
        sock = session.sock
        try:
            tls = TlsChannel(self._tls)
            tls.handshake(sock, self._config.handshake_timeout)
            frame = ServerConnection().send(Error(code=code.value, message=message, fatal=True))
            sock.settimeout(self._config.handshake_timeout)
            sock.sendall(tls.encrypt(frame))
            sock.shutdown(socket.SHUT_WR)
            # Wait for the client to close (it has the reason), within the timeout.
            while sock.recv(4096):
                pass
        except (OSError, ssl.SSLError):
            pass
        finally:
            sock.close()
            self._gate.leave(session)

    @property
    def connections(self) -> int:
        """Connections whose reader thread is still running."""
        with self._readers_lock:
            return len(self._readers)

    def readers(self) -> list[threading.Thread]:
        with self._readers_lock:
            return list(self._readers)

    def wait_readers(self, timeout: float) -> bool:
        """Wait until every reader thread has ended; False on timeout."""
        with self._readers_lock:
            return self._readers_lock.wait_for(lambda: not self._readers, timeout)


def _send_refusal(sock: socket.socket, code: ErrorCode, message: str) -> None:
    # A connection that never gets a reader: one frame, if the socket takes it.
    frame = ServerConnection().send(Error(code=code.value, message=message, fatal=True))
    with contextlib.suppress(OSError):
        sock.send(frame, socket.MSG_DONTWAIT)
        sock.shutdown(socket.SHUT_WR)
