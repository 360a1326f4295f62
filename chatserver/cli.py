"""Command line of `chat-server` (and `python -m chatserver`).

Every flag is a row of `FLAGS`: its name, the `ServerConfig` field it sets
and its help. A bad value is one line on stderr naming the flag and its rule
(`ServerConfig`'s rules, as `config.RULES` states them), exit status 2.
"""

from __future__ import annotations

import argparse
import gc
import ipaddress
import os
import signal
import sqlite3
import ssl
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from chatproto import PROTOCOL_VERSION
from chatserver.config import DEPLOYMENT_RULES, ConfigError, ServerConfig
from chatserver.logs import configure
from chatserver.server import ChatServer
from chatserver.sqlite_store import SQLiteStore
from chatserver.store import MemoryStore, Store
from chatserver.web import normal_origin

__all__ = ["FLAGS", "main", "parse_args"]

_DEFAULTS = ServerConfig()
# The GIL switch interval of the server process. Every thread waiting for the
# GIL wakes once per interval; with the default 5 ms, 10,000 readers woken at
# once (everyone joins a room) spend the CPU on those wake-ups and a room fills
# at a few joins per second (docs/BENCHMARKS.md, "One large room"). Threads
# here rarely run that long without blocking, so a longer one costs little.
SWITCH_INTERVAL = 0.1


@dataclass(frozen=True, slots=True)
class Flag:
    name: str
    field: str | None  # the ServerConfig field it sets; None: the command line's own
    help: str
    type: Callable[[str], Any] = str
    default: Any = None
    choices: tuple[str, ...] | None = None
    metavar: str | None = None
    secret: bool = False  # its default comes from the environment and is not shown
    action: str | None = None  # "store_true" (a switch) or "append" (repeatable)
    # From the parsed value to the field's (a switch's opposite, a list's tuple).
    convert: Callable[[Any], Any] | None = None


def _default(field: str) -> Any:
    return getattr(_DEFAULTS, field)


def _flag(name: str, help: str, type: Callable[[str], Any] = str) -> Flag:
    """A flag that sets the config field of its name, with that field's default."""
    field = name.removeprefix("--").replace("-", "_")
    return Flag(name, field, help, type, _default(field))


