"""The terminal client without a terminal: commands from a pipe, one line per event."""

from __future__ import annotations

import re
import socket
import sys
from pathlib import Path

import pytest

from chatclient import Client
from chatproto import (
    DirectMessage,
    Error,
    Join,
    Joined,
    MemberCount,
    MemberList,
    Members,
    RoomMessage,
    Welcome,
    parse_event,
)
from chatserver.sqlite_store import SQLiteStore
from tests.client.conftest import ClientFactory, ServerFactory, next_of, start_on_port, start_server
from tests.client.fakes import Peer, ScriptedServer
from tests.client.procs import Lines, ends_with, run_client

STAMP = r"\d\d:\d\d"


def test_pipe_sends_lines_and_commands(server_port: int, make_client: ClientFactory) -> None:
    bob = make_client("bob")
    bob.join("lobby")
    script = "hello everyone\n/msg bob psst\n/who\n/join dev\nin dev now\n/topic dev talk\n/rooms\n"
    done = run_client(server_port, "--nick", "alice", stdin=script)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    lines = done.stdout.splitlines()
    expected = [
        rf"{STAMP} \* connected to threadchat as alice",
        rf"{STAMP} #lobby \* you joined #lobby; 2 here: alice, bob",
        rf"{STAMP} #lobby <alice> hello everyone",
        rf"{STAMP} \[dm\] alice -> bob psst",
        rf"{STAMP} #lobby \* 2 members: alice, bob",
        rf"{STAMP} #dev \* you joined #dev; 1 here: alice",
        rf"{STAMP} #dev <alice> in dev now",
        rf"{STAMP} #dev \* alice set the topic: dev talk",
        rf"{STAMP} \* 2 rooms: #dev \(1\) dev talk, #lobby \(2\)",
    ]
    assert len(lines) == len(expected), lines
    for line, pattern in zip(lines, expected, strict=True):
        assert re.fullmatch(pattern, line), (line, pattern)
    # Everything was acknowledged, so it is all there now.
    assert next_of(bob, RoomMessage).text == "hello everyone"
    assert next_of(bob, DirectMessage).text == "psst"
    assert [m.text for m in bob.history("dev").messages] == ["in dev now"]


def test_pipe_shows_other_peoples_messages(server_port: int, make_client: ClientFactory) -> None:
    bob = make_client("bob")
    bob.join("lobby")
    reader = Lines(
        [sys.executable, "-m", "chatclient", "--port", str(server_port), "--nick", "carol"]
    )
    try:
        reader.expect(lambda line: "you joined #lobby" in line)
        bob.say("lobby", "are you there, carol?")
        reader.expect(lambda line: line.endswith("#lobby <bob> are you there, carol?"))
    finally:
        code, stderr = reader.finish()
    assert code == 0 and stderr == ""


def test_pipe_errors_are_one_line_each(server_port: int) -> None:
    script = "/frobnicate\n/msg nobody hello?\n/join Not A Room\n/switch nowhere\n/part dev\n"
    done = run_client(server_port, "--nick", "alice", stdin=script)
    assert done.returncode == 1  # something was refused
    assert "Traceback" not in done.stderr + done.stdout
    assert " ! " not in done.stdout  # errors go to stderr
    errors = [line for line in done.stderr.splitlines() if " ! " in line]
    assert [e.split(" ! ", 1)[1] for e in errors] == [
        "unknown command /frobnicate; /help lists the commands",
        "no_such_nick: nobody is connected as 'nobody'",
        "invalid room name 'not a room': 1-32 lower-case letters, digits, '_' or '-', "
        "starting with a letter or digit",
        "you are not in #nowhere: /join nowhere first",
        "not_in_room: you are not in room 'dev'",
    ]


def test_pipe_json_prints_frames(server_port: int, make_client: ClientFactory) -> None:
    make_client("bob")
    script = "hello\n/msg bob hi\n/msg nobody x\n/frobnicate\n"
    done = run_client(server_port, "--nick", "alice", "--json", stdin=script)
    assert done.returncode == 1
    frames = [parse_event(line.encode()) for line in done.stdout.splitlines()]
    assert [type(f) for f in frames] == [Welcome, Joined, RoomMessage, DirectMessage, Error]
    assert [getattr(f, "ref", None) for f in frames] == [1, 2, 3, 4, 5]
    error = frames[-1]
    assert isinstance(error, Error) and error.code == "no_such_nick"
    # What is not a frame goes to stderr.
    assert done.stderr.strip() == "! unknown command /frobnicate; /help lists the commands"


