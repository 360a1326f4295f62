"""The interactive mode: a prompt_toolkit prompt that incoming lines never garble.

`patch_stdout` routes every print, including those from the receive thread,
above the prompt and redraws the line being typed below them. When the
controller asks for a password, the same prompt hides what is typed, and
lines holding a password never enter the Up-arrow history.
"""

from __future__ import annotations

from prompt_toolkit import PromptSession
from prompt_toolkit.filters import Condition
from prompt_toolkit.history import InMemoryHistory
from prompt_toolkit.patch_stdout import patch_stdout

from chatclient.commands import is_secret
from chatclient.controller import Controller

__all__ = ["run_terminal"]


class _History(InMemoryHistory):
    """The Up-arrow history, without passwords."""

    def __init__(self, controller: Controller) -> None:
        super().__init__()
        self._controller = controller

    def append_string(self, string: str) -> None:
        if self._controller.password_for is None and not is_secret(string):
            super().append_string(string)


def run_terminal(controller: Controller) -> int:
    """Read lines until /quit, `exit`, Ctrl-D or Ctrl-C."""
    # The typed line is erased once sent: the server's echo shows it, with its time.
    hidden = Condition(lambda: controller.password_for is not None)
    session: PromptSession[str] = PromptSession(
        erase_when_done=True, history=_History(controller), is_password=hidden
    )
    controller.on_change = session.app.invalidate
    with patch_stdout(raw=True):
        while True:
            try:
                line = session.prompt(lambda: controller.prompt)
            except (EOFError, KeyboardInterrupt):
                return 0
            if not controller.handle(line):
                return 0
