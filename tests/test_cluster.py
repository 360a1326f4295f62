"""Cluster mode against a real redis-server: several nodes, one chat.

Every test waits on frames or on Redis itself, never on a fixed sleep; the
only loops are over deadlines, for what can only be polled (a heartbeat key
expiring, Redis coming back).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from pathlib import Path
from typing import Any

from chatclient import Client, ClientEvent, Reconnected, ReconnectPolicy
from chatproto import RoomMessage
from chatserver.cluster import ClusterBackend
from chatserver.server import ChatServer
from tests.client.conftest import Recorder
from tests.redis_support import RedisProcess, node, redis_server
from tests.support import WAIT, Collector, Wire, assert_one_order, server_process

Frame = dict[str, Any]
Match = Callable[[Frame], bool]

FAST = {"rate": 10_000.0, "burst": 10_000}  # tests that flood must not meet the rate limit


# -- helpers -------------------------------------------------------------------


class Peer:
    """A raw client whose every frame is kept, so that tests can count them.

    Replies are found by `ref` among everything received, so a late echo or an
    event that arrives before the reply is never lost by skipping."""

    def __init__(self, server: ChatServer) -> None:
        self.wire = Wire(server.address)
        self.seen = Collector(self.wire)
        self._ids = itertools.count(1)

    def send(self, **frame: Any) -> str:
        rid = f"q{next(self._ids)}"
        self.wire.send(id=rid, **frame)
        return rid

    def request(self, timeout: float = WAIT, **frame: Any) -> Frame:
        """Send a command with a fresh id; the frame that answers it."""
        rid = self.send(**frame)
        return self.wait(lambda f: f.get("ref") == rid, timeout)

    def wait(self, match: Match, timeout: float = WAIT) -> Frame:
        """The first frame received so far or later that matches."""
        self.seen.wait_for(lambda frames: any(match(f) for f in frames), timeout)
        return next(f for f in self.seen.snapshot() if match(f))

    def count(self, match: Match) -> int:
        return sum(1 for f in self.seen.snapshot() if match(f))

    def frames(self, kind: str) -> list[Frame]:
        return [f for f in self.seen.snapshot() if f["type"] == kind]

    def closed(self, timeout: float = WAIT) -> None:
        """Wait until the server has closed the connection."""
        self.seen.join(timeout)
        assert not self.seen.is_alive(), "the connection is still open"

    def close(self) -> None:
        """Drop the connection without `bye`. Shut down first: a plain close would
        wait for the collector's blocked `recv` before the server saw anything."""
        with contextlib.suppress(OSError):
            self.wire.sock.shutdown(socket.SHUT_RDWR)
        self.wire.close()


def peer(server: ChatServer, nick: str, *rooms: str, **hello: Any) -> Peer:
    """A welcomed client of `server`, in `rooms`."""
    client = Peer(server)
    welcome = client.request(type="hello", nick=nick, **hello)
    assert welcome["type"] == "welcome", welcome
    for room in rooms:
        assert client.request(type="join", room=room)["type"] == "joined"
    return client


def kind(name: str, **fields: Any) -> Match:
    """A frame of type `name` with these field values."""
    return lambda f: f["type"] == name and all(f.get(k) == v for k, v in fields.items())


def settle(room: str, sender: Peer, *others: Peer) -> None:
    """Send a marker to `room` and wait until everyone has it.

    A node relays a room's stream in order, so whatever the room's stream held
    before the marker has reached these clients by then: a duplicate would be
    in their frames already."""
    text = f"marker {time.monotonic_ns()}"
    sent = sender.request(type="say", room=room, text=text)
    assert sent["type"] == "message", sent
    for other in others:
        other.wait(kind("message", room=room, text=text, id=sent["id"]))


@contextmanager
def cluster(
    tmp_path: Path, nodes: int, **settings: Any
) -> Iterator[tuple[RedisProcess, list[ChatServer]]]:
    """A redis-server and `nodes` in-process nodes sharing it."""
    with ExitStack() as stack:
        redis = stack.enter_context(redis_server(tmp_path))
        servers = [stack.enter_context(node(redis.url, **settings)) for _ in range(nodes)]
        yield redis, servers


def backend(server: ChatServer) -> ClusterBackend:
    assert isinstance(server.backend, ClusterBackend)
    return server.backend


