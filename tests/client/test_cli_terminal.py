"""The interactive terminal client in a real pseudo-terminal, driven through tmux.

Each test runs its own tmux server (`tmux -L <unique>`) and kills only that.
Screens are polled with a deadline; every wait ends on what the screen shows.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator

import pytest

from chatclient.render import nick_style
from chatproto import MemberJoined, MemberLeft, RoomMessage
from tests.client.conftest import ClientFactory, next_of
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

    def start(self, name: str, port: int, nick: str) -> None:
        # The shell reports the exit status on the screen: tmux's own
        # #{pane_dead_status} is not always filled in.
        command = (
            f"{shlex.quote(sys.executable)} -m chatclient --port {port} --nick {nick}; "
            f"echo {EXITED} $?; sleep 60"
        )
        self("new-session", "-d", "-s", name, "-x", "120", "-y", "30", "-c", str(ROOT), command)

    def type(self, name: str, text: str, *, enter: bool = True) -> None:
        self("send-keys", "-t", name, "-l", text)
        if enter:
            self("send-keys", "-t", name, "Enter")

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
    return [line for line in screen.splitlines() if line.strip()][-1]


def test_two_people_talk(tmux: Tmux, server_port: int, make_client: ClientFactory) -> None:
    watcher = make_client("watcher")
    watcher.join("lobby")
    tmux.start("alice", server_port, "alice")
    next_of(watcher, MemberJoined, nick="alice")
    tmux.start("bob", server_port, "bob")
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
    next_of(bob, MemberJoined, nick="alice")
    tmux.wait("alice", lambda s: prompt_line(s) == "[lobby] >")

    tmux.type("alice", "a half-typed thou", enter=False)
    tmux.wait("alice", lambda s: prompt_line(s) == "[lobby] > a half-typed thou")
    for i in range(3):
        bob.say("lobby", f"interruption {i}")
    screen = tmux.wait("alice", lambda s: "<bob> interruption 2" in s)
    assert prompt_line(screen) == "[lobby] > a half-typed thou"
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
