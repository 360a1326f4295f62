"""The examples, run as programs against a real server, judged by what they do."""

from __future__ import annotations

import ast
import json
import re
import signal
import subprocess
import sys

from chatproto import Joined, LeaveReason, MemberJoined, MemberLeft, RoomMessage, parse_event
from tests.client.conftest import ClientFactory, next_of
from tests.client.procs import ROOT, Lines, env


def test_bot_answers_time_and_greets(server_port: int, make_client: ClientFactory) -> None:
    alice = make_client("alice")
    alice.join("lobby")
    bot = Lines([sys.executable, "examples/bot.py", "--port", str(server_port), "--room", "lobby"])
    try:
        bot.expect(lambda line: line == "timebot is in #lobby")
        next_of(alice, MemberJoined, nick="timebot")
        alice.say("lobby", "!time")
        answer = next_of(alice, RoomMessage, nick="timebot")
        assert re.fullmatch(r"alice: it is \d\d:\d\d:\d\d \S*", answer.text), answer.text
        alice.say("lobby", "time?")  # not a command: no answer
        with make_client("carol") as carol:
            carol.join("lobby")
            greeting = next_of(carol, RoomMessage, nick="timebot")
            assert greeting.text == "Welcome, carol!"
        assert next_of(alice, RoomMessage, nick="timebot").text == "Welcome, carol!"
    finally:
        bot.proc.send_signal(signal.SIGTERM)
        code, stderr = bot.finish()
    assert code == 0, stderr
    assert "Traceback" not in stderr
    # It said `bye` on the way out.
    assert next_of(alice, MemberLeft, nick="timebot").reason == LeaveReason.QUIT


def test_raw_client(server_port: int, make_client: ClientFactory) -> None:
    alice = make_client("alice")
    alice.join("lobby")
    earlier = alice.say("lobby", "before raw arrives")
    done = subprocess.run(
        [
            sys.executable,
            "examples/raw_client.py",
            "--port",
            str(server_port),
            "--nick",
            "rawbie",
            "--room",
            "lobby",
            "--text",
            "hello from a raw socket",
        ],
        capture_output=True,
        text=True,
        timeout=30,
        env=env(),
        cwd=ROOT,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    sent = [json.loads(line[3:]) for line in done.stdout.splitlines() if line.startswith("-> ")]
    got = [
        parse_event(line[3:].encode())
        for line in done.stdout.splitlines()
        if line.startswith("<- ")
    ]
    assert [f["type"] for f in sent] == ["hello", "join", "say", "bye"]
    assert [e.type for e in got] == ["welcome", "joined", "message", "ok"]
    joined, echo = got[1], got[2]
    assert isinstance(joined, Joined) and isinstance(echo, RoomMessage)
    assert joined.members == ["alice", "rawbie"]
    assert [m.id for m in joined.history] == [earlier.id]
    said = next_of(alice, RoomMessage, nick="rawbie")
    assert said.text == "hello from a raw socket"
    assert (echo.id, echo.ref) == (said.id, 3)
    assert next_of(alice, MemberLeft, nick="rawbie").reason == LeaveReason.QUIT


def test_raw_client_needs_only_chatproto() -> None:
    tree = ast.parse((ROOT / "examples" / "raw_client.py").read_text())
    imported = {
        name.split(".")[0]
        for node in ast.walk(tree)
        for name in (
            [a.name for a in node.names]
            if isinstance(node, ast.Import)
            else [node.module or ""]
            if isinstance(node, ast.ImportFrom)
            else []
        )
    }
    assert "chatproto" in imported and "chatclient" not in imported