def ids(frames: list[Frame]) -> list[int]:
    return [f["id"] for f in frames]


# -- one conversation across two nodes ---------------------------------------------


def test_a_conversation_across_two_nodes_uses_every_command(tmp_path: Path) -> None:
    with cluster(tmp_path, 2) as (_, (a, b)):
        alice = peer(a, "alice")
        bob = peer(b, "bob")
        carol = peer(b, "carol")
        loner = peer(a, "erin")  # in no room: hears of nobody's rename

        # join: the member list and presence cross nodes.
        first = alice.request(type="join", room="lobby")
        assert first["members"] == ["alice"]
        assert first["history"] == []
        joined = bob.request(type="join", room="lobby")
        assert sorted(joined["members"]) == ["alice", "bob"]
        alice.wait(kind("member_joined", room="lobby", nick="bob"))

        # say: echo with ref to the sender, the same id (no ref) on the other node.
        echo = alice.request(type="say", room="lobby", text="hi from A")
        assert echo["type"] == "message"
        assert echo["nick"] == "alice"
        got = bob.wait(kind("message", text="hi from A"))
        assert got["id"] == echo["id"]
        assert "ref" not in got or got["ref"] is None
        reply = bob.request(type="say", room="lobby", text="hi from B")
        assert alice.wait(kind("message", text="hi from B"))["id"] == reply["id"] > echo["id"]

        # joined history replays messages sent on the other node: carol's node
        # follows lobby already (bob), dave's follows dev for the first time.
        late = carol.request(type="join", room="lobby")
        assert [m["text"] for m in late["history"]] == ["hi from A", "hi from B"]
        assert [m["id"] for m in late["history"]] == [echo["id"], reply["id"]]
        assert sorted(late["members"]) == ["alice", "bob", "carol"]
        alice.wait(kind("member_joined", room="lobby", nick="carol"))
        assert alice.request(type="join", room="dev")["type"] == "joined"
        in_dev = alice.request(type="say", room="dev", text="only in dev")
        dave = peer(b, "dave")
        dev = dave.request(type="join", room="dev")
        assert [(m["id"], m["text"]) for m in dev["history"]] == [(in_dev["id"], "only in dev")]
        assert sorted(dev["members"]) == ["alice", "dave"]

        # dm both ways across nodes, and to oneself (delivered once, as the reply).
        sent = alice.request(type="dm", to="BOB", text="psst")
        assert sent["type"] == "dm"
        assert sent["to"] == "bob"
        received = bob.wait(kind("dm", text="psst"))
        assert received["id"] == sent["id"]
        assert received["nick"] == "alice"
        assert received.get("ref") is None
        back = bob.request(type="dm", to="alice", text="yes?")
        assert alice.wait(kind("dm", text="yes?", nick="bob"))["id"] == back["id"]
        self_note = alice.request(type="dm", to="Alice", text="note to self")
        assert self_note["type"] == "dm"
        assert self_note["to"] == "alice"
        missing = alice.request(type="dm", to="nobody", text="hello?")
        assert missing["code"] == "no_such_nick"

        # topic: the reply on A, the event on B, then in rooms and joined.
        topic = alice.request(type="topic", room="lobby", topic="Release day")
        assert topic["type"] == "topic"
        assert topic["nick"] == "alice"
        bob.wait(kind("topic", room="lobby", topic="Release day", nick="alice"))
        rooms = dave.request(type="rooms")
        assert {"room": "lobby", "members": 3, "topic": "Release day"} in rooms["rooms"]
        assert {"room": "dev", "members": 2, "topic": ""} in rooms["rooms"]
        assert [r["room"] for r in rooms["rooms"]] == ["dev", "lobby"]  # in name order (1.3)
        assert dave.request(type="join", room="lobby")["topic"] == "Release day"
        alice.wait(kind("member_joined", room="lobby", nick="dave"))

        # nick: room mates on the other node hear it once, though two rooms are shared.
        assert bob.request(type="join", room="dev")["type"] == "joined"
        alice.wait(kind("member_joined", room="dev", nick="bob"))
        renamed = bob.request(type="nick", nick="robert")
        assert renamed == {"type": "renamed", "ref": renamed["ref"], "old": "bob", "new": "robert"}
        alice.wait(kind("renamed", old="bob", new="robert"))
        carol.wait(kind("renamed", old="bob", new="robert"))
        members = alice.request(type="members", room="dev")
        assert sorted(members["members"]) == ["alice", "dave", "robert"]
        assert alice.request(type="dm", to="bob", text="?")["code"] == "no_such_nick"
        assert alice.request(type="dm", to="robert", text="!")["type"] == "dm"

        # members from either node; an unknown room.
        for asker in (alice, dave):
            listed = asker.request(type="members", room="lobby")
            assert sorted(listed["members"]) == ["alice", "carol", "dave", "robert"]
        assert alice.request(type="members", room="nowhere")["code"] == "no_such_room"

        # member_left across nodes: part, and bye.
        assert carol.request(type="part", room="lobby")["type"] == "ok"
        alice.wait(kind("member_left", room="lobby", nick="carol", reason="part"))
        bob.wait(kind("member_left", room="lobby", nick="carol", reason="part"))
        assert carol.count(kind("member_left")) == 0  # a leaver is not told of itself
        assert carol.request(type="bye")["type"] == "ok"
        carol.closed()
        pong = alice.request(type="ping", token="t1")
        assert (pong["type"], pong["token"]) == ("pong", "t1")

        # No duplicates where the protocol sends one frame.
        settle("lobby", dave, alice, bob)
        settle("dev", dave, alice, bob)
        # Renames and direct messages have streams of their own: a later one
        # in the same stream comes after any repeat of an earlier one.
        assert bob.request(type="nick", nick="Robert")["type"] == "renamed"
        alice.wait(kind("renamed", old="robert", new="Robert"))
        carol_gone = carol.count(kind("renamed"))
        assert bob.request(type="dm", to="alice", text="last")["type"] == "dm"
        alice.wait(kind("dm", text="last"))
        assert alice.request(type="dm", to="robert", text="last")["type"] == "dm"
        bob.wait(kind("dm", text="last", nick="alice"))
        for client in (alice, bob, dave):
            seen = [(m["room"], m["id"]) for m in client.frames("message")]
            assert len(seen) == len(set(seen)), "a room message arrived twice"
        assert alice.count(kind("member_joined", room="lobby", nick="bob")) == 1
        assert alice.count(kind("member_joined", room="lobby", nick="carol")) == 1
        assert alice.count(kind("member_left", nick="carol")) == 1
        assert alice.count(kind("renamed", old="bob")) == 1
        assert carol_gone == 1  # heard before it left
        assert bob.count(kind("renamed", old="bob")) == 1  # its own reply only
        assert dave.count(kind("renamed", old="bob")) == 1
        assert loner.count(kind("renamed")) == 0
        assert bob.count(kind("topic")) == 1
        assert alice.count(kind("topic")) == 1
        assert alice.count(kind("dm", text="note to self")) == 1
        assert bob.count(kind("dm", text="psst")) == 1
        assert alice.count(kind("dm", text="yes?")) == 1
        assert bob.count(kind("member_joined", nick="bob")) == 0  # nobody hears of their own join
        assert alice.count(kind("message", text="hi from A")) == 1