def test_quit_stops_reading(server_port: int, make_client: ClientFactory) -> None:
    bob = make_client("bob")
    bob.join("lobby")
    done = run_client(server_port, "--nick", "alice", stdin="first\n/quit\nnever sent\n")
    assert done.returncode == 0
    assert [m.text for m in bob.history("lobby").messages] == ["first"]


def test_cannot_connect_is_one_line() -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
    done = run_client(port, "--nick", "alice", stdin="hello\n")
    assert done.returncode == 1
    assert done.stderr.startswith("chat-client: cannot connect to 127.0.0.1:")
    assert len(done.stderr.splitlines()) == 1


def test_nick_in_use_is_one_line(server_port: int, make_client: ClientFactory) -> None:
    make_client("alice")
    done = run_client(server_port, "--nick", "alice", stdin="hello\n")
    assert done.returncode == 1
    assert done.stderr == "chat-client: nick 'alice' is in use; choose another with --nick\n"


def test_reconnects_and_shows_missed_messages(tmp_path: Path, make_server: ServerFactory) -> None:
    db = tmp_path / "chat.db"
    first = start_server(SQLiteStore(db))
    port = first.address[1]
    client = Lines([sys.executable, "-m", "chatclient", "--port", str(port), "--nick", "alice"])
    servers = [first]
    try:
        client.expect(lambda line: "you joined #lobby" in line)
        first.shutdown()
        client.expect(lambda line: "reconnect attempt 1 failed" in line)
        # Nothing listens on alice's port while bob talks through another
        # instance on the same database: alice cannot see these live.
        aside = start_server(SQLiteStore(db))
        with Client("bob", port=aside.address[1]) as bob:
            bob.join("lobby")
            for i in range(3):
                bob.say("lobby", f"missed {i}")
        aside.shutdown()
        servers.append(start_on_port(port, db))
        client.expect(lambda line: "reconnected as alice; 3 missed messages" in line, timeout=20)
        for i in range(3):
            client.expect(ends_with(f"#lobby <bob> missed {i}"))
        client.proc.stdin.write("I am back\n")  # type: ignore[union-attr]
        client.proc.stdin.flush()  # type: ignore[union-attr]
        client.expect(lambda line: line.endswith("#lobby <alice> I am back"))
    finally:
        code, stderr = client.finish()
        for server in servers:
            server.shutdown()
    assert code == 0, stderr


REFUSALS = [
    ("x" * 4001, "the text is too long: at most 4000 characters"),
    ("bell \x07 here", "the text contains control characters"),
    ("/join Bad!", "invalid room name 'bad!'"),
    ("/frobnicate", "unknown command /frobnicate"),
    ("/history 500", "usage: /history [N], N from 1 to 100"),
    ("/msg bob", "usage: /msg NICK TEXT"),
    ("/nick", "usage: /nick NEW"),
    ("/switch nowhere", "you are not in #nowhere"),
]


@pytest.mark.parametrize(("line", "says"), REFUSALS, ids=[s for _, s in REFUSALS])
def test_every_local_refusal_fails_the_pipe(server_port: int, line: str, says: str) -> None:
    done = run_client(server_port, "--nick", "alice", stdin=f"{line}\nstill sent\n")
    assert done.returncode == 1, done.stdout
    assert says in done.stderr and len(done.stderr.splitlines()) == 1
    assert " ! " not in done.stdout
    assert done.stdout.splitlines()[-1].endswith("#lobby <alice> still sent")


def test_no_room_fails_the_pipe(server_port: int) -> None:
    done = run_client(server_port, "--nick", "alice", "--room", "", stdin="hello?\n")
    assert done.returncode == 1
    assert done.stderr.strip().endswith("! you are in no room: /join ROOM first")


def test_a_pipe_shows_no_motd_or_history_unless_asked(make_server: ServerFactory) -> None:
    port = make_server(motd="Be kind.").address[1]
    with Client("bob", port=port) as bob:
        bob.join("lobby")
        bob.say("lobby", "from before")
    quiet = run_client(port, "--nick", "alice", stdin="")
    assert quiet.returncode == 0, quiet.stderr
    assert "Be kind." not in quiet.stdout and "from before" not in quiet.stdout
    assert "you joined #lobby" in quiet.stdout
    told = run_client(port, "--nick", "alice", "--backlog", stdin="")
    lines = told.stdout.splitlines()
    assert lines[1].endswith("* Be kind.")
    # "You joined" first, then what the room replays.
    assert "you joined #lobby" in lines[2] and lines[3].endswith("#lobby <bob> from before")


