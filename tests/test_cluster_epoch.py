"""A cluster's epoch (since 1.3): named once per Redis data set.

Nodes read it from Redis, so every node says the same; a Redis restarted
with its data keeps it, and one that came back empty gets a new one.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from tests.redis_support import node, redis_server
from tests.support import WAIT, Wire


def _epoch(address: tuple[str, int], nick: str) -> str:
    """The epoch in a welcome, asking again while the node waits for Redis."""
    deadline = time.monotonic() + WAIT
    while True:
        wire = Wire(address)
        reply = wire.hello(nick, version="1.3")
        wire.close()
        if reply["type"] == "welcome":
            epoch: str = reply["epoch"]
            return epoch
        assert reply["code"] in ("unavailable", "nick_in_use"), reply
        assert time.monotonic() < deadline, f"no welcome in {WAIT} s: {reply}"
        time.sleep(0.1)  # the node reconnects to Redis on its own schedule


def test_the_epoch_is_shared_and_changes_when_redis_lost_its_data(tmp_path: Path) -> None:
    with redis_server(tmp_path) as redis, node(redis.url) as a, node(redis.url) as b:
        first = _epoch(a.address, "ann")
        assert _epoch(b.address, "bob") == first, "every node names the same generation"
        redis.stop()
        redis.start()  # from its append-only file: nothing lost
        assert _epoch(a.address, "cy") == first
        redis.stop()
        shutil.rmtree(tmp_path)
        tmp_path.mkdir()
        redis.start()  # empty
        second = _epoch(b.address, "dee")
        assert second != first
        assert _epoch(a.address, "eve") == second