def test_history_pages_the_same_from_either_node(tmp_path: Path) -> None:
    """Messages from both nodes (with presence and topics between them in the
    stream) page by `before`/`after`/`limit` with a correct `more`."""
    with cluster(tmp_path, 2) as (_, (a, b)):
        alice = peer(a, "alice", "paging")
        bob = peer(b, "bob", "paging")
        sent: list[int] = []
        for n in range(7):
            speaker = alice if n % 2 == 0 else bob
            sent.append(speaker.request(type="say", room="paging", text=f"m{n}")["id"])
            if n == 3:
                assert speaker.request(type="topic", room="paging", topic="mid")["type"] == "topic"
        assert sent == sorted(sent)
        for asker in (alice, bob):

            def page(**query: Any) -> tuple[list[int], bool]:
                got = asker.request(type="history", room="paging", **query)  # noqa: B023
                assert got["type"] == "history", got
                assert all(m.get("ref") is None for m in got["messages"])
                return ids(got["messages"]), got["more"]

            assert page() == (sent, False)
            assert page(limit=3) == (sent[4:], True)
            assert page(before=sent[4], limit=3) == (sent[1:4], True)
            assert page(before=sent[1], limit=3) == (sent[:1], False)
            assert page(after=sent[0], limit=4) == (sent[1:5], True)
            assert page(after=sent[4], limit=4) == (sent[5:], False)
            assert page(after=sent[-1]) == ([], False)
            assert page(before=sent[0]) == ([], False)
            texts = asker.request(type="history", room="paging", limit=2)["messages"]
            assert [(m["nick"], m["text"]) for m in texts] == [("bob", "m5"), ("alice", "m6")]
        assert bob.request(type="history", room="none")["code"] == "no_such_room"
        both = alice.request(type="history", room="paging", before=1, after=2)
        assert both["code"] == "invalid_fields"


