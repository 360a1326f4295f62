"""Command line of `chat-client` (and `python -m chatclient`).

Interactive with a prompt when stdin and stdout are terminals; otherwise it
reads commands from stdin and prints one line per event (`--json`: one
protocol frame per line), errors on stderr, and no MOTD or room history
unless `--backlog` asks for them.

Passwords are best given in the environment (CHAT_PASSWORD for the nick,
CHAT_SERVER_PASSWORD for the server), where `ps` does not show them; on a
terminal, a registered nick's password is asked for, hidden, as ssh does.
"""

from __future__ import annotations

import argparse
import getpass
import os
import re
import sys
from typing import NoReturn

from chatclient.client import Client
from chatclient.controller import Controller
from chatclient.errors import ChatError, ConnectionLost, TlsCertificateError
from chatclient.output import JsonOutput, Output, TextOutput
from chatclient.pipe import run_pipe
from chatclient.policy import ReconnectPolicy
from chatclient.terminal import run_terminal
from chatproto import ErrorCode, Welcome

__all__ = ["INSECURE_WARNING", "default_nick", "main", "parse_args", "sanitize_nick"]

INSECURE_WARNING = "warning: TLS certificate not verified (--insecure)"


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


class _Parser(argparse.ArgumentParser):
    """Bad flags get one line that names the flag, and exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = _Parser(
        prog="chat-client",
        description="Chat from a terminal, or from a pipe (PROTOCOL.md 1.3).",
        epilog="Passwords are better set through the environment variables CHAT_PASSWORD "
        "(the nick's) and CHAT_SERVER_PASSWORD (the server's), which `ps` does not show.",
    )
    p.add_argument("--host", default="127.0.0.1", help="server address (%(default)s)")
    p.add_argument("--port", type=int, default=7878, help="server port (%(default)s)")
    p.add_argument(
        "--fallback",
        action="append",
        default=[],
        type=_address,
        metavar="HOST:PORT",
        help="another server of the same cluster, tried in turn when the server cannot be "
        "reached, at the start too (repeatable)",
    )
    p.add_argument("--nick", default=default_nick(), help="your nick (%(default)s)")
    p.add_argument(
        "--room", default="lobby", help="room to join at start (%(default)s); '' for none"
    )
    p.add_argument("--json", action="store_true", help="print protocol frames as JSON lines")
    p.add_argument(
        "--backlog",
        action="store_true",
        help="without a terminal too, print the MOTD and the history a room replays on joining",
    )
    p.add_argument("--no-reconnect", action="store_true", help="exit when the connection is lost")
    p.add_argument(
        "--timeout", type=float, default=10.0, help="seconds to wait for the server (%(default)s)"
    )
    p.add_argument(
        "--password",
        default=_environ("CHAT_PASSWORD"),
        help="your nick's password, if it is registered (or CHAT_PASSWORD)",
    )
    p.add_argument(
        "--server-password",
        default=_environ("CHAT_SERVER_PASSWORD"),
        help="the server's password, if it has one (or CHAT_SERVER_PASSWORD)",
    )
    p.add_argument(
        "--tls", action="store_true", help="connect with TLS, checking the server's certificate"
    )
    p.add_argument(
        "--ca",
        metavar="FILE",
        help="trust the certificate authorities in FILE (PEM) instead of the system's; "
        "implies --tls",
    )
    p.add_argument(
        "--insecure",
        action="store_true",
        help="TLS without checking the certificate (development only); implies --tls",
    )
    args = p.parse_args(argv)
    if not args.timeout > 0:
        p.error("--timeout must be > 0 seconds")
    if not 0 < args.port < 65536:
        p.error("--port must be from 1 to 65535")
    if args.insecure and args.ca is not None:
        p.error("--insecure checks no certificate: it cannot be combined with --ca")
    args.tls = args.tls or args.insecure or args.ca is not None
    return args


def _environ(name: str) -> str | None:
    return os.environ.get(name) or None


_HINTS = {
    ErrorCode.NICK_IN_USE.value: "; choose another with --nick",
    ErrorCode.AUTH_FAILED.value: " (passwords: CHAT_PASSWORD or --password for the nick, "
    "CHAT_SERVER_PASSWORD or --server-password for the server)",
}


def _address(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host, int(port)


# How many times a terminal user is asked for the nick's password, as ssh does.
_PASSWORD_TRIES = 3


def _client(args: argparse.Namespace, controller: Controller, password: str | None) -> Client:
    return Client(
        args.nick,
        host=args.host,
        port=args.port,
        fallbacks=args.fallback,
        password=password,
        server_password=args.server_password,
        tls=args.tls,
        ca=args.ca,
        insecure=args.insecure,
        on_event=controller.on_event,
        reconnect=False if args.no_reconnect else ReconnectPolicy(maximum=15.0),
        queue_size=0,
        timeout=args.timeout,
    )


def _nick_refused(exc: ChatError) -> bool:
    """Whether a refused hello blames the nick's password (not the server's)."""
    return exc.code == ErrorCode.AUTH_FAILED and "server" not in exc.message.lower()


def _connect(
    args: argparse.Namespace, controller: Controller, interactive: bool
) -> tuple[Client, Welcome] | int:
    """A connected client, or the exit status. On a terminal, a registered nick's
    password is asked for (hidden) when it is missing or wrong."""
    password = args.password
    for attempt in range(_PASSWORD_TRIES + 1):
        try:
            client = _client(args, controller, password)
        except ChatError as exc:  # a field the protocol does not allow, e.g. an empty password
            print(f"chat-client: {exc.message}", file=sys.stderr)
            return 2
        except ValueError as exc:  # the CA file
            print(f"chat-client: {exc}", file=sys.stderr)
            return 2
        if args.insecure and attempt == 0:
            print(f"chat-client: {INSECURE_WARNING}", file=sys.stderr, flush=True)
        try:
            return client, client.connect()
        except ChatError as exc:
            client.close()
            if interactive and _nick_refused(exc) and attempt < _PASSWORD_TRIES:
                if password is not None:
                    print("wrong password, try again", file=sys.stderr)
                password = getpass.getpass(f"password for {args.nick}: ") or None
                continue
            print(f"chat-client: {exc.message}{_HINTS.get(exc.code, '')}", file=sys.stderr)
            return 1
        except TlsCertificateError as exc:
            print(f"chat-client: {exc} (--ca FILE trusts a private authority)", file=sys.stderr)
            return 1
        except ConnectionLost as exc:
            print(f"chat-client: {exc}", file=sys.stderr)
            return 1
    raise AssertionError("unreachable")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    interactive = sys.stdin.isatty() and sys.stdout.isatty()
    colour = interactive and "NO_COLOR" not in os.environ
    backlog = interactive or args.backlog
    out: Output = JsonOutput() if args.json else TextOutput(ansi=colour, backlog=backlog)
    controller = Controller(out, interactive=interactive, keep_unsent=not args.no_reconnect)
    try:
        connected = _connect(args, controller, interactive)
    except (EOFError, KeyboardInterrupt):  # at the password prompt
        print(file=sys.stderr)
        return 130
    if isinstance(connected, int):
        return connected
    client, welcome = connected
    try:
        controller.start(client, welcome, args.room.strip().lower() or None)
        if interactive:
            return run_terminal(controller)
        return run_pipe(controller, sys.stdin, args.timeout)
    except KeyboardInterrupt:
        return 130
    finally:
        client.close()
