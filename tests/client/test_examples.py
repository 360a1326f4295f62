"""The examples, run as programs against a real server, judged by what they do."""

from __future__ import annotations

import ast
import json
import re
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

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


VENV_PYTHON = ROOT / ".venv" / "bin" / "python"
needs_venv = pytest.mark.skipif(
    not VENV_PYTHON.exists(), reason="the documented commands need the .venv of `make test`"
)


def documented(path: Path) -> list[str]:
    """The shell commands shown in a module's docstring (indented lines of the first one)."""
    doc = ast.get_docstring(ast.parse(path.read_text())) or ""
    return [line.strip() for line in doc.splitlines() if line.startswith("    ")]


def on_port(command: str, port: int) -> list[str]:
    """`command` as a person pastes it, aimed at the test's server instead of 7878."""
    return [word if word != "7878" else str(port) for word in shlex.split(command)]


def test_example_docstrings_show_commands_that_work(
    server_port: int, make_client: ClientFactory
) -> None:
    for path in (ROOT / "examples").glob("*.py"):
        commands = documented(path)
        assert commands, f"{path.name} shows no command"
        for command in commands:
            assert command.startswith(".venv/bin/python examples/"), command
    if not VENV_PYTHON.exists():
        pytest.skip("the documented commands need the .venv of `make test`")
    alice = make_client("alice")
    alice.join("lobby")
    (raw,) = documented(ROOT / "examples" / "raw_client.py")
    done = subprocess.run(
        on_port(raw, server_port),
        capture_output=True,
        text=True,
        timeout=30,
        env=env(),
        cwd=ROOT,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert next_of(alice, RoomMessage, nick="raw").text == "hi"
    (bot,) = documented(ROOT / "examples" / "bot.py")
    running = Lines(on_port(bot, server_port))
    try:
        running.expect(lambda line: line == "timebot is in #lobby")
    finally:
        running.proc.send_signal(signal.SIGTERM)
        code, stderr = running.finish()
    assert code == 0, stderr


def readme_snippet() -> str:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Using `chatproto` from Python", 1)[1]
    return section.split("```python\n", 1)[1].split("```", 1)[0]


def run_snippet(port: int) -> subprocess.CompletedProcess[str]:
    code = readme_snippet().replace("7878", str(port))
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=30,
        env=env(),
        cwd=ROOT,
        check=False,
    )


def test_the_readme_snippet_sends_its_message(server_port: int, make_client: ClientFactory) -> None:
    alice = make_client("alice")
    alice.join("lobby")
    done = run_snippet(server_port)
    assert done.returncode == 0, done.stderr
    assert next_of(alice, RoomMessage, nick="ada").text == "hello from chatproto"


def test_the_readme_snippet_stops_when_the_server_hangs_up() -> None:
    """The old snippet spun at 100% CPU on `recv` returning b'' (here: until the timeout)."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]

        def hang_up() -> None:
            conn, _ = listener.accept()
            with conn:
                received = b""
                while received.count(b"\n") < 3:  # hello, join, say: read, then close
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    received += chunk

        thread = threading.Thread(target=hang_up)
        thread.start()
        started = time.monotonic()
        done = run_snippet(port)
        thread.join(5)
    assert done.returncode == 1
    assert "the server closed the connection" in done.stderr
    assert time.monotonic() - started < 30


@needs_venv
def test_readme_commands_for_python_use_the_venv() -> None:
    readme = (ROOT / "README.md").read_text()
    bare = re.findall(r"(?<![/\w])python3? (?:-m \w+|examples/)", readme)
    assert not bare, f"commands that need the virtual environment: {bare}"


def test_the_readme_tls_files_are_ignored_by_git() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "-keyout key.pem -out cert.pem" in readme
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    done = subprocess.run(
        ["git", "check-ignore", "cert.pem", "key.pem"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=30,
        check=False,
    )
    assert done.stdout.split() == ["cert.pem", "key.pem"]
