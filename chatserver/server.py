"""The server: a listener thread, a reader thread per connection, and the
writer, sequencer and housekeeper threads that serve them all.

    with ChatServer(ServerConfig(port=0), MemoryStore()) as server:
        host, port = server.address
        ...
"""

from __future__ import annotations

import contextlib
import logging
import socket
import ssl
import threading
import time
from types import TracebackType

from chatproto import Error, ErrorCode, LeaveReason, ServerConnection, State
from chatserver.backend import Backend
from chatserver.cluster import ClusterBackend
from chatserver.config import ServerConfig
from chatserver.handler import Handler
from chatserver.housekeeping import Housekeeper
from chatserver.http import looks_like_http
from chatserver.hub import Hub
from chatserver.local import LocalBackend
from chatserver.logs import log_failure
from chatserver.outbound import Writer
from chatserver.session import Session
from chatserver.store import Store
from chatserver.tls import TlsChannel, looks_like_tls, server_context
from chatserver.web import WebConnection, WebPolicy

__all__ = ["ChatServer"]

# What OpenSSL says when the first bytes are not a TLS record.
_PLAINTEXT_REASONS = frozenset({"WRONG_VERSION_NUMBER", "HTTP_REQUEST", "UNSUPPORTED_PROTOCOL"})

log = logging.getLogger(__name__)


