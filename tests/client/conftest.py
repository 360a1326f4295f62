"""Fixtures: real servers on 127.0.0.1 port 0, and clients that are always closed."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from chatclient import Client, ClientEvent
from chatserver.config import ServerConfig
from chatserver.server import ChatServer
from chatserver.sqlite_store import SQLiteStore
from chatserver.store import MemoryStore, Store

E = TypeVar("E")

# Generous limits, so that only the tests about limits meet them.
FAST = {"shutdown_grace": 0.5, "rate": 1000.0, "burst": 1000}

ServerFactory = Callable[..., ChatServer]
ClientFactory = Callable[..., Client]


def start_server(store: Store | None = None, **settings: Any) -> ChatServer:
    return ChatServer(
        ServerConfig(**{**FAST, "port": 0, **settings}), store or MemoryStore()
    ).start()


def start_on_port(port: int, db: Path, attempts: int = 50, **settings: Any) -> ChatServer:
    """A server on a port that another one just left; the port may be busy for a moment."""
    for attempt in range(attempts):
        store = SQLiteStore(db)
        try:
            return ChatServer(ServerConfig(**{**FAST, "port": port, **settings}), store).start()
        except OSError:
            store.close()
            if attempt == attempts - 1:
                raise
            time.sleep(0.05)  # a bounded retry of bind(), not a synchronisation
    raise AssertionError("unreachable")


@pytest.fixture
def make_server() -> Iterator[ServerFactory]:
    servers: list[ChatServer] = []

    def make(store: Store | None = None, **settings: Any) -> ChatServer:
        server = start_server(store, **settings)
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.shutdown()


@pytest.fixture
def server(make_server: ServerFactory) -> ChatServer:
    return make_server()


@pytest.fixture
def make_client(server: ChatServer) -> Iterator[ClientFactory]:
    """Connected clients of `server` (or of `port=`), closed at the end of the test."""
    clients: list[Client] = []

    def make(nick: str, *, connect: bool = True, **options: Any) -> Client:
        options.setdefault("port", server.address[1])
        options.setdefault("timeout", 5.0)
        client = Client(nick, **options)
        clients.append(client)
        if connect:
            client.connect()
        return client

    yield make
    for client in clients:
        client.close()


def next_of(client: Client, kind: type[E], timeout: float = 5.0, **fields: Any) -> E:
    """The next queued event of type `kind` with these field values, skipping others."""
    deadline = time.monotonic() + timeout
    while True:
        event = client.next_event(max(0.0, deadline - time.monotonic()))
        if isinstance(event, kind) and all(getattr(event, k) == v for k, v in fields.items()):
            return event


class Recorder:
    """An `on_event` callback that keeps every event and lets a test wait for one."""

    def __init__(self) -> None:
        self.events: list[ClientEvent] = []
        self._cond = threading.Condition()

    def __call__(self, event: ClientEvent) -> None:
        with self._cond:
            self.events.append(event)
            self._cond.notify_all()

    def wait_for(self, match: Callable[[list[ClientEvent]], bool], timeout: float = 5.0) -> None:
        with self._cond:
            if not self._cond.wait_for(lambda: match(self.events), timeout):
                raise AssertionError(f"timed out; events so far: {self.events!r}")

    def of(self, kind: type[E]) -> list[E]:
        with self._cond:
            return [e for e in self.events if isinstance(e, kind)]


def client_threads() -> set[threading.Thread]:
    """Threads that are not the servers' (a server's readers end on their own time)."""
    return {t for t in threading.enumerate() if not t.name.startswith("chat-")}


@pytest.fixture
def server_port(server: ChatServer) -> int:
    return server.address[1]
