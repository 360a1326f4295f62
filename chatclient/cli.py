"""Command line of `chat-client` (and `python -m chatclient`).

Interactive with a prompt when stdin and stdout are terminals; otherwise it
reads commands from stdin and prints one line per event (`--json`: one
protocol frame per line).
"""

from __future__ import annotations

import argparse
import getpass
import os
import re
import sys

from chatclient.client import Client
from chatclient.controller import Controller
from chatclient.errors import ChatError, ConnectionLost
from chatclient.output import JsonOutput, Output, TextOutput
from chatclient.pipe import run_pipe
from chatclient.policy import ReconnectPolicy
from chatclient.terminal import run_terminal
from chatproto import ErrorCode

__all__ = ["default_nick", "main", "parse_args", "sanitize_nick"]


def sanitize_nick(name: str) -> str:
    """`name` made into a valid nick: letters, digits, _ and -, not starting with a digit."""
    nick = re.sub(r"[^A-Za-z0-9_-]", "_", name)
    if nick and not (nick[0].isalpha() or nick[0] == "_"):
        nick = "_" + nick
    return nick[:24] or "guest"


def default_nick() -> str:
    try:
        return sanitize_nick(getpass.getuser())
    except (OSError, KeyError):  # no user name to be found
        return "guest"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="chat-client", description="Chat from a terminal, or from a pipe (PROTOCOL.md v1)."
    )
    p.add_argument("--host", default="127.0.0.1", help="server address (%(default)s)")
    p.add_argument("--port", type=int, default=7878, help="server port (%(default)s)")
    p.add_argument("--nick", default=default_nick(), help="your nick (%(default)s)")
    p.add_argument("--room", default="lobby", help="room to join at start; '' for none")
    p.add_argument("--json", action="store_true", help="print protocol frames as JSON lines")
    p.add_argument("--no-reconnect", action="store_true", help="exit when the connection is lost")
    p.add_argument(
        "--timeout", type=float, default=10.0, help="seconds to wait for the server (%(default)s)"
    )
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    interactive = sys.stdin.isatty() and sys.stdout.isatty()
    colour = interactive and "NO_COLOR" not in os.environ
    out: Output = JsonOutput() if args.json else TextOutput(ansi=colour)
    controller = Controller(out)
    try:
        client = Client(
            args.nick,
            host=args.host,
            port=args.port,
            on_event=controller.on_event,
            reconnect=False if args.no_reconnect else ReconnectPolicy(maximum=15.0),
            queue_size=0,
            timeout=args.timeout,
        )
        welcome = client.connect()
    except ChatError as exc:
        hint = "; choose another with --nick" if exc.code == ErrorCode.NICK_IN_USE else ""
        print(f"chat-client: {exc.message}{hint}", file=sys.stderr)
        return 1
    except ConnectionLost as exc:
        print(f"chat-client: {exc}", file=sys.stderr)
        return 1
    try:
        controller.start(client, welcome, args.room.strip().lower() or None)
        if interactive:
            return run_terminal(controller)
        return run_pipe(controller, sys.stdin, args.timeout)
    except KeyboardInterrupt:
        return 130
    finally:
        client.close()
