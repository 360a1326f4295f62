"""Run a command as the terminal's foreground job, so that Ctrl-C reaches it alone.

`make run` starts the server through this: make would otherwise get the
terminal's SIGINT too and, once the server has shut down cleanly (exit 0),
kill itself with it (exit 130). In a process group of its own that owns the
terminal, the server alone hears Ctrl-C, and make reports its exit status.
Without a terminal, or when not in the foreground, the command just runs.

    .venv/bin/python tools/foreground.py .venv/bin/chat-server --store memory
"""

from __future__ import annotations

import os
import signal
import sys


def _take_terminal() -> None:
    try:
        tty = os.open("/dev/tty", os.O_RDWR)
    except OSError:
        return
    try:
        if os.tcgetpgrp(tty) != os.getpgrp():
            return  # a background job: leave the terminal alone
        os.setpgid(0, 0)
        # Taking the terminal from a group that is no longer its foreground.
        old = signal.signal(signal.SIGTTOU, signal.SIG_IGN)
        os.tcsetpgrp(tty, os.getpgrp())
        signal.signal(signal.SIGTTOU, old)
    except OSError:
        pass
    finally:
        os.close(tty)


def main() -> None:
    argv = sys.argv[1:]
    if not argv:
        sys.exit("usage: foreground.py COMMAND [ARG...]")
    _take_terminal()
    os.execvp(argv[0], argv)


if __name__ == "__main__":
    main()
