"""A cluster node killed with SIGKILL while its clients talk: they move to another
node with the library's reconnect and miss no stored message, nor see one twice."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from chatclient import Client, Reconnected, ReconnectPolicy
from chatproto import LeaveReason, MemberLeft, RoomMessage
from tests.client.conftest import Recorder, next_of
from tests.redis_support import node, redis_server
from tests.support import server_process

FAST_RETRY = ReconnectPolicy(initial=0.05, maximum=0.5, timeout=5.0)
FAST = {"rate": 1000.0, "burst": 1000, "shutdown_grace": 0.5}


def test_clients_of_a_killed_node_fail_over_and_miss_nothing(tmp_path: Path) -> None:
    with (
        redis_server(tmp_path) as redis,
        node(redis.url, **FAST) as survivor,
        server_process("--redis", redis.url, "--node-ttl", "1", "--rate", "1000") as (doomed, a),
    ):
        recorder = Recorder()
        alice = Client(
            "alice",
            host=a[0],
            port=a[1],
            fallbacks=[survivor.address],
            on_event=recorder,
            reconnect=FAST_RETRY,
        )
        bob = Client("bob", port=survivor.address[1], timeout=5.0)
        try:
            alice.connect()
            alice.join("lobby")
            bob.connect()
            bob.join("lobby")
            before = [bob.say("lobby", f"before {i}").id for i in range(50)]
            recorder.wait_for(lambda ev: any(getattr(e, "id", None) == before[-1] for e in ev))

            os.kill(doomed.pid, signal.SIGKILL)
            doomed.wait(10)
            during = [bob.say("lobby", f"during {i}").id for i in range(50)]

            # Alice's nick was held by the dead node: she gets it back once the
            # node's heartbeat expires, and her room hears that she was lost.
            lost = next_of(bob, MemberLeft, timeout=15, nick="alice")
            assert lost.reason is LeaveReason.LOST
            back = next_of(alice, Reconnected, timeout=15)
            assert (alice.host, alice.port) == survivor.address
            assert [j.room for j in back.rooms] == ["lobby"]
            after = bob.say("lobby", "after").id
            recorder.wait_for(lambda ev: any(getattr(e, "id", None) == after for e in ev), 10)

            seen = [m.id for m in recorder.of(RoomMessage) if m.room == "lobby"]
            assert seen == [*before, *during, after], "a message was missed, repeated or reordered"
            assert alice.members("lobby").members.count("alice") == 1
        finally:
            alice.close()
            bob.close()
