"""Session resume against a real server process (since 1.3).

The old connection is a ghost: its client went away without the server
noticing (it neither reads nor closes, as when its network is gone), so the
server would hold its nick until the ping timeout (a minute here). With its
resume token a new connection takes over at once.
"""

from __future__ import annotations

from pathlib import Path

from tests.support import Wire, server_process

PATIENT = ("--ping-interval", "30", "--ping-timeout", "30")


def test_a_client_whose_connection_died_resumes_at_once(tmp_path: Path) -> None:
    with server_process("--db", str(tmp_path / "chat.db"), *PATIENT) as (_, address):
        observer = Wire(address)
        observer.hello("watcher")
        observer.request(type="join", room="lobby")
        ghost = Wire(address)
        welcome = ghost.hello("alice", version="1.3")
        assert welcome["resumed"] is False
        ghost.request(type="join", room="lobby")
        seen = observer.request(type="say", room="lobby", text="seen")["id"]
        ghost.until(lambda f: f.get("text") == "seen")
        # From here on the ghost reads nothing and never closes its socket.
        missed = [
            observer.request(type="say", room="lobby", text=f"missed {n}")["id"] for n in range(3)
        ]

        back = Wire(address)
        again = back.hello("alice", version="1.3", resume=welcome["resume"])
        assert again["type"] == "welcome", again  # not nick_in_use: no wait for the timeout
        assert again["resumed"] is True and again["nick"] == "alice"
        assert again["epoch"] == welcome["epoch"]
        page = back.request(type="history", room="lobby", after=seen)
        assert [m["id"] for m in page["messages"]] == missed
        echo = back.request(type="say", room="lobby", text="back")
        assert echo["type"] == "message"

        # The watcher saw no one leave or arrive: only the messages.
        frames = []
        observer.send(type="ping", id="last")
        while (frame := observer.recv()) is not None and frame.get("ref") != "last":
            frames.append(frame)
        assert frames == [{k: v for k, v in echo.items() if k != "ref"}], frames
        members = observer.request(type="members", room="lobby")["members"]
        assert members == ["alice", "watcher"]

        # The ghost's connection ends with the fatal `replaced`, after what was queued.
        rest = ghost.closed()
        assert rest[-1]["type"] == "error" and rest[-1]["code"] == "replaced", rest[-3:]
        assert rest[-1]["fatal"] is True

        # The old token is spent; the new one is not.
        thief = Wire(address)
        refused = thief.hello("alice", version="1.3", resume=welcome["resume"])
        assert refused["code"] == "nick_in_use"


def test_two_connections_of_one_nick_send_the_same_key_in_turn(tmp_path: Path) -> None:
    """A say sent on the ghost just before it died, and its retry on the resumed
    connection: stored once, and both get the same message."""
    with server_process("--db", str(tmp_path / "chat.db"), *PATIENT) as (_, address):
        observer = Wire(address)
        observer.hello("watcher")
        observer.request(type="join", room="lobby")
        ghost = Wire(address)
        welcome = ghost.hello("alice", version="1.3")
        ghost.request(type="join", room="lobby")
        ghost.send(type="say", id="s1", room="lobby", text="maybe lost", key="k1")
        first = observer.until(lambda f: f.get("type") == "message")
        back = Wire(address)
        assert back.hello("alice", version="1.3", resume=welcome["resume"])["resumed"]
        retry = back.request(type="say", room="lobby", text="maybe lost", key="k1")
        assert {k: v for k, v in retry.items() if k != "ref"} == first
        observer.send(type="ping", id="end")
        assert observer.recv() == {"type": "pong", "ref": "end"}, "nothing before the pong"
        history = observer.request(type="history", room="lobby")
        assert [m["text"] for m in history["messages"]] == ["maybe lost"]
