"""`make run` as a person uses it: started in a terminal, stopped with Ctrl-C,
exit status 0 (issue 14 item 14)."""

from __future__ import annotations

import os
import pty
import select
import shutil
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _read_until(fd: int, marker: bytes, timeout: float) -> bytes:
    out = b""
    deadline = time.monotonic() + timeout
    while marker not in out:
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"{marker!r} not seen in {out!r}"
        ready, _, _ = select.select([fd], [], [], remaining)
        if ready:
            try:
                data = os.read(fd, 4096)
            except OSError:
                break
            if not data:
                break
            out += data
    return out


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_make_run_exits_0_on_ctrl_c() -> None:
    pid, fd = pty.fork()
    if pid == 0:  # the child: a new session, with the pty as its terminal
        os.chdir(ROOT)
        os.execvp("make", ["make", "--no-print-directory", "run", "ARGS=--port 0 --store memory"])
    try:
        out = _read_until(fd, b"listening on", 60)
        os.write(fd, b"\x03")  # Ctrl-C, through the terminal's line discipline
        out += _read_until(fd, b"stopped", 10)
        _, status = os.waitpid(pid, 0)
        assert os.WIFEXITED(status), f"make was killed: {status}; {out!r}"
        assert os.WEXITSTATUS(status) == 0, out
    finally:
        try:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
        os.close(fd)
