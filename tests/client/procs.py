"""Running the terminal client and the examples as real processes."""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


# Read by the client and the server as defaults; a developer's own must not leak in.
PASSWORD_VARIABLES = ("CHAT_PASSWORD", "CHAT_SERVER_PASSWORD")


def env(extra: dict[str, str] | None = None) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if k not in PASSWORD_VARIABLES}
    return {**base, "PYTHONUNBUFFERED": "1", "NO_COLOR": "1", **(extra or {})}


def run_client(
    port: int,
    *args: str,
    stdin: str,
    timeout: float = 30,
    extra_env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """`python -m chatclient` with `stdin` piped in; returns once it has exited."""
    return subprocess.run(
        [sys.executable, "-m", "chatclient", "--port", str(port), *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env(extra_env),
        cwd=ROOT,
        check=False,
    )


def ends_with(suffix: str) -> Callable[[str], bool]:
    return lambda line: line.endswith(suffix)


class Lines:
    """A process whose stdout is read line by line in a thread, to wait on."""

    def __init__(self, argv: list[str]) -> None:
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env(),
            cwd=ROOT,
        )
        self.seen: list[str] = []
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._lines.put(line.rstrip("\n"))
        self._lines.put(None)

    def expect(self, match: Callable[[str], bool], timeout: float = 10) -> str:
        """The next output line that `match`es (earlier ones are kept in `seen`)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self._lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no matching line in time; seen: {self.seen}") from None
            if line is None:
                raise AssertionError(f"the process ended; seen: {self.seen}")
            self.seen.append(line)
            if match(line):
                return line

    def finish(self, timeout: float = 15) -> tuple[int, str]:
        """Close stdin, wait for the exit; returns the code and stderr."""
        assert self.proc.stdin is not None and self.proc.stderr is not None
        self.proc.stdin.close()
        try:
            code = self.proc.wait(timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
        self._reader.join(5)
        while (line := self._lines.get_nowait()) is not None:
            self.seen.append(line)
        return code, self.proc.stderr.read()
