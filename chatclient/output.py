"""Where the terminal client's lines go: text (plain or coloured) or JSON frames.

Streams are looked up at each write, so that prompt_toolkit's `patch_stdout`
(which swaps `sys.stdout`) catches lines printed from the receive thread. A
lock keeps lines from different threads whole.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Sequence
from typing import Protocol

from chatclient.errors import ChatError, ClientError, InvalidRequest
from chatclient.events import ClientEvent, LibraryEvent
from chatclient.render import Line, error_line, event_lines, note_line, render, reply_lines, to_json
from chatproto import Command, Error, Event

__all__ = ["JsonOutput", "Output", "TextOutput"]


class Output(Protocol):
    def event(self, event: ClientEvent) -> None:
        """Something the server (or the library) reported."""

    def reply(self, command: Command, reply: Event) -> None:
        """The successful answer to `command`."""

    def failure(self, command: Command, error: ClientError) -> None:
        """`command` failed: refused, or never answered."""

    def error(self, text: str) -> None:
        """A local problem, e.g. a mistyped command."""

    def note(self, text: str, room: str | None = None) -> None:
        """Local information, e.g. help."""


class _Writer:
    def __init__(self) -> None:
        self._lock = threading.Lock()

    def write(self, lines: Sequence[str], *, err: bool = False) -> None:
        with self._lock:
            stream = sys.stderr if err else sys.stdout
            for line in lines:
                print(line, file=stream, flush=True)


class TextOutput(_Writer):
    """One line per event, `HH:MM #room <nick> text`; ANSI colours if `ansi`.

    Error lines go to stderr, everything else to stdout. Without `backlog`, the
    MOTD and the history a room replays on joining are left out.
    """

    def __init__(self, *, ansi: bool, backlog: bool = True) -> None:
        super().__init__()
        self.ansi = ansi
        self.backlog = backlog

    def _show(self, lines: Sequence[Line]) -> None:
        # Error lines (the `!` ones) to stderr, the rest to stdout, in order.
        for line in lines:
            err = any(style == "error" for style, _ in line)
            self.write(render([line], ansi=self.ansi), err=err)

    def event(self, event: ClientEvent) -> None:
        self._show(event_lines(event, time.time(), backlog=self.backlog))

    def reply(self, command: Command, reply: Event) -> None:
        self._show(reply_lines(command, reply, time.time(), backlog=self.backlog))

    def failure(self, command: Command, error: ClientError) -> None:
        if isinstance(error, ChatError):
            self.error(f"{error.code}: {error.message}")
        else:
            self.error(f"{command.type} failed: {error}")

    def error(self, text: str) -> None:
        self._show([error_line(text, time.time())])

    def note(self, text: str, room: str | None = None) -> None:
        self._show([note_line(text, time.time(), room)])


class JsonOutput(_Writer):
    """Every frame received, as the protocol's JSON, one per line on stdout.

    What is not a frame (the library's connection events, local errors and
    notes) goes to stderr as text, so stdout stays machine-readable.
    """

    def event(self, event: ClientEvent) -> None:
        if isinstance(event, LibraryEvent):
            self.write(render(event_lines(event, time.time()), ansi=False), err=True)
        else:
            self.write([to_json(event)])

    def reply(self, command: Command, reply: Event) -> None:
        self.write([to_json(reply)])

    def failure(self, command: Command, error: ClientError) -> None:
        if isinstance(error, ChatError) and not isinstance(error, InvalidRequest):
            # The server's own frame, rebuilt field for field.
            frame = Error(ref=error.ref, code=error.code, message=error.message, fatal=error.fatal)
            self.write([to_json(frame)])
        else:
            self.error(f"{command.type} failed: {error}")

    def error(self, text: str) -> None:
        self.write([f"! {text}"], err=True)

    def note(self, text: str, room: str | None = None) -> None:
        self.write([f"* {text}"], err=True)