def _origin(value: str) -> str:
    if value == "*":
        return value
    try:
        return normal_origin(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _network(value: str) -> str:
    try:
        return str(ipaddress.ip_network(value, strict=False))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not an address or network") from None


FLAGS: tuple[Flag, ...] = (
    _flag("--host", "address to listen on"),
    _flag("--port", "TCP port, 0 to 65535 (0: any free port)", int),
    Flag("--store", None, "where state is kept", default="sqlite", choices=("sqlite", "memory")),
    Flag("--db", None, "SQLite file for --store sqlite", default="chat.db"),
    _flag("--name", "server name sent in welcome"),
    _flag("--motd", "message of the day sent in welcome"),
    _flag("--max-clients", "connections at once; more get server_full", int),
    _flag("--history", "messages replayed on join", int),
    _flag("--max-frame", "longest frame in bytes, either way", int),
    _flag("--max-text", "longest text in characters", int),
    _flag("--rate", "frames per second a client may send, sustained (each frame but hello)", float),
    _flag("--burst", "frames a client may send at once", int),
    _flag("--handshake-timeout", "seconds a new connection has to say hello", float),
    _flag("--ping-interval", "idle seconds before the server pings a client", float),
    _flag("--ping-timeout", "seconds a client has to answer a ping", float),
    _flag("--soft-limit", "bytes a client may leave unread for --soft-seconds", int),
    _flag("--soft-seconds", "how long a send queue may stay above the soft limit", float),
    _flag("--hard-limit", "bytes a client may leave unread at most, once its socket is full", int),
    Flag(
        "--password",
        "server_password",
        "a password every client must give in hello; better set through the "
        "CHAT_SERVER_PASSWORD environment variable, which `ps` does not show",
        default=os.environ.get("CHAT_SERVER_PASSWORD"),
        secret=True,
    ),
    _flag("--max-per-address", "connections from one client address", int),
    _flag("--max-handshaking", "connections yet to say hello, in all (the oldest makes room)", int),
    _flag("--max-handshaking-per-address", "connections yet to say hello, per address", int),
    _flag("--max-rooms", "rooms one client may be in", int),
    _flag("--max-members", "members of one room", int),
    _flag("--large-room", "members above which a room is large: no per-member presence", int),
    _flag("--auth-failures", "failed logins allowed per address in --auth-window seconds", int),
    _flag("--auth-window", "seconds over which failed logins are counted", float),
    _flag("--tls-cert", "PEM certificate (chain): serve TLS"),
    _flag("--tls-key", "PEM private key for --tls-cert"),
    Flag(
        "--redis",
        "redis_url",
        "run as a node of a cluster that shares this Redis (redis://HOST:PORT/DB; "
        "also the CHAT_REDIS_URL environment variable); --store and --db are then unused",
        default=os.environ.get("CHAT_REDIS_URL"),
        metavar="URL",
    ),
    _flag("--redis-history", "entries kept per room in Redis", int),
    _flag("--node-ttl", "seconds after which a silent cluster node's clients are released", float),
    Flag(
        "--no-web",
        "web",
        "serve neither the web client nor WebSockets on the chat port",
        action="store_true",
        convert=lambda no_web: not no_web,
    ),
    Flag(
        "--web-origin",
        "web_origins",
        "a page origin (scheme://host[:port]) allowed to open a WebSocket besides the "
        "server's own; repeatable; '*' allows any",
        _origin,
        metavar="ORIGIN",
        action="append",
        convert=tuple,
    ),
    Flag(
        "--trusted-proxy",
        "trusted_proxies",
        "a reverse proxy (address or network) whose X-Forwarded-For names the client; repeatable",
        _network,
        metavar="ADDRESS",
        action="append",
        convert=tuple,
    ),
    _flag("--log-rate", "log lines below ERROR per second, at most (0: no limit)", float),
    _flag("--log-burst", "log lines below ERROR at once, at most", int),
    Flag(
        "--log-level",
        None,
        "least severe log level shown",
        default="INFO",
        choices=("DEBUG", "INFO", "WARNING", "ERROR"),
    ),
)

_BY_FIELD = {flag.field: flag.name for flag in FLAGS if flag.field is not None}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:
        # argparse prints the usage too; one line is enough.
        self.exit(2, f"{self.prog}: {message}\n")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = _Parser(
        prog="chat-server",
        description=f"Run the threaded chat server (PROTOCOL.md {PROTOCOL_VERSION}).",
    )
    p.epilog = (
        "The same port serves the web client (open http://HOST:PORT/ in a browser) and "
        "WebSockets carrying the protocol: a connection whose first bytes are `GET ` is a "
        "browser's. With --tls-cert it is https:// and wss://."
    )
    for flag in FLAGS:
        if flag.action == "store_true":
            p.add_argument(flag.name, action="store_true", help=f"{flag.help} (default: off)")
            continue
        if flag.action == "append":
            p.add_argument(
                flag.name,
                action="append",
                default=[],
                type=flag.type,
                metavar=flag.metavar,
                help=f"{flag.help} (default: none)",
            )
            continue
        help_text = flag.help if flag.secret else f"{flag.help} (default: %(default)s)"
        p.add_argument(
            flag.name,
            type=flag.type,
            default=flag.default,
            choices=flag.choices,
            metavar=flag.metavar,
            help=help_text,
        )
    return p.parse_args(argv)


def config_from(args: argparse.Namespace) -> ServerConfig:
    """The configuration the flags ask for; `ConfigError` names a broken rule."""
    settings = {}
    for flag in FLAGS:
        if flag.field is not None:
            value = getattr(args, flag.name.removeprefix("--").replace("-", "_"))
            settings[flag.field] = value if flag.convert is None else flag.convert(value)
    config = ServerConfig(**settings)
    config.check(DEPLOYMENT_RULES)
    return config


def _check_files(args: argparse.Namespace, config: ServerConfig) -> str | None:
    """What is wrong with a file the flags name, as one line; None if nothing."""
    for name, file in (("--tls-cert", config.tls_cert), ("--tls-key", config.tls_key)):
        if file is not None and not Path(file).is_file():
            return f"{name}: no such file: {file}"
    if config.redis_url is not None or args.store != "sqlite":
        return None
    db = args.db
    if not db:
        return "--db: must name a file"
    path = Path(db)
    if path.is_dir():
        return f"--db: {db} is a directory, not a file"
    if not path.parent.is_dir():
        return f"--db: the directory {path.parent} does not exist"
    return None


def _open_store(args: argparse.Namespace, config: ServerConfig) -> Store | None:
    if config.redis_url is not None:
        return None
    if args.store == "memory":
        return MemoryStore()
    return SQLiteStore(args.db)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sys.setswitchinterval(SWITCH_INTERVAL)
    try:
        config = config_from(args)
    except ConfigError as exc:
        return _usage(f"{_BY_FIELD.get(exc.field, exc.field)}: {exc.rule}")
    configure(args.log_level, rate=args.log_rate, burst=args.log_burst)
    problem = _check_files(args, config)
    if problem is not None:
        return _usage(problem)
    try:
        store = _open_store(args, config)
    except sqlite3.Error as exc:
        return _usage(f"--db: {args.db} cannot be used as a database ({exc})")
    try:
        server = ChatServer(config, store)
    except (OSError, ssl.SSLError) as exc:
        if store is not None:
            store.close()
        return _usage(f"--tls-cert/--tls-key: cannot load the certificate or key ({exc})")
    except sqlite3.Error as exc:
        if store is not None:
            store.close()
        return _usage(f"--db: {args.db} cannot be used as a database ({exc})")
    try:
        server.start()
    except Exception as exc:
        if store is not None:
            store.close()
        if not _is_start_failure(exc):
            raise
        where = config.redis_url if config.redis_url else f"{config.host}:{config.port}"
        print(f"chat-server: cannot start on {where}: {exc}", file=sys.stderr)
        return 1
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    host, port = server.address
    where = (
        f"redis {config.redis_url}"
        if config.redis_url is not None
        else args.db
        if args.store == "sqlite"
        else "memory"
    )
    tls = ", TLS" if config.tls_cert else ""
    # What exists now (modules, the models' validators: most of the heap) lives as
    # long as the process: keep it out of the collector's full passes, which would
    # otherwise walk it all and stall every thread for 100 ms and more under churn.
    gc.freeze()
    page = ""
    if config.web:
        scheme = "https" if config.tls_cert else "http"
        shown = f"[{host}]" if ":" in host else host
        page = f"; open {scheme}://{shown}:{port}/ in a browser to chat"
    print(f"chat-server listening on {host}:{port} (store: {where}{tls}){page}", flush=True)
    while not stop.wait(0.5):
        pass
    server.shutdown()
    return 0


def _is_start_failure(exc: Exception) -> bool:
    """A port that cannot be bound, or a Redis that cannot be reached."""
    if isinstance(exc, OSError):
        return True
    if "redis" in sys.modules:  # loaded only for a cluster node
        from redis.exceptions import RedisError  # noqa: PLC0415

        return isinstance(exc, RedisError)
    return False


def _usage(line: str) -> int:
    print(f"chat-server: {line}", file=sys.stderr)
    return 2
