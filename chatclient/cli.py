"""Command line of `chat-client`."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    print("chat-client: not built yet", file=sys.stderr)
    return 1