def test_an_account_registered_on_one_node_is_checked_on_another(tmp_path: Path) -> None:
    with cluster(tmp_path, 2) as (_, (a, b)):
        frank = peer(a, "frank")
        assert frank.request(type="register", password="correct horse")["type"] == "ok"
        again = frank.request(type="register", password="another one")
        assert again["code"] == "already_registered"
        assert frank.request(type="bye")["type"] == "ok"
        frank.closed()
        intruder = Peer(b)
        refused = intruder.request(type="hello", nick="Frank")
        assert refused["code"] == "auth_failed"
        assert refused["fatal"] is True
        intruder.closed()
        wrong = Peer(b)
        assert wrong.request(type="hello", nick="frank", password="wrong horse")["code"] == (
            "auth_failed"
        )
        wrong.closed()
        # Node A released the nick before it closed the connection.
        back = peer(b, "FRANK", password="correct horse")
        assert back.request(type="ping")["type"] == "pong"
        # Taking a registered nick by rename, on another node, needs its password too.
        zoe = peer(a, "zoe")
        unproven = zoe.request(type="nick", nick="frank")
        assert unproven["code"] == "auth_failed"
        assert unproven.get("fatal", False) is False
        held = zoe.request(type="nick", nick="frank", password="correct horse")
        assert held["code"] == "nick_in_use"
        assert back.request(type="bye")["type"] == "ok"
        back.closed()
        renamed = zoe.request(type="nick", nick="frank", password="correct horse")
        assert renamed["type"] == "renamed"
        assert renamed["new"] == "frank"


# -- nicks -----------------------------------------------------------------------------


def test_a_nick_is_unique_across_nodes_until_its_holder_leaves(tmp_path: Path) -> None:
    with cluster(tmp_path, 2) as (_, (a, b)):
        alice = peer(a, "alice", "lobby")
        bob = peer(b, "bob", "lobby")
        for spelling in ("alice", "ALICE", "Alice"):
            rival = Peer(b)
            refused = rival.request(type="hello", nick=spelling)
            assert refused["code"] == "nick_in_use"
            assert refused["fatal"] is True
            rival.closed()
        taken = bob.request(type="nick", nick="aLiCe")
        assert taken["code"] == "nick_in_use"
        assert taken.get("fatal", False) is False
        assert bob.request(type="ping")["type"] == "pong"  # still connected
        # Node A's nicks are taken on node B as well, and the other way round.
        assert bob.request(type="nick", nick="bobby")["type"] == "renamed"
        rival = Peer(a)
        assert rival.request(type="hello", nick="BOBBY")["code"] == "nick_in_use"
        rival.closed()
        assert alice.request(type="nick", nick="Bobby")["code"] == "nick_in_use"
        # The old nick is free at once after a rename.
        assert peer(a, "BOB").request(type="ping")["type"] == "pong"

        # Alice's connection breaks: once her rooms hear of it, the nick is free.
        alice.close()
        bob.wait(kind("member_left", room="lobby", nick="alice", reason="lost"))
        renamed = bob.request(type="nick", nick="Alice")
        assert renamed["type"] == "renamed"
        assert renamed["new"] == "Alice"
        assert Peer(a).request(type="hello", nick="alice")["code"] == "nick_in_use"
        assert bob.request(type="nick", nick="bobby")["type"] == "renamed"
        assert peer(a, "alice").request(type="ping")["type"] == "pong"


# -- ordering --------------------------------------------------------------------------

SENDERS = 10
EACH = 50


