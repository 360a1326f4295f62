"""Fixtures of the conformance suite: the server under test and its clients.

With CHAT_SERVER=host:port set, every test runs against that server, and
tests that need settings it cannot be asked for (short timeouts, a small
send queue, few clients) are skipped. Without it, the suite starts the
reference server in-process on 127.0.0.1, port 0, with a memory store, and
starts a dedicated one for each test that needs special settings.

The chatserver package is imported here only, and only when no CHAT_SERVER is
given: the tests themselves know nothing but the wire.
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.conformance.wire import MODES, Clients, Mode, Target

ENV = "CHAT_SERVER"


def _external() -> tuple[str, int] | None:
    spec = os.environ.get(ENV, "").strip()
    if not spec:
        return None
    host, sep, port = spec.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ValueError(f"{ENV} must be host:port, not {spec!r}")
    return host.strip("[]"), int(port)


class _Servers:
    """In-process reference servers started by the suite."""

    def __init__(self) -> None:
        self._running: list[Any] = []

    def start(self, **settings: Any) -> Target:
        from chatserver.config import ServerConfig  # noqa: PLC0415
        from chatserver.server import ChatServer  # noqa: PLC0415
        from chatserver.store import MemoryStore  # noqa: PLC0415

        config = ServerConfig(host="127.0.0.1", port=0, **settings)
        server = ChatServer(config, MemoryStore()).start()
        self._running.append(server)
        return Target(server.address, external=False)

    def stop(self) -> None:
        while self._running:
            self._running.pop().shutdown()


@pytest.fixture(scope="session")
def target() -> Iterator[Target]:
    """The server every test talks to unless it needs special settings."""
    address = _external()
    if address is not None:
        yield Target(address, external=True)
        return
    servers = _Servers()
    try:
        yield servers.start()
    finally:
        servers.stop()


@pytest.fixture
def start_server(target: Target) -> Iterator[Callable[..., Target]]:
    """`start_server(why, **settings)`: a dedicated server with these ServerConfig
    settings, or a skip (saying `why`) when the server under test is external."""
    servers = _Servers()

    def start(why: str, **settings: Any) -> Target:
        if target.external:
            pytest.skip(f"needs a server with {why}; the {ENV} server's settings are not ours")
        return servers.start(**settings)

    try:
        yield start
    finally:
        servers.stop()


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest) -> Mode:
    """How clients cut their frames: whole, in random chunks, or byte by byte."""
    value: Mode = request.param
    return value


@pytest.fixture
def clients(target: Target, mode: Mode, request: pytest.FixtureRequest) -> Iterator[Clients]:
    """Connections for this test; the random chunking is seeded by the test's id."""
    pool = Clients(target, mode, random.Random(request.node.nodeid))
    try:
        yield pool
    finally:
        pool.close()
