"""Filling one large room (PROTOCOL.md 1.3): the time, and the presence traffic.

For each n, a fresh server process (SQLite store, limits out of the way) gets
n clients that connect and say `hello` (timed apart: the connecting phase),
then all send `join` for one room at once, or with `--window W` at most W
unanswered at a time (the join phase: from the first `join` sent to the last
`joined` received). Afterwards each client pings, and
everything it received before its `pong` is counted: presence frames
(`member_joined`, `member_left`, `member_count`) and their bytes, and the
`joined` replies. The server's CPU over the join phase is read from /proc.
One process drives every client with a selector, so the client side stays
cheap; each phase has a deadline.

    .venv/bin/python bench/large_room.py --clients 1000 2000 5000 10000
    .venv/bin/python bench/large_room.py --clients 10000 --window 100

Needs a file-descriptor limit above n (`ulimit -n`) in this process and the
server's.
"""

from __future__ import annotations

import argparse
import json
import resource
import selectors
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.servers import ServerProcess, chat_server

_PRESENCE = (b'"type":"member_joined"', b'"type":"member_left"', b'"type":"member_count"')
_ROOM = "stadium"


@dataclass
class Result:
    clients: int
    large_room: int
    window: int
    connect_s: float
    join_s: float
    server_cpu_join_s: float
    presence_frames: int
    presence_bytes: int
    joined_bytes: int
    frames_per_member: float


class _Client:
    __slots__ = ("buf", "joined", "nick", "ponged", "sock", "welcomed")

    def __init__(self, sock: socket.socket, nick: str) -> None:
        self.sock = sock
        self.nick = nick
        self.buf = b""
        self.welcomed = False
        self.joined = False
        self.ponged = False


@dataclass
class _Tally:
    presence_frames: int = 0
    presence_bytes: int = 0
    joined_bytes: int = 0
    welcomed: int = 0
    joined: int = 0
    ponged: int = 0


def _read(client: _Client, tally: _Tally) -> None:
    try:
        data = client.sock.recv(1 << 16)
    except BlockingIOError:
        return
    if not data:
        raise ConnectionError(f"{client.nick}: the server closed the connection")
    lines = (client.buf + data).split(b"\n")
    client.buf = lines.pop()
    for line in lines:
        if any(kind in line for kind in _PRESENCE):
            tally.presence_frames += 1
            tally.presence_bytes += len(line) + 1
        elif b'"type":"joined"' in line:
            tally.joined_bytes += len(line) + 1
            client.joined = True
            tally.joined += 1
        elif b'"type":"welcome"' in line:
            client.welcomed = True
            tally.welcomed += 1
        elif b'"type":"pong"' in line and b'"ref":"end"' in line:
            client.ponged = True
            tally.ponged += 1
        elif b'"type":"error"' in line:
            raise RuntimeError(f"{client.nick}: {line.decode(errors='replace')}")


def _pump(
    sel: selectors.BaseSelector, tally: _Tally, done: Callable[[], bool], deadline: float
) -> None:
    """Read what arrives until `done()` or the deadline."""
    while not done():
        if time.monotonic() > deadline:
            raise TimeoutError(f"phase not done in time: {tally}")
        for key, _ in sel.select(timeout=0.5):
            _read(key.data, tally)


def run(
    n: int, large_room: int, deadline_s: float, window: int, switch: float | None = None
) -> Result:
    extra = ["--max-members", str(max(n, 1)), "--large-room", str(large_room)]
    extra += ["--history", "20", "--ping-interval", "3600", "--ping-timeout", "3600"]
    extra += ["--handshake-timeout", "600"]
    with chat_server(extra, switch_interval=switch) as server:
        return _drive(server, n, large_room, deadline_s, window)