def test_concurrent_senders_on_three_nodes_are_seen_in_one_complete_order(
    tmp_path: Path,
) -> None:
    with cluster(tmp_path, 3, **FAST) as (_, servers):
        receivers = [peer(server, f"r{i}", "lobby") for i, server in enumerate(servers)]
        senders = [peer(servers[i % 3], f"s{i}", "lobby") for i in range(SENDERS)]
        start = threading.Barrier(SENDERS)
        failures: list[BaseException] = []

        def send(client: Peer, index: int) -> None:
            try:
                start.wait(WAIT)
                rids = [
                    client.send(type="say", room="lobby", text=f"{index}:{n}") for n in range(EACH)
                ]
                wanted = set(rids)
                client.seen.wait_for(
                    lambda frames: wanted <= {f.get("ref") for f in frames}, timeout=30
                )
            except BaseException as exc:
                failures.append(exc)

        threads = [threading.Thread(target=send, args=(s, i)) for i, s in enumerate(senders)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(40)
        assert not failures, failures
        total = SENDERS * EACH
        orders = []
        for client in receivers + senders:
            client.seen.wait_for(
                lambda frames: sum(f["type"] == "message" for f in frames) >= total, timeout=20
            )
            orders.append([(m["id"], m["nick"], m["text"]) for m in client.frames("message")])
        assert len(orders[0]) == total
        assert_one_order(orders, SENDERS, EACH)
        for client in senders:
            echoes = [f for f in client.frames("message") if f.get("ref") is not None]
            assert len(echoes) == EACH  # each echo once, and only one's own


# -- a node dies without cleaning up --------------------------------------------------


def node_process(
    redis_url: str,
) -> AbstractContextManager[tuple[subprocess.Popen[str], tuple[str, int]]]:
    """`python -m chatserver --redis` with a one-second node TTL; killed by its PID."""
    return server_process("--redis", redis_url, "--node-ttl", "1")


def doomed_member(address: tuple[str, int], nick: str, room: str) -> Wire:
    wire = Wire(address)
    assert wire.hello(nick)["type"] == "welcome"
    assert wire.request(type="join", room=room)["type"] == "joined"
    return wire


def kill(proc: subprocess.Popen[str]) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)


def test_a_killed_node_is_reaped_and_its_rooms_hear_lost(tmp_path: Path) -> None:
    with (
        redis_server(tmp_path) as redis,
        node(redis.url, node_ttl=1.0) as survivor,
        node_process(redis.url) as (proc, address),
    ):
        amy = peer(survivor, "amy", "lobby")
        zed = doomed_member(address, "zed", "lobby")
        amy.wait(kind("member_joined", room="lobby", nick="zed"))
        assert sorted(amy.request(type="members", room="lobby")["members"]) == ["amy", "zed"]
        store = redis.client()
        dead_node = store.hget("chat:nick:zed", "node")
        assert store.sismember("chat:nodes", dead_node)
        kill(proc)
        killed = time.monotonic()
        left = amy.wait(kind("member_left", room="lobby", nick="zed"), timeout=10)
        assert left["reason"] == "lost"
        assert time.monotonic() - killed < 10
        assert amy.request(type="members", room="lobby")["members"] == ["amy"]
        assert not store.sismember("chat:nodes", dead_node)
        assert not store.exists("chat:nick:zed", f"chat:node:{dead_node}:nicks")
        rooms = amy.request(type="rooms")["rooms"]
        assert rooms == [{"room": "lobby", "members": 1, "topic": ""}]
        zed.close()
        again = peer(survivor, "Zed", "lobby")
        assert sorted(again.request(type="members", room="lobby")["members"]) == ["Zed", "amy"]
        settle("lobby", again, amy)
        assert amy.count(kind("member_left", nick="zed")) == 1


