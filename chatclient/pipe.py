"""The non-interactive mode: lines from a pipe, output one line per event.

Each line's command is answered (its reply matched by id) before the next
line is read, so the output follows the input in order and, once the input
ends, everything sent has been acknowledged: `echo hi | chat-client` exits
only after "hi" is stored. The server's rate limit, not this wait, is what
bounds a pipe's speed.
"""

from __future__ import annotations

from collections.abc import Iterable

from chatclient.controller import Controller

__all__ = ["run_pipe"]


def run_pipe(controller: Controller, lines: Iterable[str], timeout: float) -> int:
    """0 if every command was answered with success, 1 otherwise (a line the
    client refused itself counts as a failure too)."""
    # The first room is joined before the first line is read, like every line's command.
    if not controller.wait(timeout):
        controller.out.error(f"no answer from the server within {timeout:g} s")
        return 1
    for line in lines:
        going_on = controller.handle(line)
        if not controller.wait(timeout):
            controller.out.error(f"no answer from the server within {timeout:g} s")
            return 1
        if not going_on:
            break
    return 1 if controller.failures else 0
