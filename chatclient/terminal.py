"""The interactive mode: a prompt_toolkit prompt that incoming lines never garble.

`patch_stdout` routes every print, including those from the receive thread,
above the prompt and redraws the line being typed below them.
"""

from __future__ import annotations

from prompt_toolkit import PromptSession
from prompt_toolkit.patch_stdout import patch_stdout

from chatclient.controller import Controller

__all__ = ["run_terminal"]


def run_terminal(controller: Controller) -> int:
    """Read lines until /quit, `exit`, Ctrl-D or Ctrl-C."""
    # The typed line is erased once sent: the server's echo shows it, with its time.
    session: PromptSession[str] = PromptSession(erase_when_done=True)
    with patch_stdout(raw=True):
        while True:
            try:
                line = session.prompt(lambda: controller.prompt)
            except (EOFError, KeyboardInterrupt):
                return 0
            if not controller.handle(line):
                return 0
