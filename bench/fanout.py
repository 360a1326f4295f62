"""Fan-out and capacity benchmark: our server and ngircd, same workload, same run.

Each server is started as a subprocess on a free loopback port (ours with the
SQLite store, ngircd with a generated config whose flood control is off) and
driven from one asyncio process (uvloop when installed):

- `--mode fanout`: N clients in one room, S of them sending M messages each,
  either as fast as a window of W unacknowledged messages per sender allows
  (`--rate 0`) or at a fixed rate per sender. Every client counts the room
  messages it receives with a byte search; a few probe receivers also parse
  them for latency, order and duplicates.
- `--mode connections`: N idle, logged-in clients spread over R rooms; the
  time to connect them and the server's memory per connection.

Server CPU is read from /proc over the sending phase, so CPU microseconds per
delivery is a figure the generator cannot hide. A delivery is a room message
reaching a client other than its sender.

    .venv/bin/python bench/fanout.py --clients 10 100 500 --messages 4000
    .venv/bin/python bench/fanout.py --clients 10 100 500 --messages 250 --rate 50
    .venv/bin/python bench/fanout.py --mode connections --clients 2000
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import socket
import sys
import time
from collections.abc import Coroutine, Iterator
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TypeVar

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.dialects import CHAT, IRC, Dialect
from bench.servers import ServerProcess, chat_server, ngircd_server, ngircd_version

try:
    import uvloop as _uvloop  # type: ignore[import-not-found,unused-ignore]
except ImportError:  # the generator still works, only slower
    _uvloop = None  # type: ignore[assignment,unused-ignore]

_T = TypeVar("_T")
ROOM = "bench"


def _run(coro: Coroutine[Any, Any, _T]) -> _T:
    if _uvloop is not None:
        result: _T = _uvloop.run(coro)
        return result
    return asyncio.run(coro)


# -- clients -----------------------------------------------------------------------


class Peer(asyncio.Protocol):
    """One client connection. Counts deliveries; probes also parse them."""

    def __init__(self, dialect: Dialect, probe: bool) -> None:
        self.dialect = dialect
        self.probe = probe
        self.transport: asyncio.Transport | None = None
        self.delivered = 0
        self.buf = b""
        self.received: list[tuple[str, int]] = []  # (text, receive time ns), probes only
        self.ready = asyncio.Event()
        self.wanted = 0
        self.done = asyncio.Event()
        self.sender: Sender | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        sock = transport.get_extra_info("socket")
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        now = time.perf_counter_ns()
        dialect = self.dialect
        answer = dialect.answer(data)
        if answer:
            self.write(answer)
        if not self.ready.is_set():
            self.buf += data
            at = self.buf.find(dialect.ready)
            if at >= 0:
                self.buf = self.buf[at:].split(b"\n", 1)[1]
                self.ready.set()
            return
        delivered = data.count(dialect.delivery)
        if self.sender is not None:
            acks = data.count(dialect.ack)
            if acks:
                if dialect.echoes:
                    delivered -= acks
                self.sender.acked(acks)
        self.delivered += delivered
        if self.probe:
            lines = (self.buf + data).split(b"\n")
            self.buf = lines.pop()
            for line in lines:
                text = dialect.text_of(line)
                if text is not None:
                    self.received.append((text, now))
        if self.wanted and self.delivered >= self.wanted:
            self.done.set()

    def connection_lost(self, exc: Exception | None) -> None:
        self.done.set()

    def write(self, data: bytes) -> None:
        if self.transport is not None:
            self.transport.write(data)


class Sender:
    """Sends M messages, keeping at most W unacknowledged (or at a fixed rate)."""

    def __init__(self, peer: Peer, index: int, messages: int, window: int) -> None:
        self.peer = peer
        self.index = index
        self.messages = messages
        self.window = window
        self.sent = 0
        self.acked_count = 0
        peer.sender = self

    def send_one(self) -> None:
        self.peer.write(self.peer.dialect.say(ROOM, self.index, self.sent, time.perf_counter_ns()))
        self.sent += 1

    def start_window(self) -> None:
        while self.sent < min(self.window, self.messages):
            self.send_one()

    def acked(self, count: int) -> None:
        self.acked_count += count
        while (
            self.window and self.sent < self.messages and self.sent - self.acked_count < self.window
        ):
            self.send_one()

    async def at_rate(self, rate: float, start: float) -> None:
        loop = asyncio.get_running_loop()
        for n in range(self.messages):
            delay = start + n / rate - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            self.send_one()


async def connect_all(
    server: ServerProcess, dialect: Dialect, count: int, rooms: int, probes: int
) -> tuple[list[Peer], float]:
    loop = asyncio.get_running_loop()
    gate = asyncio.Semaphore(100)

    async def one(i: int) -> Peer:
        async with gate:
            _, peer = await loop.create_connection(
                lambda: Peer(dialect, i < probes), server.host, server.port
            )
            room = ROOM if rooms == 1 else f"room{i % rooms}"
            peer.write(dialect.login(f"c{i}", room))
            await asyncio.wait_for(peer.ready.wait(), 120)
            return peer

    start = time.perf_counter()
    peers = await asyncio.gather(*(one(i) for i in range(count)))
    return list(peers), time.perf_counter() - start


# -- the runs ----------------------------------------------------------------------


@dataclass
class FanoutResult:
    server: str
    clients: int
    senders: int
    messages: int
    rate: float
    join_s: float
    send_s: float
    deliveries: int
    expected: int
    server_cpu_s: float
    gen_cpu_s: float
    peak_rss_mib: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    duplicates: int
    reorders: int

    @property
    def per_s(self) -> float:
        return self.deliveries / self.send_s if self.send_s else 0.0

    @property
    def cpu_us(self) -> float:
        return self.server_cpu_s / self.deliveries * 1e6 if self.deliveries else 0.0

    @property
    def complete(self) -> float:
        return self.deliveries / self.expected if self.expected else 0.0

    def row(self) -> str:
        mode = "full" if not self.rate else f"{self.rate:g}/s"
        return (
            f"| {self.server} | {self.clients} | {self.senders} | {mode} | {self.per_s:,.0f} "
            f"| {self.complete:.2%} | {self.p50_ms:.1f} | {self.p99_ms:.1f} | {self.max_ms:.1f} "
            f"| {self.cpu_us:.2f} | {self.server_cpu_s:.2f} | {self.gen_cpu_s:.2f} "
            f"| {self.peak_rss_mib:.0f} | {self.join_s:.2f} | {self.duplicates} | {self.reorders} |"
        )


HEADER = (
    "| server | clients | senders | rate | deliveries/s | complete | p50 ms | p99 ms | max ms "
    "| server µs/delivery | server CPU s | generator CPU s | peak RSS MiB | join s "
    "| dups | reorders |\n|" + "---|" * 16
)


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


async def fanout(
    server: ServerProcess,
    dialect: Dialect,
    clients: int,
    *,
    senders: int,
    messages: int,
    rate: float,
    window: int,
) -> FanoutResult:
    probes = min(clients, 5)  # receivers first; senders only when there are no others
    peers, join_s = await connect_all(server, dialect, clients, 1, probes)
    sending = [
        Sender(peer, i, messages, 0 if rate else window) for i, peer in enumerate(peers[-senders:])
    ]
    for peer in peers:
        peer.wanted = senders * messages - (messages if peer.sender else 0)
    cpu0, gen0, t0 = server.cpu(), time.process_time(), time.perf_counter()
    tasks = []
    if rate:
        start = asyncio.get_running_loop().time()
        tasks = [asyncio.create_task(s.at_rate(rate, start)) for s in sending]
    else:
        for s in sending:
            s.start_window()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.gather(*(p.done.wait() for p in peers)), 180)
    send_s = time.perf_counter() - t0
    cpu1, gen1 = server.cpu(), time.process_time()
    for task in tasks:
        task.cancel()
    latencies: list[float] = []
    duplicates = reorders = 0
    for probe in peers[:probes]:
        last: dict[int, int] = {}
        seen: set[tuple[int, int]] = set()
        for text, got in probe.received:
            index, n, stamp = (int(part) for part in text.split()[:3])
            latencies.append((got - stamp) / 1e6)
            duplicates += (index, n) in seen
            reorders += n <= last.get(index, -1)
            seen.add((index, n))
            last[index] = n
    result = FanoutResult(
        server=server.name,
        clients=clients,
        senders=senders,
        messages=messages,
        rate=rate,
        join_s=join_s,
        send_s=send_s,
        deliveries=sum(min(p.delivered, p.wanted) for p in peers),
        expected=sum(p.wanted for p in peers),
        server_cpu_s=cpu1 - cpu0,
        gen_cpu_s=gen1 - gen0,
        peak_rss_mib=server.peak_rss() / 2**20,
        p50_ms=_percentile(latencies, 0.50),
        p99_ms=_percentile(latencies, 0.99),
        max_ms=max(latencies, default=0.0),
        duplicates=duplicates,
        reorders=reorders,
    )
    for peer in peers:
        if peer.transport is not None:
            peer.transport.close()
    return result


async def connections(
    server: ServerProcess, dialect: Dialect, clients: int, rooms: int
) -> dict[str, Any]:
    base_rss = server.rss()
    peers, join_s = await connect_all(server, dialect, clients, rooms, 0)
    rss = server.rss()
    figures = {
        "server": server.name,
        "clients": len(peers),
        "rooms": rooms,
        "connect_and_join_s": round(join_s, 2),
        "server_rss_mib": round(rss / 2**20, 1),
        "rss_per_connection_kib": round((rss - base_rss) / len(peers) / 1024, 1),
        "server_threads": server.threads(),
    }
    for peer in peers:
        if peer.transport is not None:
            peer.transport.close()
    return figures


def _servers(
    which: str, extra: list[str]
) -> Iterator[tuple[Dialect, AbstractContextManager[ServerProcess]]]:
    if which in ("ours", "both"):
        yield CHAT, chat_server(extra)
    if which in ("ngircd", "both"):
        yield IRC, ngircd_server()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=("fanout", "connections"), default="fanout")
    parser.add_argument("--server", choices=("ours", "ngircd", "both"), default="both")
    parser.add_argument("--clients", type=int, nargs="+", default=[100])
    parser.add_argument("--senders", type=int, default=10)
    parser.add_argument("--messages", type=int, default=2000, help="per sender")
    parser.add_argument("--rate", type=float, default=0.0, help="per sender; 0: full speed")
    parser.add_argument("--window", type=int, default=8, help="unacknowledged per sender")
    parser.add_argument("--rooms", type=int, default=100, help="connections mode")
    parser.add_argument("--json", type=Path, help="also append results to this file")
    parser.add_argument("--server-arg", action="append", default=[], help="extra flag for ours")
    args = parser.parse_args()
    if args.server != "ours" and ngircd_version() is None:
        parser.error("ngircd is not installed (Debian package 'ngircd'); use --server ours")
    print(f"# generator: {'uvloop' if _uvloop else 'asyncio'}, python {sys.version.split()[0]}")
    print(f"# ngircd: {ngircd_version()}")
    if args.mode == "fanout":
        print(HEADER)
    for clients in args.clients:
        for dialect, starting in _servers(args.server, args.server_arg):
            with starting as server:
                if args.mode == "fanout":
                    result = _run(
                        fanout(
                            server,
                            dialect,
                            clients,
                            senders=args.senders,
                            messages=args.messages,
                            rate=args.rate,
                            window=args.window,
                        )
                    )
                    print(result.row(), flush=True)
                    record: dict[str, Any] = asdict(result)
                    record |= {"per_s": result.per_s, "cpu_us": result.cpu_us}
                else:
                    record = _run(connections(server, dialect, clients, args.rooms))
                    print(json.dumps(record), flush=True)
                if args.json:
                    with args.json.open("a") as out:
                        out.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    main()