def test_topics_are_remembered_and_cleared(server_port: int) -> None:
    script = (
        "/topic\n/topic first topic\n/topic\n/topic --clear\n/topic\n/topic x\n/topic ''\n/topic\n"
    )
    done = run_client(server_port, "--nick", "alice", stdin=script)
    assert done.returncode == 0, done.stderr
    notes = [line.split(" * ", 1)[1] for line in done.stdout.splitlines()[2:]]
    assert notes == [
        "no topic is set",
        "alice set the topic: first topic",
        "topic: first topic",
        "alice cleared the topic",
        "no topic is set",
        "alice set the topic: x",
        "alice cleared the topic",
        "no topic is set",
    ]


def test_exit_can_be_said(server_port: int, make_client: ClientFactory) -> None:
    bob = make_client("bob")
    bob.join("lobby")
    done = run_client(server_port, "--nick", "alice", stdin="/say exit\n// exit\nexit\nnot sent\n")
    assert done.returncode == 0, done.stderr
    assert [m.text for m in bob.history("lobby").messages] == ["exit", "/ exit"]


def test_part_says_where_you_talk_only_when_it_changed(server_port: int) -> None:
    script = "/join dev\n/switch lobby\n/part dev\n/join ops\n/part\n"
    done = run_client(server_port, "--nick", "alice", stdin=script)
    assert done.returncode == 0, done.stderr
    notes = [line.split(" * ", 1)[1] for line in done.stdout.splitlines()[2:]]
    assert notes == [
        "you joined #dev; 1 here: alice",
        "now talking in #lobby",
        "you left #dev",  # and lobby was current already: nothing more
        "you joined #ops; 1 here: alice",
        "you left #ops",
        "now talking in #lobby",  # after "you left", not before
    ]


def test_a_line_typed_while_disconnected_is_sent_once_after(
    tmp_path: Path, make_server: ServerFactory
) -> None:
    db = tmp_path / "chat.db"
    first = start_server(SQLiteStore(db))
    port = first.address[1]
    client = Lines([sys.executable, "-m", "chatclient", "--port", str(port), "--nick", "alice"])
    servers = [first]
    try:
        client.expect(lambda line: "you joined #lobby" in line)
        first.shutdown()
        client.expect(lambda line: "reconnect attempt 1 failed" in line)
        client.proc.stdin.write("typed while away\n")  # type: ignore[union-attr]
        client.proc.stdin.flush()  # type: ignore[union-attr]
        client.expect(lambda line: "not connected: this will be sent" in line)
        servers.append(start_on_port(port, db))
        client.expect(lambda line: line.endswith("#lobby <alice> typed while away"), timeout=20)
        with Client("bob", port=port) as bob:
            texts = [m.text for m in bob.history("lobby").messages]
        assert texts.count("typed while away") == 1
    finally:
        code, stderr = client.finish()
        for server in servers:
            server.shutdown()
    assert code == 0, stderr


def test_who_in_a_large_room_shows_the_count_and_a_page() -> None:
    """PROTOCOL.md 1.3: `joined` and `members` carry the first page and the count."""
    first_page = [f"user{i:04d}" for i in range(3)]

    def large(peer: Peer) -> None:
        peer.welcome()
        join = peer.expect(Join)
        peer.send(
            Joined(ref=join.id, room="lobby", topic="", members=first_page, history=[], count=5000)
        )
        who = peer.expect(Members)
        assert who.room == "lobby" and who.after is None
        peer.send(
            MemberList(ref=who.id, room="lobby", members=first_page, count=5001, more=True),
            MemberCount(room="lobby", count=5600),
        )
        peer.idle()

    with ScriptedServer(large) as fake:
        done = run_client(fake.port, "--nick", "alice", stdin="/who\n")
    assert done.returncode == 0, done.stderr
    notes = [line.split(" * ", 1)[1] for line in done.stdout.splitlines()[1:]]
    assert notes[:2] == [
        "you joined #lobby; 5000 here (/who lists them)",
        "5001 members; the first 3: user0000, user0001, user0002",
    ]


def test_who_in_a_large_room_of_a_real_server(make_server: ServerFactory) -> None:
    port = make_server(large_room=3).address[1]
    members = [Client(f"m{i}", port=port) for i in range(5)]
    try:
        for member in members:
            member.connect()
            member.join("big")
        done = run_client(port, "--nick", "alice", "--room", "big", stdin="/who\n")
    finally:
        for member in members:
            member.close()
    assert done.returncode == 0, done.stderr
    notes = [line.split(" * ", 1)[1] for line in done.stdout.splitlines()[1:]]
    assert notes[0] == "you joined #big; 6 here (/who lists them)"
    assert notes[1] == "6 members: alice, m0, m1, m2, m3, m4"