def test_a_dead_nodes_nick_is_taken_over_as_soon_as_its_heartbeat_expires(
    tmp_path: Path,
) -> None:
    """The survivor reaps only every 10 s here, so the takeover is `hello`'s own."""
    with (
        redis_server(tmp_path) as redis,
        node(redis.url, node_ttl=30.0) as survivor,
        node_process(redis.url) as (proc, address),
    ):
        amy = peer(survivor, "amy", "lobby")
        zed = doomed_member(address, "zed", "lobby")
        amy.wait(kind("member_joined", room="lobby", nick="zed"))
        store = redis.client()
        dead_node = store.hget("chat:nick:zed", "node")
        assert dead_node is not None
        assert dead_node != backend(survivor).node
        kill(proc)
        # While the heartbeat key lives, the nick is still held.
        deadline = time.monotonic() + 5
        while store.exists(f"chat:alive:{dead_node}"):
            assert time.monotonic() < deadline, "the dead node's heartbeat never expired"
            time.sleep(0.02)
        taken = peer(survivor, "ZED")
        left = amy.wait(kind("member_left", room="lobby", nick="zed"), timeout=WAIT)
        assert left["reason"] == "lost"
        assert amy.request(type="members", room="lobby")["members"] == ["amy"]
        assert taken.request(type="join", room="lobby")["members"] in (
            ["amy", "ZED"],
            ["ZED", "amy"],
        )
        settle("lobby", taken, amy)
        assert amy.count(kind("member_left", nick="zed")) == 1
        zed.close()


# -- Redis goes away and comes back ---------------------------------------------------


def test_nodes_survive_a_redis_outage_and_recover_by_themselves(tmp_path: Path) -> None:
    with cluster(tmp_path, 2) as (redis, (a, b)):
        alice = peer(a, "alice", "lobby")
        bob = peer(b, "bob", "lobby")
        carol = peer(a, "carol", "lobby")
        bob.wait(kind("member_joined", room="lobby", nick="carol"))
        before = alice.request(type="say", room="lobby", text="before")
        bob.wait(kind("message", text="before"))
        newest = before["id"]

        redis.stop()
        refused = alice.request(type="say", room="lobby", text="during", timeout=20)
        assert refused["type"] == "error", refused
        assert refused["code"] == "unavailable"
        assert refused.get("fatal", False) is False
        joining = bob.request(type="join", room="other", timeout=20)
        assert joining["code"] == "unavailable"
        assert joining.get("fatal", False) is False
        assert alice.request(type="ping", token="up")["token"] == "up"  # still connected
        newcomer = Peer(b)
        hello = newcomer.request(type="hello", nick="carol", timeout=20)
        assert hello["code"] == "unavailable"
        assert hello["fatal"] is True
        newcomer.closed()
        # Carol leaves while her node cannot tell the cluster: it tells it later.
        carol.close()

        redis.start()
        deadline = time.monotonic() + 30
        while True:
            after = alice.request(type="say", room="lobby", text="after", timeout=20)
            if after["type"] == "message" or time.monotonic() > deadline:
                break
            assert after["code"] == "unavailable", after
        assert after["type"] == "message", after
        assert after["id"] > newest
        assert bob.wait(kind("message", text="after"), timeout=15)["id"] == after["id"]
        reply = bob.request(type="say", room="lobby", text="back", timeout=15)
        assert alice.wait(kind("message", text="back"), timeout=15)["id"] == reply["id"]
        assert reply["id"] > after["id"]
        assert alice.count(kind("message", text="during")) == 0
        for client in (alice, bob):
            assert client.count(lambda f: f["type"] == "error" and f["fatal"]) == 0
        assert bob.count(kind("message", text="during")) == 0
        for server in (a, b):
            assert backend(server).relay.is_alive()
            assert backend(server).heartbeat.is_alive()
            assert server.writer.is_alive()
            assert server.housekeeper.is_alive()
        left = bob.wait(kind("member_left", room="lobby", nick="carol"), timeout=15)
        assert left["reason"] == "lost"
        assert sorted(bob.request(type="members", room="lobby")["members"]) == ["alice", "bob"]
        assert peer(b, "carol", "lobby").request(type="ping")["type"] == "pong"


# -- capped streams ---------------------------------------------------------------------


