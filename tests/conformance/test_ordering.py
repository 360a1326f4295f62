"""Section 12: ordering and delivery guarantees, with concurrent clients."""

from __future__ import annotations

import threading
from collections.abc import Callable

from tests.conformance.wire import Clients, Frame, Wire, unique_room


def _in_threads(jobs: list[Callable[[], object]]) -> None:
    """Run `jobs` at the same moment, one thread each; re-raise the first failure."""
    start = threading.Barrier(len(jobs))
    failures: list[BaseException] = []

    def run(job: Callable[[], object]) -> None:
        try:
            start.wait(5)
            job()
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=run, args=(job,), daemon=True) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
        assert not thread.is_alive(), "a sending thread hung"
    if failures:
        raise failures[0]


def _messages(wire: Wire, count: int, room: str) -> list[Frame]:
    """The next `count` messages of `room` this client receives, other frames skipped."""
    got: list[Frame] = []
    while len(got) < count:
        frame = wire.wait_type("message", room=room)
        got.append({k: v for k, v in frame.items() if k != "ref"})
    return got


def test_every_member_sees_one_total_order(clients: Clients) -> None:
    room = unique_room()
    senders = [clients.login(room) for _ in range(3)]
    listeners = [clients.login(room) for _ in range(2)]
    per_sender = min(12, senders[0].limits["burst"] - 5)

    def flood(wire: Wire, n: int) -> Callable[[], object]:
        frames = [
            {"type": "say", "id": f"s{n}-{k}", "room": room, "text": f"{n}:{k}"}
            for k in range(per_sender)
        ]
        return lambda: wire.send(*frames)

    _in_threads([flood(w, n) for n, w in enumerate(senders)])
    total = per_sender * len(senders)
    views = [_messages(w, total, room) for w in [*senders, *listeners]]
    reference = views[0]
    ids = [m["id"] for m in reference]
    assert ids == sorted(ids) and len(set(ids)) == total, "ids strictly increase in a room"
    for view in views[1:]:
        assert view == reference, "all members see the same messages in the same order"
    for n, sender in enumerate(senders):
        mine = [m["text"] for m in reference if m["nick"] == sender.nick]
        assert mine == [f"{n}:{k}" for k in range(per_sender)], "a client's commands keep order"


def test_echo_means_the_message_is_in_history(clients: Clients) -> None:
    room = unique_room()
    sender = clients.login(room)
    reader = clients.login()  # another connection, not even a member
    for n in range(5):
        echo = sender.say(room, f"stored {n}")
        page = reader.request(
            {"type": "history", "room": room, "before": echo["id"] + 1, "limit": 1}
        )
        assert page["messages"] == [{k: v for k, v in echo.items() if k != "ref"}]


def test_no_gap_between_joined_history_and_live_messages(clients: Clients) -> None:
    room = unique_room()
    sender = clients.login(room)
    total = min(30, sender.limits["burst"] - 5)
    frames = [{"type": "say", "id": k, "room": room, "text": f"live {k}"} for k in range(total)]
    joiners = [clients.login() for _ in range(3)]
    # The sender floods the room while the joiners join: at the start, a third
    # of the way in, and two thirds of the way in.
    flood = threading.Thread(target=lambda: sender.send(*frames), daemon=True)
    flood.start()
    joins: list[Frame] = [joiners[0].join(room)]
    echoes: list[Frame] = []
    for k in range(total):
        echoes.append(sender.reply(k))
        if k + 1 in (total // 3, 2 * total // 3):
            joins.append(joiners[len(joins)].join(room))
    flood.join(10)
    sent = [m["id"] for m in echoes]
    assert sent == sorted(sent)
    for joiner, joined in zip(joiners, joins, strict=True):
        history = [m["id"] for m in joined["history"]]
        last = history[-1] if history else 0
        expected = [i for i in sent if i > last]
        live: list[int] = []
        while (live[-1] if live else last) != sent[-1]:
            live.append(joiner.wait_type("message", room=room)["id"])
        # A message may be both at the end of history and live; nothing is missed.
        assert live == sorted(live), "live messages come in id order"
        unique = [i for i in live if i not in history]
        assert unique == expected, f"joined history ended at {last}; missed or extra ids"


def test_presence_events_come_in_the_order_they_happened(clients: Clients) -> None:
    room = unique_room()
    watcher = clients.login(room)
    mover = clients.login()
    mover.join(room)
    mover.request({"type": "part", "room": room})
    mover.join(room)
    old = mover.nick
    new = f"{old}x"[:24]
    mover.request({"type": "nick", "nick": new})
    mover.request({"type": "topic", "room": room, "topic": "moved"})
    mover.request({"type": "part", "room": room})
    frames = [watcher.next(f"presence event {n}") for n in range(6)]
    assert frames == [
        {"type": "member_joined", "room": room, "nick": old},
        {"type": "member_left", "room": room, "nick": old, "reason": "part"},
        {"type": "member_joined", "room": room, "nick": old},
        {"type": "renamed", "old": old, "new": new},
        {"type": "topic", "room": room, "topic": "moved", "nick": new},
        {"type": "member_left", "room": room, "nick": new, "reason": "part"},
    ]
