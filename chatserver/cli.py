"""Command line of `chat-server`."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    print("chat-server: not built yet", file=sys.stderr)
    return 1
