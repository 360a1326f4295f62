"""The interactive terminal client in a real pseudo-terminal, driven through tmux.

Each test runs its own tmux server (`tmux -L <unique>`) and kills only that.
Screens are polled with a deadline; every wait ends on what the screen shows.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from chatclient import Client
from chatclient.render import nick_style
from chatproto import MemberJoined, MemberLeft, RoomMessage
from chatserver.sqlite_store import SQLiteStore
from tests.client.conftest import ClientFactory, next_of, start_on_port, start_server
from tests.client.procs import ROOT

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux")

EXITED = "chat-client exited with status"


class Tmux:
    """A private tmux server; one session (window) per client."""

    def __init__(self) -> None:
        self.socket = f"chatclient-test-{uuid.uuid4().hex[:12]}"

    def __call__(self, *args: str) -> str:
        done = subprocess.run(
            ["tmux", "-L", self.socket, "-f", "/dev/null", *args],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
        return done.stdout

    def start(self, name: str, port: int, nick: str, *args: str) -> None:
        # The shell reports the exit status on the screen: tmux's own
        # #{pane_dead_status} is not always filled in.
        flags = " ".join(shlex.quote(a) for a in args)
        command = (
            f"env -u CHAT_PASSWORD -u CHAT_SERVER_PASSWORD "
            f"{shlex.quote(sys.executable)} -m chatclient --port {port} --nick {nick} {flags}; "
            f"echo {EXITED} $?; sleep 60"
        )
        self("new-session", "-d", "-s", name, "-x", "120", "-y", "30", "-c", str(ROOT), command)

    def type(self, name: str, text: str, *, enter: bool = True) -> None:
        if text:
            self("send-keys", "-t", name, "-l", text)
        if enter:
            self("send-keys", "-t", name, "Enter")

    def keys(self, name: str, *keys: str) -> None:
        self("send-keys", "-t", name, *keys)

    def screen(self, name: str, *, colours: bool = False) -> str:
        return self("capture-pane", "-p", *(["-e"] if colours else []), "-t", name)

    def wait(self, name: str, ready: Callable[[str], bool], timeout: float = 10) -> str:
        """The screen, once `ready` says it shows what it should."""
        deadline = time.monotonic() + timeout
        while True:
            screen = self.screen(name)
            if ready(screen):
                return screen
            if time.monotonic() > deadline:
                raise AssertionError(f"the screen of {name} never got there:\n{screen}")
            time.sleep(0.05)  # polling the pane, not synchronising

    def exit_status(self, name: str) -> int:
        """Wait for the client in `name` to exit; its exit status."""
        screen = self.wait(name, lambda s: EXITED in s)
        return int(screen.split(EXITED, 1)[1].split()[0])

    def kill(self) -> None:
        subprocess.run(
            ["tmux", "-L", self.socket, "kill-server"], capture_output=True, timeout=10, check=False
        )


@pytest.fixture
def tmux() -> Iterator[Tmux]:
    server = Tmux()
    yield server
    server.kill()


def prompt_line(screen: str) -> str:
    """The last line with anything on it: where the prompt is."""
    lines = [line for line in screen.splitlines() if line.strip()]
    return lines[-1] if lines else ""


def test_two_people_talk(tmux: Tmux, server_port: int, make_client: ClientFactory) -> None:
    watcher = make_client("watcher")
    watcher.join("lobby")
    # The prompt shows once the client has started and joined (the watcher knows then).
    tmux.start("alice", server_port, "alice")
    tmux.wait("alice", lambda s: prompt_line(s) == "[lobby] >")
    next_of(watcher, MemberJoined, nick="alice")
    tmux.start("bob", server_port, "bob")
    tmux.wait("bob", lambda s: prompt_line(s) == "[lobby] >")
    next_of(watcher, MemberJoined, nick="bob")
    tmux.wait("alice", lambda s: "* bob joined" in s)
    tmux.wait("bob", lambda s: "you joined #lobby; 3 here: alice, bob, watcher" in s)

    tmux.type("bob", "hi alice, how are you?")
    tmux.wait("alice", lambda s: "#lobby <bob> hi alice, how are you?" in s)
    bob_screen = tmux.wait("bob", lambda s: "#lobby <bob> hi alice, how are you?" in s)
    assert "] > hi alice" not in bob_screen  # the typed line gives way to the echo

    tmux.type("alice", "/msg bob this is between us")
    tmux.wait("bob", lambda s: "[dm] alice -> bob this is between us" in s)
    tmux.wait("alice", lambda s: "[dm] alice -> bob this is between us" in s)
    assert next_of(watcher, RoomMessage).text == "hi alice, how are you?"

    tmux.type("bob", "/who")
    tmux.wait("bob", lambda s: "#lobby * 3 members: alice, bob, watcher" in s)

    # The same nick has the same colour on both screens.
    colour = nick_style("bob").removeprefix("nick.")
    for name in ("alice", "bob"):
        assert f"38;5;{colour}m<bob>" in tmux.screen(name, colours=True)

    tmux.type("alice", "/frobnicate")
    screen = tmux.wait("alice", lambda s: "! unknown command /frobnicate" in s)
    tmux.type("alice", "/msg nobody hello?")
    screen = tmux.wait("alice", lambda s: "! no_such_nick: nobody is connected as 'nobody'" in s)
    assert "Traceback" not in screen

    tmux.type("alice", "/quit")
    left = next_of(watcher, MemberLeft, nick="alice")
    assert left.reason == "quit"
    tmux.wait("bob", lambda s: "* alice quit" in s)
    assert tmux.exit_status("alice") == 0
    tmux.type("bob", "exit")
    assert tmux.exit_status("bob") == 0


def test_typed_line_survives_incoming_messages(
    tmux: Tmux, server_port: int, make_client: ClientFactory
) -> None:
    bob = make_client("bob")
    bob.join("lobby")
    tmux.start("alice", server_port, "alice")
    tmux.wait("alice", lambda s: prompt_line(s) == "[lobby] >")
    next_of(bob, MemberJoined, nick="alice")

    tmux.type("alice", "a half-typed thou", enter=False)
    tmux.wait("alice", lambda s: prompt_line(s) == "[lobby] > a half-typed thou")
    for i in range(3):
        bob.say("lobby", f"interruption {i}")
    # The lines are printed above the prompt, which is then drawn again.
    screen = tmux.wait(
        "alice",
        lambda s: "<bob> interruption 2" in s and prompt_line(s) == "[lobby] > a half-typed thou",
    )
    lines = screen.splitlines()
    assert [i for i, line in enumerate(lines) if "<bob> interruption" in line] == sorted(
        i for i, line in enumerate(lines) if "<bob> interruption" in line
    )
    assert max(i for i, line in enumerate(lines) if "interruption" in line) < lines.index(
        "[lobby] > a half-typed thou"
    )

    tmux.type("alice", "ght, finished")
    said = next_of(bob, RoomMessage, nick="alice")
    assert said.text == "a half-typed thought, finished"


PASSWORD = "correct horse battery"


def test_registered_nicks_ask_for_their_password_hidden(
    tmux: Tmux, server_port: int, make_client: ClientFactory
) -> None:
    watcher = make_client("watcher")
    watcher.join("lobby")
    for nick in ("alice", "bob"):
        owner = make_client(nick)
        owner.join("lobby")
        owner.register(PASSWORD)
        owner.close()
        next_of(watcher, MemberLeft, nick=nick)

    # At the start, as ssh does: asked again after a wrong one.
    tmux.start("alice", server_port, "alice")
    tmux.wait("alice", lambda s: prompt_line(s) == "password for alice:")
    tmux.type("alice", "not it at all")
    tmux.wait("alice", lambda s: "wrong password, try again" in s)
    tmux.wait("alice", lambda s: prompt_line(s) == "password for alice:")
    tmux.type("alice", PASSWORD)
    tmux.wait("alice", lambda s: prompt_line(s) == "[lobby] >")
    next_of(watcher, MemberJoined, nick="alice")
    tmux.type("alice", "hello")
    next_of(watcher, RoomMessage, text="hello")

    # /nick to a registered nick: the prompt asks, and hides what is typed.
    tmux.type("alice", "/nick bob")
    screen = tmux.wait("alice", lambda s: "bob is registered: type its password" in s)
    tmux.wait("alice", lambda s: prompt_line(s).startswith("password for bob (not shown"))
    tmux.type("alice", PASSWORD[:5], enter=False)
    screen = tmux.wait("alice", lambda s: prompt_line(s).endswith("*****"))
    tmux.type("alice", PASSWORD[5:])
    screen = tmux.wait("alice", lambda s: "* you are now bob" in s)
    assert PASSWORD not in screen and PASSWORD[:5] not in screen

    # Neither that line nor a /register line is in the Up-arrow history.
    tmux.type("alice", "/register another secret")
    tmux.wait("alice", lambda s: "already_registered" in s)
    tmux.keys("alice", "Up")
    screen = tmux.wait("alice", lambda s: prompt_line(s) == "[lobby] > /nick bob")
    tmux.keys("alice", "Up")  # the line before: the password was never kept
    tmux.wait("alice", lambda s: prompt_line(s) == "[lobby] > hello")
    tmux.keys("alice", "C-u")
    tmux.type("alice", "/quit")
    assert tmux.exit_status("alice") == 0


def test_topic_order_and_the_word_exit(
    tmux: Tmux, server_port: int, make_client: ClientFactory
) -> None:
    bob = make_client("bob")
    bob.join("lobby")
    tmux.start("alice", server_port, "alice")
    tmux.wait("alice", lambda s: prompt_line(s) == "[lobby] >")
    next_of(bob, MemberJoined, nick="alice")

    tmux.type("alice", "/topic first topic")
    tmux.wait("alice", lambda s: "alice set the topic: first topic" in s)
    tmux.type("alice", "/topic")
    tmux.wait("alice", lambda s: "* topic: first topic" in s)
    tmux.type("alice", "/topic --clear")
    tmux.wait("alice", lambda s: "alice cleared the topic" in s)
    tmux.type("alice", "/topic")
    tmux.wait("alice", lambda s: "* no topic is set" in s)

    tmux.type("alice", "/join bad room!")
    tmux.wait("alice", lambda s: "! invalid room name 'bad room!'" in s)
    tmux.type("alice", "/join dev")
    tmux.wait("alice", lambda s: prompt_line(s) == "[dev] >")
    tmux.type("alice", "/part")
    screen = tmux.wait("alice", lambda s: "now talking in #lobby" in s)
    lines = screen.splitlines()
    assert [i for i, line in enumerate(lines) if "you left #dev" in line] == [
        i - 1 for i, line in enumerate(lines) if "now talking in #lobby" in line
    ]

    tmux.type("alice", "/say exit")
    assert next_of(bob, RoomMessage, nick="alice").text == "exit"
    tmux.type("alice", "/help")
    tmux.wait("alice", lambda s: "the word exit" in s and "/reconnect" in s)
    tmux.type("alice", "exit")
    assert tmux.exit_status("alice") == 0


def test_reconnect_now_and_a_line_typed_while_away(tmux: Tmux, tmp_path: Path) -> None:
    db = tmp_path / "chat.db"
    first = start_server(SQLiteStore(db))
    port = first.address[1]
    servers = [first]
    try:
        tmux.start("alice", port, "alice")
        tmux.wait("alice", lambda s: prompt_line(s) == "[lobby] >")
        first.shutdown()
        screen = tmux.wait("alice", lambda s: "reconnect attempt 3 failed" in s, timeout=20)
        waiting = float(re.findall(r"next in ([\d.]+) s", screen)[-1])
        tmux.type("alice", "typed while away")
        tmux.wait("alice", lambda s: "not connected: this will be sent" in s)
        servers.append(start_on_port(port, db))
        started = time.monotonic()
        tmux.type("alice", "")  # Enter on an empty line: reconnect now
        tmux.wait("alice", lambda s: "* reconnecting now" in s)
        tmux.wait("alice", lambda s: "<alice> typed while away" in s, timeout=waiting)
        assert time.monotonic() - started < waiting
        assert "reconnected as alice" in tmux.screen("alice")
        with Client("bob", port=port) as bob:
            texts = [m.text for m in bob.history("lobby").messages]
        assert texts == ["typed while away"]
        tmux.type("alice", "/reconnect")
        tmux.wait("alice", lambda s: "* you are connected" in s)
    finally:
        for server in servers:
            server.shutdown()
