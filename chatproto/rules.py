"""The session's rules, as tables: what may happen next, in each direction.

As in h11, a session is two streams that each move through their own phases:
the client's commands and the server's events. Everything that happens to a
session is a `Step`; each table says, for a phase and a step, the phase that
follows. A step that the table of its own stream does not list is forbidden
there (whoever tried it broke the protocol); a step of the other stream that
a table lists moves this stream too (the client's `hello` makes a `welcome`
due), and one it does not list leaves it where it is. Both ends use the same
tables: only who takes which step differs. PROTOCOL.md sections 4, 5 and 8
say the same in prose.
"""

from __future__ import annotations

from enum import Enum
from typing import Final

__all__ = ["COMMANDS", "EVENTS", "Phase", "Step", "advance"]


class Phase(Enum):
    """Where one stream of a session stands."""

    IDLE = "idle"  # commands: no hello yet. events: nothing may go but a fatal error
    GREETED = "greeted"  # events only: hello came; welcome (or a fatal error) is due
    OPEN = "open"
    DONE = "done"  # commands: after bye or a frame that ended them. events: after a fatal error


class Step(Enum):
    """Something that happens to a session."""

    # The client's stream.
    HELLO = "hello"
    COMMAND = "command"  # any command but hello and bye
    BYE = "bye"
    REJECTED = "rejected"  # a frame the server answers with a non-fatal error
    ENDING = "ending"  # a frame that ends the client's stream: it gets a fatal error
    # The server's stream.
    WELCOME = "welcome"
    EVENT = "event"  # any event but welcome and error
    ERROR = "error"  # a non-fatal error
    FATAL = "fatal"  # a fatal error: the last frame of the session
    # Both.
    CLOSE = "close"  # the transport is gone


_CLIENT_STEPS: Final = frozenset({Step.HELLO, Step.COMMAND, Step.BYE, Step.REJECTED, Step.ENDING})

#: The client's commands. `hello` comes first and once (a second one is
#: REJECTED, anything else first ENDS the stream); `bye` is the last command.
COMMANDS: Final[dict[tuple[Phase, Step], Phase]] = {
    (Phase.IDLE, Step.HELLO): Phase.OPEN,
    (Phase.IDLE, Step.ENDING): Phase.DONE,
    (Phase.OPEN, Step.COMMAND): Phase.OPEN,
    (Phase.OPEN, Step.REJECTED): Phase.OPEN,
    (Phase.OPEN, Step.BYE): Phase.DONE,
    (Phase.OPEN, Step.ENDING): Phase.DONE,
    # A fatal error or a closed transport ends the commands wherever they are.
    (Phase.IDLE, Step.FATAL): Phase.DONE,
    (Phase.OPEN, Step.FATAL): Phase.DONE,
    (Phase.IDLE, Step.CLOSE): Phase.DONE,
    (Phase.OPEN, Step.CLOSE): Phase.DONE,
}

#: The server's events. Before `hello` only a fatal error may go; after it, a
#: `welcome` or a fatal error; every other event, and every non-fatal error,
#: only after `welcome`. Replies owed after `bye` still go (the commands'
#: phase does not matter here); nothing follows a fatal error.
EVENTS: Final[dict[tuple[Phase, Step], Phase]] = {
    (Phase.IDLE, Step.HELLO): Phase.GREETED,
    (Phase.IDLE, Step.FATAL): Phase.DONE,
    (Phase.GREETED, Step.WELCOME): Phase.OPEN,
    (Phase.GREETED, Step.FATAL): Phase.DONE,
    (Phase.OPEN, Step.EVENT): Phase.OPEN,
    (Phase.OPEN, Step.ERROR): Phase.OPEN,
    (Phase.OPEN, Step.FATAL): Phase.DONE,
    (Phase.IDLE, Step.CLOSE): Phase.DONE,
    (Phase.GREETED, Step.CLOSE): Phase.DONE,
    (Phase.OPEN, Step.CLOSE): Phase.DONE,
}


def advance(commands: Phase, events: Phase, step: Step) -> tuple[Phase, Phase] | None:
    """Both streams' phases after `step`, or None if `step` is forbidden now."""
    own, other = (COMMANDS, EVENTS) if step in _CLIENT_STEPS else (EVENTS, COMMANDS)
    here = commands if own is COMMANDS else events
    there = events if own is COMMANDS else commands
    nxt = own.get((here, step))
    if nxt is None:
        if step is Step.CLOSE:
            nxt = here  # closing twice is harmless
        else:
            return None
    moved = other.get((there, step), there)
    return (nxt, moved) if own is COMMANDS else (moved, nxt)
