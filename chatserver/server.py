"""The server: puts the parts together, starts them, and stops them in order.

    with ChatServer(ServerConfig(port=0), MemoryStore()) as server:
        host, port = server.address
        ...

The listener (`listener.py`) accepts and admits connections; each has a
reader thread (`reader.py`); the writer, sequencer and housekeeper threads
serve them all. A cluster node's back end (`cluster.py`, which needs the
Redis client) is imported only when a Redis URL is configured.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from types import TracebackType

from chatproto import Error, ErrorCode, LeaveReason
from chatserver.admission import HandshakeGate
from chatserver.backend import Backend
from chatserver.config import ServerConfig
from chatserver.handler import Handler
from chatserver.housekeeping import Housekeeper
from chatserver.hub import Hub
from chatserver.listener import Listener
from chatserver.local import LocalBackend
from chatserver.logs import log_failure
from chatserver.outbound import Writer
from chatserver.reader import ConnectionLoop
from chatserver.store import Store
from chatserver.tls import server_context
from chatserver.web import WebPolicy

__all__ = ["ChatServer"]

log = logging.getLogger(__name__)


class ChatServer:
    def __init__(self, config: ServerConfig, store: Store | None = None) -> None:
        """`store` holds a single server's state; a cluster node (`config.redis_url`)
        keeps it in Redis and takes none."""
        if (store is None) == (config.redis_url is None):
            raise ValueError("give a store, or a Redis URL for a cluster node, not both")
        self.config = config
        self.store = store
        self._sock: socket.socket | None = None
        self._listener: Listener | None = None
        self._stopping = threading.Event()
        self._stopped = threading.Event()
        self._running = False  # its threads were started
        lock = threading.Lock()
        self.writer = Writer(lock, soft_limit=config.soft_limit, hard_limit=config.hard_limit)
        self.backend: Backend
        if store is None:
            assert config.redis_url is not None
            from chatserver.cluster import ClusterBackend  # noqa: PLC0415 - needs redis

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
        self.gate = HandshakeGate(config.max_handshaking, config.max_handshaking_per_address)
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
        self.loop = ConnectionLoop(
            config,
            handler=self.handler,
            hub=self.hub,
            backend=self.backend,
            gate=self.gate,
            tls=self._tls,
            web=self._web,
            stopping=self._stopping,
        )

    @property
    def address(self) -> tuple[str, int]:
        """Where the server listens (the real port when port 0 was asked for)."""
        assert self._sock is not None, "the server is not started"
        host, port = self._sock.getsockname()[:2]
        return host, port

    @property
    def listener(self) -> Listener:
        assert self._listener is not None, "the server is not started"
        return self._listener

    def start(self) -> ChatServer:
        sock = socket.create_server(
            (self.config.host, self.config.port), backlog=1024, reuse_port=False
        )
        self._sock = sock
        try:
            self.backend.start()
        except BaseException:
            sock.close()
            raise
        self._running = True
        self.writer.start()
        self.housekeeper.start()
        self._listener = Listener(
            sock,
            config=self.config,
            hub=self.hub,
            loop=self.loop,
            gate=self.gate,
            tls=self._tls,
            web=self._web,
            stopping=self._stopping,
        )
        self._listener.start()
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

    @property
    def connections(self) -> int:
        """Connections whose reader thread is still running."""
        return self.listener.connections

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no connection is left, its socket closed; False on timeout."""
        deadline = time.monotonic() + timeout
        if not self.listener.wait_readers(timeout):
            return False
        return self.writer.wait_closed(max(0.0, deadline - time.monotonic()))

    # -- shutdown ----------------------------------------------------------

    def shutdown(self) -> None:
        """Tell every client, flush what is queued, close the store; within the grace
        time. The store is closed whatever fails on the way."""
        if self._stopping.is_set():
            self._stopped.wait()
            return
        self._stopping.set()
        try:
            self._wind_down(time.monotonic() + self.config.shutdown_grace)
        except Exception:
            log_failure(log, "shutdown failed")
        finally:
            if self.store is not None:
                self.store.close()
            self._stopped.set()
            log.info("stopped")

    def _wind_down(self, deadline: float) -> None:
        if not self._running:
            return
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.shutdown(socket.SHUT_RDWR)
            self._sock.close()
        listener = self._listener
        if listener is not None and listener.is_alive():
            listener.join()
        self.housekeeper.stop()
        with self.hub.lock:
            sessions = list(self.hub.sessions)
        for session in sessions:
            session.end(LeaveReason.QUIT, "shutdown")
        self.hub.broadcast_all(
            Error(code=ErrorCode.SHUTDOWN.value, message="the server is shutting down", fatal=True)
        )
        for session in sessions:
            with contextlib.suppress(OSError):
                session.sock.shutdown(socket.SHUT_RD)
        for reader in listener.readers() if listener is not None else []:
            reader.join(max(0.0, deadline - time.monotonic()))
        self.backend.stop()
        self.writer.stop()
        if self.writer.is_alive():
            self.writer.join(max(0.1, deadline - time.monotonic()))
        if self.housekeeper.is_alive():
            self.housekeeper.join()
