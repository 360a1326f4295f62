"""Section 6.9 and the history in joined (6.1): pages, limits, and fitting one frame."""

from __future__ import annotations

import pytest

from tests.conformance.wire import Clients, Frame, Wire, unique_room


def _event(reply: Frame) -> Frame:
    return {k: v for k, v in reply.items() if k != "ref"}


def post(clients: Clients, room: str, texts: list[str]) -> list[Frame]:
    """Say `texts` in `room`, in order, from as many members as the rate limit
    needs; return the messages as members receive them."""
    probe = clients.login(room)
    per_sender = max(1, probe.limits["burst"] - 5)
    messages: list[Frame] = []
    sender: Wire | None = probe
    for start in range(0, len(texts), per_sender):
        wire = sender or clients.login(room)
        sender = None
        batch = texts[start : start + per_sender]
        frames: list[Frame] = [
            {"type": "say", "id": f"p{start + n}", "room": room, "text": text}
            for n, text in enumerate(batch)
        ]
        wire.send(*frames)
        for frame in frames:
            echo = wire.reply(frame["id"])
            assert echo["type"] == "message", echo
            messages.append(_event(echo))
    ids = [m["id"] for m in messages]
    assert ids == sorted(ids), "one sender's messages are numbered in the order sent"
    return messages


def _page(wire: Wire, room: str, **query: int) -> tuple[list[Frame], bool]:
    reply = wire.request({"type": "history", "room": room, **query})
    assert reply["room"] == room
    return reply["messages"], reply["more"]


def test_history_pages_backwards_and_forwards(clients: Clients) -> None:
    room = unique_room()
    msgs = post(clients, room, [f"m{n}" for n in range(7)])
    ids = [m["id"] for m in msgs]
    reader = clients.login()  # not a member: anyone may ask
    reader.need(13)
    reply = reader.request({"type": "history", "id": 10, "room": room})
    assert reply == {"type": "history", "ref": 10, "room": room, "messages": msgs, "more": False}
    assert _page(reader, room, limit=3) == (msgs[4:], True)
    assert _page(reader, room, limit=7) == (msgs, False)
    assert _page(reader, room, before=ids[3], limit=2) == (msgs[1:3], True)
    assert _page(reader, room, before=ids[2], limit=5) == (msgs[:2], False)
    assert _page(reader, room, before=ids[2], limit=2) == (msgs[:2], False)
    assert _page(reader, room, before=ids[0]) == ([], False)
    assert _page(reader, room, after=ids[2], limit=2) == (msgs[3:5], True)
    assert _page(reader, room, after=ids[4], limit=10) == (msgs[5:], False)
    assert _page(reader, room, after=ids[4], limit=2) == (msgs[5:], False)
    assert _page(reader, room, after=ids[6]) == ([], False)
    # Ids need not exist: they are bounds.
    assert _page(reader, room, after=ids[6] + 1000) == ([], False)
    assert _page(reader, room, before=ids[6] + 1000, limit=1) == (msgs[6:], True)


def test_history_resume_by_paging_after(clients: Clients) -> None:
    """Section 13: paging with `after` while `more` is true sees each message once."""
    room = unique_room()
    msgs = post(clients, room, [f"r{n}" for n in range(9)])
    reader = clients.login()
    seen: list[Frame] = []
    last, more = msgs[1]["id"], True
    while more:
        page, more = _page(reader, room, after=last, limit=2)
        assert page, "more was true, yet the next page is empty"
        seen += page
        last = page[-1]["id"]
    assert seen == msgs[2:]


def test_history_default_limit_is_50_and_limit_100_is_allowed(clients: Clients) -> None:
    room = unique_room()
    msgs = post(clients, room, [f"x{n}" for n in range(55)])
    reader = clients.login()
    assert _page(reader, room) == (msgs[-50:], True)
    assert _page(reader, room, limit=100) == (msgs, False)
    assert _page(reader, room, limit=1) == (msgs[-1:], True)


def test_history_of_rooms_without_messages(clients: Clients) -> None:
    room = unique_room()
    wire = clients.login(room)
    assert _page(wire, room) == ([], False)
    assert _page(wire, room, after=1) == ([], False)
    wire.refused({"type": "history", "room": unique_room()}, "no_such_room")


def test_joined_carries_the_latest_history(clients: Clients) -> None:
    room = unique_room()
    probe = clients.login(room)
    keep = probe.limits["history"]
    if keep > 200:
        pytest.skip(f"history of {keep} messages is too long to fill in a bounded test")
    msgs = post(clients, room, [f"h{n}" for n in range(keep + 3)])
    joined = clients.login().join(room)
    assert joined["history"] == (msgs[-keep:] if keep else [])


def test_lists_that_would_not_fit_a_frame_are_shortened(clients: Clients) -> None:
    room = unique_room()
    probe = clients.login(room)
    max_frame, max_text = probe.limits["max_frame"], probe.limits["max_text"]
    # Four bytes of UTF-8 per character: a few messages outgrow one frame.
    count = max_frame // (4 * max_text) + 3
    if count > min(probe.limits["history"], 100):
        pytest.skip(f"max_frame {max_frame} needs {count} messages of max_text; too many")
    msgs = post(clients, room, [chr(0x1F600 + n) * max_text for n in range(count)])
    joined = clients.login().join(room)
    history = joined["history"]
    assert len(history) < count, "joined must leave out what does not fit in one frame"
    assert history == msgs[len(msgs) - len(history) :], "joined keeps the latest messages"
    reader = clients.login()
    page, more = _page(reader, room, limit=count)
    assert 1 <= len(page) < count and more is True
    assert page == msgs[-len(page) :], "a page without before/after is the newest messages"
    page, more = _page(reader, room, after=msgs[0]["id"] - 1, limit=count)
    assert 1 <= len(page) < count and more is True
    assert page == msgs[: len(page)], "a page after an id starts right after it"
