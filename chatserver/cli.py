"""Command line of `chat-server` (and `python -m chatserver`)."""

from __future__ import annotations

import argparse
import ipaddress
import logging
import os
import signal
import ssl
import sys
import threading
from types import FrameType

from redis.exceptions import RedisError

from chatserver.config import ServerConfig
from chatserver.server import ChatServer
from chatserver.sqlite_store import SQLiteStore
from chatserver.store import MemoryStore, Store
from chatserver.web import normal_origin

__all__ = ["main", "parse_args"]

_DEFAULTS = ServerConfig()
# The GIL switch interval of the server process. Every thread waiting for the
# GIL wakes once per interval; with the default 5 ms, 10,000 readers woken at
# once (everyone joins a room) spend the CPU on those wake-ups and a room fills
# at a few joins per second (docs/BENCHMARKS.md, "One large room"). Threads
# here rarely run that long without blocking, so a longer one costs little.
SWITCH_INTERVAL = 0.1


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="chat-server", description="Run the threaded chat server (PROTOCOL.md v1)."
    )
    p.add_argument("--host", default=_DEFAULTS.host, help="address to listen on (%(default)s)")
    p.add_argument("--port", type=int, default=_DEFAULTS.port, help="TCP port (%(default)s)")
    p.add_argument("--store", choices=("sqlite", "memory"), default="sqlite")
    p.add_argument("--db", default="chat.db", help="SQLite file for --store sqlite (%(default)s)")
    p.add_argument("--name", default=_DEFAULTS.name, help="server name sent in welcome")
    p.add_argument("--motd", default=None, help="message of the day sent in welcome")
    p.add_argument("--max-clients", type=int, default=_DEFAULTS.max_clients)
    p.add_argument(
        "--history", type=int, default=_DEFAULTS.history, help="messages replayed on join"
    )
    p.add_argument("--max-frame", type=int, default=_DEFAULTS.max_frame, help="bytes")
    p.add_argument("--max-text", type=int, default=_DEFAULTS.max_text, help="characters")
    p.add_argument("--rate", type=float, default=_DEFAULTS.rate, help="commands per second")
    p.add_argument("--burst", type=int, default=_DEFAULTS.burst, help="commands at once")
    p.add_argument("--handshake-timeout", type=float, default=_DEFAULTS.handshake_timeout)
    p.add_argument("--ping-interval", type=float, default=_DEFAULTS.ping_interval)
    p.add_argument("--ping-timeout", type=float, default=_DEFAULTS.ping_timeout)
    p.add_argument("--soft-limit", type=int, default=_DEFAULTS.soft_limit, help="send queue bytes")
    p.add_argument(
        "--soft-seconds",
        type=float,
        default=_DEFAULTS.soft_seconds,
        help="how long a queue may stay above the soft limit",
    )
    p.add_argument("--hard-limit", type=int, default=_DEFAULTS.hard_limit, help="send queue bytes")
    p.add_argument(
        "--password",
        default=os.environ.get("CHAT_SERVER_PASSWORD"),
        help="a password every client must give in hello; better set through the "
        "CHAT_SERVER_PASSWORD environment variable, which `ps` does not show",
    )
    p.add_argument(
        "--max-per-address",
        type=int,
        default=_DEFAULTS.max_per_address,
        help="connections from one client address",
    )
    p.add_argument(
        "--max-rooms", type=int, default=_DEFAULTS.max_rooms, help="rooms one client may be in"
    )
    p.add_argument(
        "--max-members", type=int, default=_DEFAULTS.max_members, help="members of one room"
    )
    p.add_argument(
        "--large-room",
        type=int,
        default=_DEFAULTS.large_room,
        help="members above which a room is large: no per-member presence (%(default)s)",
    )
    p.add_argument(
        "--auth-failures",
        type=int,
        default=_DEFAULTS.auth_failures,
        help="failed logins allowed per address in --auth-window seconds",
    )
    p.add_argument("--auth-window", type=float, default=_DEFAULTS.auth_window)
    p.add_argument("--tls-cert", help="PEM certificate (chain): serve TLS")
    p.add_argument("--tls-key", help="PEM private key for --tls-cert")
    p.add_argument(
        "--redis",
        metavar="URL",
        default=os.environ.get("CHAT_REDIS_URL"),
        help="run as a node of a cluster that shares this Redis (redis://HOST:PORT/DB; "
        "also the CHAT_REDIS_URL environment variable); --store and --db are then unused",
    )
    p.add_argument(
        "--redis-history",
        type=int,
        default=_DEFAULTS.redis_history,
        help="entries kept per room in Redis (%(default)s)",
    )
    p.add_argument(
        "--node-ttl",
        type=float,
        default=_DEFAULTS.node_ttl,
        help="seconds after which a silent cluster node's clients are released (%(default)s)",
    )
    web = p.add_argument_group(
        "web",
        "The same port serves the web client (open http://HOST:PORT/ in a browser) and "
        "WebSockets carrying the protocol: a connection whose first bytes are `GET ` is "
        "a browser's. With --tls-cert it is https:// and wss://.",
    )
    web.add_argument(
        "--no-web", action="store_true", help="serve neither the web client nor WebSockets"
    )
    web.add_argument(
        "--web-origin",
        action="append",
        default=[],
        type=_origin,
        metavar="ORIGIN",
        help="a page origin (scheme://host[:port]) allowed to open a WebSocket besides the "
        "server's own; repeatable; '*' allows any",
    )
    web.add_argument(
        "--trusted-proxy",
        action="append",
        default=[],
        type=_network,
        metavar="ADDRESS",
        help="a reverse proxy (address or network) whose X-Forwarded-For names the "
        "client; repeatable",
    )
    p.add_argument("--log-level", default="INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    return p.parse_args(argv)


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


def config_from(args: argparse.Namespace) -> ServerConfig:
    return ServerConfig(
        host=args.host,
        port=args.port,
        name=args.name,
        motd=args.motd,
        max_clients=args.max_clients,
        history=args.history,
        max_frame=args.max_frame,
        max_text=args.max_text,
        rate=args.rate,
        burst=args.burst,
        handshake_timeout=args.handshake_timeout,
        ping_interval=args.ping_interval,
        ping_timeout=args.ping_timeout,
        soft_limit=args.soft_limit,
        soft_seconds=args.soft_seconds,
        hard_limit=args.hard_limit,
        server_password=args.password,
        max_per_address=args.max_per_address,
        max_rooms=args.max_rooms,
        max_members=args.max_members,
        large_room=args.large_room,
        auth_failures=args.auth_failures,
        auth_window=args.auth_window,
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
        redis_url=args.redis,
        redis_history=args.redis_history,
        node_ttl=args.node_ttl,
        web=not args.no_web,
        web_origins=tuple(args.web_origin),
        trusted_proxies=tuple(args.trusted_proxy),
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sys.setswitchinterval(SWITCH_INTERVAL)
    logging.basicConfig(
        level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        config = config_from(args)
    except ValueError as exc:
        print(f"chat-server: {exc}", file=sys.stderr)
        return 2
    store: Store | None = None
    if config.redis_url is None:
        store = SQLiteStore(args.db) if args.store == "sqlite" else MemoryStore()
    try:
        server = ChatServer(config, store)
    except (OSError, ssl.SSLError) as exc:
        print(f"chat-server: cannot load the TLS certificate or key: {exc}", file=sys.stderr)
        if store is not None:
            store.close()
        return 2
    except ValueError as exc:
        print(f"chat-server: {exc}", file=sys.stderr)
        return 2
    try:
        server.start()
    except (OSError, RedisError) as exc:
        where = config.redis_url if isinstance(exc, RedisError) else f"{config.host}:{config.port}"
        print(f"chat-server: cannot start on {where}: {exc}", file=sys.stderr)
        if store is not None:
            store.close()
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
    print(f"chat-server listening on {host}:{port} (store: {where}{tls})", flush=True)
    if config.web:
        scheme = "https" if config.tls_cert else "http"
        shown = f"[{host}]" if ":" in host else host
        print(f"open {scheme}://{shown}:{port}/ in a browser to chat", flush=True)
    while not stop.wait(0.5):
        pass
    server.shutdown()
    return 0