class ChatServer:
    def __init__(self, config: ServerConfig, store: Store | None = None) -> None:
        """`store` holds a single server's state; a cluster node (`config.redis_url`)
        keeps it in Redis and takes none."""
        if (store is None) == (config.redis_url is None):
            raise ValueError("give a store, or a Redis URL for a cluster node, not both")
        self.config = config
        self.store = store
        self._listener: socket.socket | None = None
        self._stopping = threading.Event()
        self._stopped = threading.Event()
        self._readers: set[threading.Thread] = set()
        self._readers_lock = threading.Condition()
        lock = threading.Lock()
        self.writer = Writer(lock, soft_limit=config.soft_limit, hard_limit=config.hard_limit)
        self.backend: Backend
        if store is None:
            assert config.redis_url is not None
            self.hub = Hub(lock, self.writer, {}, config.history, large_room=config.large_room)
            self.backend = ClusterBackend(config, self.hub, config.redis_url)
        else:
            # Keyed messages of the last ten minutes are still deduplicated.
            since = time.time_ns() // 1_000_000 - 600_000
            snapshot = store.load(config.history, keys_since=since)
            self.hub = Hub(
                lock, self.writer, snapshot.rooms, config.history, large_room=config.large_room
            )
            self.backend = LocalBackend(config, self.hub, store, snapshot)
        self.handler = Handler(config, self.hub, self.backend)
        self.housekeeper = Housekeeper(config, self.hub)
        self._acceptor = threading.Thread(target=self._accept_loop, name="chat-listener")
        self._tls = (
            server_context(config.tls_cert, config.tls_key)
            if config.tls_cert is not None and config.tls_key is not None
            else None
        )
        self._web = (
            WebPolicy.build(config.web_origins, config.trusted_proxies, tls=self._tls is not None)
            if config.web
            else None
        )

    @property
    def address(self) -> tuple[str, int]:
        """Where the server listens (the real port when port 0 was asked for)."""
        assert self._listener is not None, "the server is not started"
        host, port = self._listener.getsockname()[:2]
        return host, port

    def start(self) -> ChatServer:
        listener = socket.create_server(
            (self.config.host, self.config.port), backlog=1024, reuse_port=False
        )
        self._listener = listener
        try:
            self.backend.start()
        except BaseException:
            listener.close()
            raise
        self.writer.start()
        self.housekeeper.start()
        self._acceptor.start()
        log.info("listening on %s:%d", *self.address)
        return self

    def __enter__(self) -> ChatServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.shutdown()

    # -- connections -------------------------------------------------------

    def _accept_loop(self) -> None:
        assert self._listener is not None
        while not self._stopping.is_set():
            try:
                sock, addr = self._listener.accept()
            except OSError as exc:
                if self._stopping.is_set():
                    break
                log.error("accept failed: %s", exc)
                time.sleep(0.05)  # out of descriptors: let some close
                continue
            self._admit(sock, addr)

    def _admit(self, sock: socket.socket, address: tuple[str, int]) -> None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        config = self.config
        session = Session(
            sock, address, max_frame=config.max_frame, rate=config.rate, burst=config.burst
        )
        # A trusted proxy's connections are counted under the address it forwards.
        proxy = self._web is not None and self._web.trusts(address[0])
        per_address = config.max_clients if proxy else config.max_per_address
        refusal = self.hub.add(session, config.max_clients, per_address)
        if refusal is not None:
            code, message = refusal
            log.warning("refused %s: %s", session.peer, message)
            if self._tls is None:  # a TLS client could not read the reason anyway
                _refuse(sock, code, message)
            sock.close()
            return
        log.info("%s: connect from %s", session.id, session.peer)
        reader = threading.Thread(
            target=self._serve, args=(session,), name=f"chat-reader-{session.id}", daemon=True
        )
        with self._readers_lock:
            self._readers.add(reader)
        reader.start()

    def _serve(self, session: Session) -> None:
        """The reader thread of one connection: frames in, commands handled."""
        sock = session.sock
        handle = self.handler.handle
        size = self.config.recv_size
        tls = None
        try:
            if self._tls is not None:
                tls = self._secure(session, self._tls)
                if tls is None:
                    return
            # A client may send its first frame right behind the end of its
            # handshake, so that both arrive in one read: that frame is
            # already in the TLS buffers, and no further read may come.
            early = tls.decrypt(b"") if tls is not None else b""
            web: WebConnection | None = None
            first = True
            drained = True
            while True:
                if early:
                    data, early = early, b""
                else:
                    data = _recv(sock, size, drained)
                    drained = len(data) < size
                    if not data:
                        session.end(LeaveReason.LOST, "connection closed")
                        break
                    if tls is not None:
                        data = tls.decrypt(data)
                        if tls.has_output:
                            self.hub.send_raw(session, b"")
                        if tls.closed:
                            session.end(LeaveReason.LOST, "TLS closed")
                            break
                        if not data:
                            continue
                    elif first and looks_like_tls(data):
                        log.warning("%s: TLS client on a plaintext port; closing", session.peer)
                        session.end(LeaveReason.LOST, "TLS on a plaintext port")
                        break
                if first and self._web is not None and looks_like_http(data):
                    web = WebConnection.attach(self._web, session, self._readdress)
                first = False
                if web is not None:
                    data = web.receive(data)
                    if web.has_output:
                        self.hub.send_raw(session, b"")
                    if not data:
                        if web.closed:
                            session.end(*web.ending)
                            break
                        continue
                with session.lock:
                    if session.protocol.state is State.CLOSED:
                        break
                    items = session.protocol.receive_data(data)
                if items:
                    session.last_frame = time.monotonic()
                if not all(handle(session, item) for item in items):
                    break
                if web is not None and web.closed:
                    session.end(*web.ending)
                    break
        except OSError as exc:
            session.end(LeaveReason.LOST, exc.strerror or type(exc).__name__)
        except Exception:
            log_failure(log, "%s: reader failed", session.id)
            session.end(LeaveReason.LOST, "internal error")
        finally:
            self._finish(session)

    def _readdress(self, session: Session, host: str) -> tuple[ErrorCode, str] | None:
        return self.hub.readdress(session, host, self.config.max_per_address)

    def _secure(self, session: Session, context: ssl.SSLContext) -> TlsChannel | None:
        tls = TlsChannel(context)
        session.securing = True
        try:
            tls.handshake(session.sock, self.config.handshake_timeout)
        except (OSError, ssl.SSLError) as exc:
            plain = isinstance(exc, ssl.SSLError) and exc.reason in _PLAINTEXT_REASONS
            what = "plaintext client on a TLS port" if plain else str(exc)
            log.warning("%s: TLS handshake failed: %s", session.peer, what)
            session.end(LeaveReason.LOST, "TLS handshake failed")
            return None
        finally:
            session.securing = False
        session.box.seal = tls.encrypt
        return tls

    def _finish(self, session: Session) -> None:
        reason = session.end_reason or LeaveReason.LOST
        with session.lock:
            session.protocol.close()
        self.backend.remove(session, reason, tell=not self._stopping.is_set())
        self.writer.finish(session.box, self.config.shutdown_grace)
        log.info(
            "%s: disconnect %s %s: %s (%s)",
            session.id,
            session.nick or "-",
            session.peer,
            reason.value,
            session.end_detail,
        )
        with self._readers_lock:
            self._readers.discard(threading.current_thread())
            self._readers_lock.notify_all()

    @property
    def connections(self) -> int:
        """Connections whose reader thread is still running."""
        with self._readers_lock:
            return len(self._readers)

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no connection is left, its socket closed; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._readers_lock:
            if not self._readers_lock.wait_for(lambda: not self._readers, timeout):
                return False
        return self.writer.wait_closed(max(0.0, deadline - time.monotonic()))

    # -- shutdown ----------------------------------------------------------

    def shutdown(self) -> None:
        """Tell every client, flush what is queued, close the store; within the grace time."""
        if self._stopping.is_set():
            self._stopped.wait()
            return
        self._stopping.set()
        deadline = time.monotonic() + self.config.shutdown_grace
        if self._listener is not None:
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
        if self._acceptor.is_alive():
            self._acceptor.join()
        self.housekeeper.stop()
        self.hub.broadcast_all(
            Error(code=ErrorCode.SHUTDOWN.value, message="the server is shutting down", fatal=True)
        )
        with self.hub.lock:
            sessions = list(self.hub.sessions)
        for session in sessions:
            session.end(LeaveReason.QUIT, "shutdown")
            with contextlib.suppress(OSError):
                session.sock.shutdown(socket.SHUT_RD)
        with self._readers_lock:
            readers = list(self._readers)
        for reader in readers:
            reader.join(max(0.0, deadline - time.monotonic()))
        self.backend.stop()
        self.writer.stop()
        self.writer.join(max(0.1, deadline - time.monotonic()))
        self.housekeeper.join()
        if self.store is not None:
            self.store.close()
        self._stopped.set()
        log.info("stopped")


def _recv(sock: socket.socket, size: int, drained: bool) -> bytes:
    # A connection that had nothing more to read waits on a one-byte peek:
    # recv(size) would hold a buffer of `size` bytes for as long as it waits.
    if drained and not sock.recv(1, socket.MSG_PEEK):
        return b""
    return sock.recv(size)


def _refuse(sock: socket.socket, code: ErrorCode, message: str) -> None:
    # A connection that never gets a reader: one frame, if the socket takes it.
    frame = ServerConnection().send(Error(code=code.value, message=message, fatal=True))
    with contextlib.suppress(OSError):
        sock.send(frame, socket.MSG_DONTWAIT)
        sock.shutdown(socket.SHUT_WR)