def _drive(
    server: ServerProcess, n: int, large_room: int, deadline_s: float, window: int
) -> Result:
    sel = selectors.DefaultSelector()
    clients: list[_Client] = []
    tally = _Tally()
    try:
        start = time.monotonic()
        deadline = start + deadline_s
        for i in range(n):
            sock = socket.create_connection((server.host, server.port), timeout=30)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            nick = f"fan{i:05d}"
            sock.sendall(b'{"type":"hello","nick":"%s","version":"1.3"}\n' % nick.encode())
            sock.setblocking(False)
            client = _Client(sock, nick)
            clients.append(client)
            sel.register(sock, selectors.EVENT_READ, client)
            if i % 256 == 255:  # take the welcomes as they come
                for key, _ in sel.select(timeout=0):
                    _read(key.data, tally)
        _pump(sel, tally, lambda: tally.welcomed == n, deadline)
        connect_s = time.monotonic() - start

        join = b'{"type":"join","id":"j","room":"%s"}\n' % _ROOM.encode()
        cpu0 = server.cpu()
        start = time.monotonic()
        deadline = start + deadline_s
        sent = 0
        while tally.joined < n:
            # Up to `window` joins unanswered (all of them at once with 0).
            while sent < n and (not window or sent - tally.joined < window):
                sock = clients[sent].sock
                sock.setblocking(True)
                sock.sendall(join)
                sock.setblocking(False)
                sent += 1
                if sent % 64 == 0:
                    break  # read between sends, as clients would
            if time.monotonic() > deadline:
                raise TimeoutError(f"joins not done in time: {tally}")
            for key, _ in sel.select(timeout=0.5 if sent == n else 0):
                _read(key.data, tally)
        join_s = time.monotonic() - start
        cpu = server.cpu() - cpu0

        ping = b'{"type":"ping","id":"end"}\n'
        for client in clients:
            client.sock.setblocking(True)
            client.sock.sendall(ping)
            client.sock.setblocking(False)
        _pump(sel, tally, lambda: tally.ponged == n, time.monotonic() + deadline_s)
    finally:
        for client in clients:
            sel.unregister(client.sock)
            client.sock.close()
        sel.close()
    return Result(
        clients=n,
        large_room=large_room,
        window=window,
        connect_s=round(connect_s, 2),
        join_s=round(join_s, 2),
        server_cpu_join_s=round(cpu, 2),
        presence_frames=tally.presence_frames,
        presence_bytes=tally.presence_bytes,
        joined_bytes=tally.joined_bytes,
        frames_per_member=round(tally.presence_frames / n, 2),
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--clients", type=int, nargs="+", default=[1000, 2000, 5000, 10000])
    p.add_argument("--large-room", type=int, default=250)
    p.add_argument("--deadline", type=float, default=120.0, help="seconds per phase")
    p.add_argument(
        "--window",
        type=int,
        default=0,
        help="joins sent and not yet answered at most (0: every client joins at once)",
    )
    p.add_argument(
        "--switch-interval",
        type=float,
        default=None,
        help="the server's GIL switch interval in seconds (bench/gilserver.py)",
    )
    p.add_argument("--json", type=Path, help="append each result as a JSON line")
    args = p.parse_args(argv)
    if any(not 1 <= n <= 20_000 for n in args.clients):
        p.error("--clients: each between 1 and 20000")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = max(args.clients) + 100
    if soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(need, hard), hard))
    print(
        f"{'clients':>8} {'connect s':>10} {'join s':>8} {'server CPU s':>13} "
        f"{'presence frames':>16} {'presence KiB':>13} {'frames/member':>14} {'joined KiB':>11}"
    )
    for n in args.clients:
        r = run(n, args.large_room, args.deadline, args.window, args.switch_interval)
        print(
            f"{r.clients:>8} {r.connect_s:>10.2f} {r.join_s:>8.2f} {r.server_cpu_join_s:>13.2f} "
            f"{r.presence_frames:>16} {r.presence_bytes / 1024:>13.1f} "
            f"{r.frames_per_member:>14.2f} {r.joined_bytes / 1024:>11.1f}",
            flush=True,
        )
        if args.json is not None:
            with args.json.open("a") as out:
                out.write(json.dumps(asdict(r)) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