def test_room_streams_stay_near_their_cap(tmp_path: Path) -> None:
    """Redis keeps about `redis_history` entries per room (XADD MAXLEN ~): whole
    stream nodes go, so the length lies between the cap and twice it.

    The sender keeps a window of unacknowledged messages well below the cap, as
    a well-behaved client does: a node must be able to read a room's stream
    before Redis trims it (a burst larger than the cap is the node falling
    behind, whose members are dropped on purpose)."""
    cap, total, window = 100, 1000, 20
    with cluster(tmp_path, 1, redis_history=cap, **FAST) as (redis, (a,)):
        alice = peer(a, "alice", "lobby")
        store = redis.client()
        longest = 0
        for start in range(0, total, window):
            batch = {
                alice.send(type="say", room="lobby", text=f"n{n}")
                for n in range(start, start + window)
            }
            alice.seen.wait_for(lambda frames: batch <= {f.get("ref") for f in frames})  # noqa: B023
            longest = max(longest, store.xlen("chat:log:lobby"))
        assert longest < 2 * cap
        assert cap <= store.xlen("chat:log:lobby") < 2 * cap
        echoes = [f for f in alice.frames("message") if f.get("ref") is not None]
        assert len(echoes) == total
        assert [f["text"] for f in echoes] == [f"n{n}" for n in range(total)]
        assert ids(echoes) == sorted(set(ids(echoes)))
        assert alice.count(kind("error")) == 0
        newest = alice.request(type="history", room="lobby", limit=10)
        assert [m["text"] for m in newest["messages"]] == [f"n{n}" for n in range(990, total)]
        assert newest["more"] is True
        # Paging back ends where Redis trimmed: what is left is the newest
        # messages, without a gap, and no more than the stream holds.
        kept: list[Frame] = []
        before: int | None = None
        while True:
            query = {"limit": 100} if before is None else {"limit": 100, "before": before}
            page = alice.request(type="history", room="lobby", **query)
            kept = page["messages"] + kept
            if not page["more"]:
                break
            before = page["messages"][0]["id"]
        assert cap - 1 <= len(kept) < 2 * cap
        assert [m["text"] for m in kept] == [f"n{n}" for n in range(total - len(kept), total)]


# -- the client library resumes on another node ---------------------------------------

RETRY = ReconnectPolicy(initial=0.05, maximum=0.5, timeout=5.0)


def test_a_client_resumes_on_another_node_when_its_node_shuts_down(tmp_path: Path) -> None:
    """Node A stops while node B's client talks: the library moves to its
    fallback and delivers every stored message once, in order."""
    with (
        redis_server(tmp_path) as redis,
        node(redis.url, shutdown_grace=0.5, **FAST) as a,
        node(redis.url, **FAST) as b,
    ):
        recorder = Recorder()
        alice = Client(
            "alice",
            host=a.address[0],
            port=a.address[1],
            fallbacks=[b.address],
            on_event=recorder,
            reconnect=RETRY,
            timeout=5.0,
        )
        try:
            alice.connect()
            alice.join("lobby")
            bob = peer(b, "bob", "lobby")

            def say(text: str) -> int:
                echo = bob.request(type="say", room="lobby", text=text)
                assert echo["type"] == "message", echo
                number: int = echo["id"]
                return number

            def delivered(number: int) -> Callable[[list[ClientEvent]], bool]:
                return lambda events: any(
                    isinstance(e, RoomMessage) and e.id == number for e in events
                )

            before = [say(f"before {i}") for i in range(20)]
            recorder.wait_for(delivered(before[-1]))

            stopper = threading.Thread(target=a.shutdown)
            stopper.start()
            during = [say(f"during {i}") for i in range(30)]
            stopper.join(10)
            assert not stopper.is_alive()
            recorder.wait_for(lambda events: any(isinstance(e, Reconnected) for e in events), 15)
            assert (alice.host, alice.port) == b.address
            after = [say(f"after {i}") for i in range(5)]
            recorder.wait_for(delivered(after[-1]))

            seen = [m.id for m in recorder.of(RoomMessage) if m.room == "lobby"]
            assert seen == [*before, *during, *after], "a message was missed, repeated or reordered"
            # Alice talks through node B now; the room knows her once.
            mine = alice.say("lobby", "back on B")
            assert bob.wait(kind("message", text="back on B"))["id"] == mine.id > after[-1]
            assert alice.members("lobby").members.count("alice") == 1
            left = bob.wait(kind("member_left", room="lobby", nick="alice"))
            rejoined = bob.wait(kind("member_joined", room="lobby", nick="alice"))
            frames = bob.seen.snapshot()
            assert frames.index(left) < frames.index(rejoined)
        finally:
            alice.close()
