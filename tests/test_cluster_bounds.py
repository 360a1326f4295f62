"""A cluster node that falls behind a room further than Redis keeps: its members
there are dropped as slow consumers, never left with a silent gap."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from chatserver.cluster import ClusterBackend
from tests.redis_support import node, redis_server
from tests.support import Wire, login

FAST = {"rate": 10000.0, "burst": 10000, "shutdown_grace": 0.5}


def test_a_node_left_behind_by_the_stream_cap_drops_its_members(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with (
        redis_server(tmp_path) as redis,
        node(redis.url, redis_history=100, **FAST) as behind,
        node(redis.url, redis_history=100, **FAST) as ahead,
    ):
        alice = login(behind, "alice", "lobby")
        bob = login(ahead, "bob", "lobby")
        assert isinstance(behind.backend, ClusterBackend)
        relay = behind.backend.relay
        gate = threading.Event()
        real_round = relay._round

        def held_round() -> None:
            assert gate.wait(30)
            real_round()

        monkeypatch.setattr(relay, "_round", held_round)
        first = bob.request(type="say", room="lobby", text="seen")
        alice.until(lambda f: f.get("id") == first["id"] and f["type"] == "message")
        # The node's relay is held now; the room runs 1,000 messages ahead of it,
        # far past the 100 entries Redis keeps. (Bob waits for each echo, so
        # his own node keeps up.)
        for i in range(1000):
            assert bob.request(type="say", room="lobby", text=f"missed {i}")["type"] == "message"
        gate.set()
        error = alice.until(lambda f: f["type"] == "error", timeout=10)
        assert error["code"] == "slow_consumer"
        assert error["fatal"] is True
        assert alice.closed() is not None
        # Everyone else goes on.
        assert bob.request(type="say", room="lobby", text="still here")["type"] == "message"
        assert redis.client().xlen("chat:log:lobby") < 2 * 100 + 100


def test_a_redis_that_lost_its_data_makes_every_client_log_in_anew(tmp_path: Path) -> None:
    with (
        redis_server(tmp_path) as redis,
        node(redis.url, node_ttl=1.0, **FAST) as first,
        node(redis.url, node_ttl=1.0, **FAST) as second,
    ):
        alice = login(first, "alice", "lobby")
        bob = login(second, "bob", "lobby")
        assert alice.request(type="say", room="lobby", text="before")["type"] == "message"
        redis.client().flushall()  # what a restart without persistence leaves
        for wire in (alice, bob):
            error = wire.until(lambda f: f["type"] == "error", timeout=10)
            assert (error["code"], error["fatal"]) == ("unavailable", True)
        # Logged in anew, both talk again across the nodes.
        alice, bob = login(first, "alice", "lobby"), login(second, "bob", "lobby")
        sent = alice.request(type="say", room="lobby", text="after")
        assert bob.until(lambda f: f["type"] == "message")["id"] == sent["id"]


def test_a_burst_of_logins_shares_a_bounded_set_of_redis_connections(tmp_path: Path) -> None:
    with (
        redis_server(tmp_path) as redis,
        node(
            redis.url,
            max_per_address=1000,
            max_handshaking=1000,
            max_handshaking_per_address=1000,
            **FAST,
        ) as server,
    ):
        wires = [Wire(server.address) for _ in range(300)]
        for i, wire in enumerate(wires):
            wire.send(id=1, type="hello", nick=f"n{i}")
            wire.send(id=2, type="join", room="lobby")
        for wire in wires:
            assert wire.until(lambda f: f.get("ref") == 2, timeout=30)["type"] == "joined"
        clients = redis.client().client_list()
        assert len(clients) <= 32 + 2 + 1  # the pool, the relay's, this one
        for wire in wires:
            wire.close()
