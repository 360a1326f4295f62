"""Presence in a large room grows linearly, on a real server process (since 1.3).

Before 1.3 every arrival was told to everyone already there: filling a room
of n cost n(n-1)/2 `member_joined` frames (19,900 for 200). Now a room above
`--large-room` gets a `member_count` when its count moved by 10%, so the
frames for filling it are O(n). Counted here, not timed (bench/large_room.py
measures the time).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from tests.support import Wire, server_process

LARGE = 20
MEMBERS = 200


def test_filling_a_large_room_costs_linear_presence(tmp_path: Path) -> None:
    args = ("--store", "memory", "--large-room", str(LARGE), "--max-per-address", "500")
    with server_process(*args) as (_, address):
        wires: list[Wire] = []
        known: list[int] = []  # the count each member knew last
        for n in range(MEMBERS):
            wire = Wire(address)
            assert wire.hello(f"m{n:03d}")["type"] == "welcome"
            joined = wire.request(type="join", room="big")
            assert joined["count"] == n + 1
            assert len(joined["members"]) == min(n + 1, LARGE)
            assert joined["members"] == sorted(joined["members"])
            wires.append(wire)
            known.append(joined["count"])
        kinds: Counter[str] = Counter()
        for i, wire in enumerate(wires):
            wire.send(type="ping", id="end")
            while (frame := wire.recv()) is not None and frame.get("ref") != "end":
                kinds[frame["type"]] += 1
                if frame["type"] == "member_count":
                    known[i] = frame["count"]
        for wire in wires:
            wire.close()
    presence = kinds["member_joined"] + kinds["member_count"] + kinds["member_left"]
    # Up to the threshold each arrival is told to those there before it.
    assert kinds["member_joined"] == LARGE * (LARGE - 1) // 2
    assert kinds["member_left"] == 0
    # Past it, counts grow geometrically: about 11 frames per member in all.
    assert presence <= 12 * MEMBERS + LARGE * LARGE, kinds
    assert presence < MEMBERS * (MEMBERS - 1) // 4, "far below the quadratic cost"
    # And everyone's idea of the size is within 10% of the truth.
    assert all(count * 11 >= MEMBERS * 10 for count in known), known
