"""Logging that a client cannot flood, spoof or use to leak.

- Failures are one line by default, the traceback only at DEBUG: a traceback
  (and an exception's message) can carry another client's data.
- Lines about one connection go through that connection's own budget
  (`ClientLog`), and every line below ERROR through one of the process
  (`configure`), so that clients that keep failing or reconnecting cost the
  log a few lines and a count of those left out, however fast they go.
- Everything a peer supplied (a `client` label, a nick, a room) is logged
  escaped: a line holds no control, format or separator character (U+202E
  would reverse the rest of a line on a terminal, U+2028 would start a fake
  one), so each line is one line, as written.
"""

from __future__ import annotations

import logging
import sys
import threading

from chatserver.ratelimit import TokenBucket

__all__ = ["ClientLog", "configure", "escape", "log_failure"]

_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def log_failure(logger: logging.Logger, message: str, *args: object) -> None:
    """Log the exception being handled, as one ERROR line."""
    exc = sys.exc_info()[1]
    kind = type(exc).__name__ if exc is not None else "unknown error"
    logger.error(message + " (%s)", *args, kind, exc_info=logger.isEnabledFor(logging.DEBUG))


def escape(text: str) -> str:
    """`text` with every character that is not printable (controls, bidi and other
    format characters, line and paragraph separators) as a \\x, \\u or \\U escape."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else _escaped(ch) for ch in text)


def _escaped(ch: str) -> str:
    code = ord(ch)
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


class _Escaping(logging.Filter):
    """Makes every record one printable line (before a traceback, which is ours)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        safe = escape(message)
        if safe is not message:
            record.msg, record.args = safe, None
        return True


class _Budget(logging.Filter):
    """The lines below ERROR the whole server may write: `burst` at once, `rate`
    per second. What it leaves out is counted and said in the next line it lets
    through."""

    def __init__(self, rate: float, burst: int) -> None:
        super().__init__()
        self._bucket = TokenBucket(rate, burst)
        self._lock = threading.Lock()
        self._suppressed = 0

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.ERROR:
            return True
        with self._lock:
            if not self._bucket.take():
                self._suppressed += 1
                return False
            suppressed, self._suppressed = self._suppressed, 0
        if suppressed:
            record.msg = f"{record.getMessage()} [{suppressed} lines left out before this one]"
            record.args = None
        return True


def configure(level: str | int, *, rate: float = 0.0, burst: int = 1) -> None:
    """Log to stderr, one escaped line per record; with `rate`, at most `burst`
    lines below ERROR at once and `rate` a second."""
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter(_FORMAT))
    if rate > 0:
        handler.addFilter(_Budget(rate, burst))
    handler.addFilter(_Escaping())
    logging.basicConfig(level=level, handlers=[handler])


class ClientLog:
    """The lines about one connection: at most `BURST` at once and `RATE` per second
    of them, so that a client that keeps failing costs the log a few lines and a
    count. `always` lines (connect, disconnect) skip the budget."""

    __slots__ = ("_bucket", "_logger", "_prefix", "suppressed")

    RATE = 0.2
    BURST = 5

    def __init__(self, logger: logging.Logger, prefix: str) -> None:
        self._logger = logger
        self._prefix = prefix
        self._bucket = TokenBucket(self.RATE, self.BURST)
        self.suppressed = 0  # this connection's lines left out

    def log(self, level: int, message: str, *args: object, always: bool = False) -> None:
        """Log `prefix: message % args`, if the budget allows."""
        if not self._logger.isEnabledFor(level):
            return
        if not always and not self._bucket.take():
            self.suppressed += 1
            return
        self._logger.log(level, "%s: " + message, self._prefix, *args)
