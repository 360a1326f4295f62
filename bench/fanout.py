"""Fan-out and capacity benchmark: our server and ngircd, same workload, same run.

Each server is started as a subprocess on a free loopback port (ours with the
SQLite store, ngircd with a generated config whose flood control is off) and
driven from one asyncio process (uvloop when installed):

- `--mode fanout`: N clients in one room, S of them sending M messages each,
  either as fast as a window of W unacknowledged messages per sender allows
  (`--rate 0`) or at a fixed rate per sender. Every client counts the room
  messages it receives with a byte search; a few probe receivers also parse
  them for latency, order and duplicates. With `--slow K`, K receivers stop
  reading for `--pause` seconds, and the same workload is run first with
  nobody slow, to compare the healthy receivers' latency.
- `--mode connections`: N idle, logged-in clients spread over R rooms; how
  many got in, the time to connect them and the server's memory per
  connection.
- `--websocket F`: ours only: the share F (0 to 1) of the clients connects
  over a WebSocket (an upgrade request on the same port, one frame per text
  message) instead of plain TCP; the server column says `ws N%`.
- `--nodes 1 2 3`: cluster mode, our server only: a redis-server and that
  many nodes sharing it, the clients spread evenly over the nodes; Redis's
  own CPU is reported beside the nodes'.

Server CPU is read from /proc over the sending phase, so CPU microseconds per
delivery is a figure the generator cannot hide. A delivery is a room message
reaching a client other than its sender. The generator's own CPU is printed
beside every row, and the `bound` column says which side ran out of CPU.

    .venv/bin/python bench/fanout.py --clients 10 100 500 --messages 4000
    .venv/bin/python bench/fanout.py --clients 10 100 500 --messages 250 --rate 50
    .venv/bin/python bench/fanout.py --clients 20 --slow 2 --rate 200 --phase together \
        --messages 2400 --server-arg=--hard-limit=262144 --server-arg=--soft-limit=65536 \
        --server-arg=--soft-seconds=1
    .venv/bin/python bench/fanout.py --mode connections --clients 2000 --rooms 1
    .venv/bin/python bench/fanout.py --nodes 1 2 3 --clients 100 --messages 2000
    .venv/bin/python bench/fanout.py --server ours --clients 100 --messages 2000 --websocket 0 0.5 1

bench/suite.py runs every configuration of docs/BENCHMARKS.md; bench/report.py
turns the `--json` results into its tables and plot.
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

from wsproto.frame_protocol import FrameProtocol

from bench.dialects import CHAT, IRC, Counter, Dialect
from bench.servers import (
    Cluster,
    ServerProcess,
    chat_cluster,
    chat_server,
    ngircd_server,
    ngircd_version,
)

Target = ServerProcess | Cluster

try:
    import uvloop as _uvloop  # type: ignore[import-not-found,unused-ignore]
except ImportError:  # the generator still works, only slower
    _uvloop = None  # type: ignore[assignment,unused-ignore]

_T = TypeVar("_T")
ROOM = "bench"
# A receiver that stops reading: a small receive buffer and an Ethernet-sized
# segment, so that loopback's autotuned buffers (megabytes) do not hide the
# backlog from the server.
SLOW_RCVBUF = 4096
SLOW_MSS = 1460


def _run(coro: Coroutine[Any, Any, _T]) -> _T:
    if _uvloop is not None:
        result: _T = _uvloop.run(coro)
        return result
    return asyncio.run(coro)


# -- clients -----------------------------------------------------------------------


class Peer(asyncio.Protocol):
    """One client connection. Counts deliveries; probes also parse them."""

    def __init__(self, dialect: Dialect, probe: bool, room: str) -> None:
        self.dialect = dialect
        self.probe = probe
        self.room = room
        self.transport: asyncio.Transport | None = None
        self.delivered = 0
        self.deliveries = Counter(dialect.delivery)
        self.acks = Counter(dialect.ack)
        self.buf = b""
        self.received: list[tuple[str, int]] = []  # (text, receive time ns), probes only
        self.welcomed = asyncio.Event()
        self.ready = asyncio.Event()
        self.wanted = 0
        self.done = asyncio.Event()
        self.sender: Sender | None = None
        self.lost_at: float | None = None
        self.slow = False  # a receiver that stops reading: look for the drop notice
        self.told_dropped = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        sock = transport.get_extra_info("socket")
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        dialect = self.dialect
        answer = dialect.answer(data)
        if answer:
            self.write(answer)
        if self.ready.is_set():
            self._count(data, time.perf_counter_ns())
            return
        self.buf += data
        if not self.welcomed.is_set() and dialect.welcome in self.buf:
            self.welcomed.set()
            self.write(dialect.join(self.room))
        at = self.buf.find(dialect.ready)
        end = self.buf.find(b"\n", at) if at >= 0 else -1
        if end >= 0:  # the whole line that says we are in
            rest, self.buf = self.buf[end + 1 :], b""
            self.ready.set()
            if rest:
                self._count(rest, time.perf_counter_ns())

    def _count(self, data: bytes, now: int) -> None:
        dialect = self.dialect
        delivered = self.deliveries.count(data)
        if self.sender is not None:
            acks = self.acks.count(data)
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
        elif self.slow and dialect.dropped in data:
            self.told_dropped = True
        if self.wanted and self.delivered >= self.wanted:
            self.done.set()

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost_at = time.perf_counter()
        self.done.set()

    def write(self, data: bytes) -> None:
        if self.transport is not None and data:
            self.transport.write(data)


class WsPeer(Peer):
    """A client of ours over a WebSocket: the same counting, on the frames taken
    out of the text messages (LF-terminated again). Its frames go right behind
    the upgrade request, which the server allows.

    What it sends is framed (and masked) by wsproto. What it receives is cut by
    `_unframe`: the server sends only whole, unmasked text messages, and
    parsing them with wsproto here cost the generator several times the
    server's CPU, so that the generator, not the server, set the pace."""

    def __init__(self, dialect: Dialect, probe: bool, room: str) -> None:
        super().__init__(dialect, probe, room)
        self._head = b""  # the upgrade's answer, until its blank line
        self._upgraded = False
        self._in = b""
        self._out = FrameProtocol(client=True, extensions=[])

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.transport.write(  # type: ignore[union-attr]
            b"GET /ws HTTP/1.1\r\nHost: bench\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            b"Sec-WebSocket-Version: 13\r\n\r\n"
        )

    def data_received(self, data: bytes) -> None:
        if not self._upgraded:
            self._head += data
            end = self._head.find(b"\r\n\r\n")
            if end < 0:
                return
            if not self._head.startswith(b"HTTP/1.1 101 "):
                raise ConnectionError("the WebSocket upgrade was refused")
            self._upgraded = True
            data, self._head = self._head[end + 4 :], b""
        texts, self._in = _unframe(self._in + data if self._in else data)
        if texts:
            super().data_received(b"\n".join(texts) + b"\n")

    def write(self, data: bytes) -> None:
        if self.transport is None or not data:
            return
        frames = data.split(b"\n")
        frames.pop()
        self.transport.write(b"".join(self._out.send_data(f.decode()) for f in frames))


def _unframe(data: bytes) -> tuple[list[bytes], bytes]:
    """Whole unmasked server messages (RFC 6455 5.2) and the unfinished rest."""
    out: list[bytes] = []
    at, end = 0, len(data)
    while end - at >= 2:
        length, start = data[at + 1] & 0x7F, at + 2
        if length == 126:
            length, start = int.from_bytes(data[at + 2 : at + 4]), at + 4
        elif length == 127:
            length, start = int.from_bytes(data[at + 2 : at + 10]), at + 10
        if start > end or start + length > end:
            break
        if data[at] & 0x0F == 0x1:  # text; the server sends no fragments
            out.append(data[start : start + length])
        at = start + length
    return out, data[at:]


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


async def _open(
    address: tuple[str, int], dialect: Dialect, probe: bool, room: str, slow: bool, *, web: bool
) -> Peer:
    loop = asyncio.get_running_loop()
    kind = WsPeer if web else Peer
    if not slow:
        _, peer = await loop.create_connection(lambda: kind(dialect, probe, room), *address)
        return peer
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SLOW_RCVBUF)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, SLOW_MSS)
        sock.setblocking(False)
        await loop.sock_connect(sock, address)
    except BaseException:
        sock.close()
        raise
    _, peer = await loop.create_connection(lambda: kind(dialect, probe, room), sock=sock)
    return peer


async def connect_all(
    server: Target,
    dialect: Dialect,
    count: int,
    rooms: int,
    probes: int,
    *,
    slow: range = range(0),
    timeout: float = 300.0,
    web: float = 0.0,
) -> tuple[list[Peer], float, int]:
    """Connect, log in and join `count` clients; (the peers in, seconds, failures).

    At most `dialect.connect_batch` clients are between connect and the
    server's welcome at once; joins then proceed without a gate.
    """
    gate = asyncio.Semaphore(dialect.connect_batch)
    deadline = time.perf_counter() + timeout

    async def one(i: int) -> Peer:
        room = ROOM if rooms == 1 else f"room{i % rooms}"
        async with gate:
            address = server.addresses[i % len(server.addresses)]
            # Every client whose index crosses a multiple of 1/web is a WebSocket one.
            websocket = int((i + 1) * web) > int(i * web)
            peer = await _open(address, dialect, i < probes, room, i in slow, web=websocket)
            peer.write(dialect.login(f"c{i}", room))
            await asyncio.wait_for(peer.welcomed.wait(), deadline - time.perf_counter())
        await asyncio.wait_for(peer.ready.wait(), deadline - time.perf_counter())
        return peer

    start = time.perf_counter()
    outcomes = await asyncio.gather(*(one(i) for i in range(count)), return_exceptions=True)
    elapsed = time.perf_counter() - start
    peers = [p for p in outcomes if isinstance(p, Peer)]
    return peers, elapsed, count - len(peers)


def _close(peers: list[Peer]) -> None:
    for peer in peers:
        if peer.transport is not None:
            peer.transport.close()


# -- the runs ----------------------------------------------------------------------


@dataclass
class FanoutResult:
    server: str
    clients: int
    senders: int
    messages: int
    rate: float
    window: int
    phase: str  # at a fixed rate: senders "spread" over each period, or all "together"
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
    latency_samples: int
    slow: int = 0  # receivers that stopped reading
    pause_s: float = 0.0
    slow_dropped: int = 0
    slow_told: int = 0  # of those dropped, how many read the reason first
    slow_logged: int = 0  # drops for slowness in the server's log
    connect_failures: int = 0
    switch_interval: float | None = None
    nodes: int = 1  # cluster nodes the clients were spread over (0: a single server)
    redis_cpu_s: float = 0.0  # in cluster mode: Redis's own CPU over the sending phase
    websocket: float = 0.0  # the share of the clients on a WebSocket

    @property
    def per_s(self) -> float:
        return self.deliveries / self.send_s if self.send_s else 0.0

    @property
    def cpu_us(self) -> float:
        return self.server_cpu_s / self.deliveries * 1e6 if self.deliveries else 0.0

    @property
    def complete(self) -> float:
        return self.deliveries / self.expected if self.expected else 0.0

    @property
    def bound(self) -> str:
        """Which side ran out of CPU: each is one process that can use about a core."""
        gen = self.gen_cpu_s / self.send_s if self.send_s else 0.0
        srv = self.server_cpu_s / self.send_s if self.send_s else 0.0
        if gen >= 0.9 and gen >= srv:
            return f"generator ({gen:.0%})"
        if srv >= 0.9:
            return f"server ({srv:.0%})"
        if gen + srv >= 1.8:
            return f"both cores ({gen + srv:.0%})"
        return f"neither ({srv:.0%}/{gen:.0%})"

    def row(self) -> str:
        mode = "full" if not self.rate else f"{self.rate:g}/s {self.phase}"
        slow = f"{self.slow_dropped}/{self.slow} dropped" if self.slow else "-"
        server = f"{self.server} ws {self.websocket:.0%}" if self.websocket else self.server
        return (
            f"| {server} | {self.clients} | {self.senders} | {mode} | {slow} "
            f"| {self.per_s:,.0f} | {self.complete:.2%} | {self.p50_ms:.1f} | {self.p99_ms:.1f} "
            f"| {self.max_ms:.1f} | {self.cpu_us:.2f} | {self.server_cpu_s:.2f} "
            f"| {self.gen_cpu_s:.2f} | {self.bound} | {self.peak_rss_mib:.0f} "
            f"| {self.join_s:.2f} | {self.duplicates} | {self.reorders} |"
        )

    def cluster_row(self) -> str:
        mode = "full" if not self.rate else f"{self.rate:g}/s {self.phase}"
        sent = self.senders * self.messages
        return (
            f"| {self.nodes} | {self.clients} | {mode} | {self.per_s:,.0f} "
            f"| {self.complete:.2%} | {self.p50_ms:.1f} | {self.p99_ms:.1f} | {self.max_ms:.1f} "
            f"| {self.cpu_us:.2f} | {self.server_cpu_s:.2f} | {self.redis_cpu_s:.2f} "
            f"| {self.redis_cpu_s / sent * 1e6:.1f} | {self.gen_cpu_s:.2f} "
            f"| {self.duplicates} | {self.reorders} |"
        )

    def record(self) -> dict[str, Any]:
        out: dict[str, Any] = {"mode": "fanout", **asdict(self)}
        out |= {
            "per_s": self.per_s,
            "cpu_us": self.cpu_us,
            "complete": self.complete,
            "bound": self.bound,
        }
        return out


CLUSTER_HEADER = (
    "| nodes | clients | rate | deliveries/s | complete | p50 ms | p99 ms | max ms "
    "| nodes' µs/delivery | nodes' CPU s | Redis CPU s | Redis µs/message | generator CPU s "
    "| dups | reorders |\n|" + "---|" * 15
)

HEADER = (
    "| server | clients | senders | rate | slow | deliveries/s | complete | p50 ms | p99 ms "
    "| max ms | server µs/delivery | server CPU s | generator CPU s | bound (CPU/wall) "
    "| peak RSS MiB | join s | dups | reorders |\n|" + "---|" * 18
)


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


async def _pause(peers: list[Peer], after: float, pause: float) -> None:
    """Stop reading on `peers` for `pause` seconds, `after` s from now. (A server's
    close reaches a client only behind the data queued before it, so when a
    paused client was dropped is not seen here, only that it was.)"""
    await asyncio.sleep(after)
    for peer in peers:
        if peer.transport is not None and not peer.transport.is_closing():
            peer.transport.pause_reading()
    await asyncio.sleep(pause)
    for peer in peers:
        if peer.transport is not None and not peer.transport.is_closing():
            peer.transport.resume_reading()


async def fanout(
    server: Target,
    dialect: Dialect,
    clients: int,
    *,
    senders: int,
    messages: int,
    rate: float,
    window: int,
    phase: str = "spread",
    slow: int = 0,
    pause: float = 5.0,
    pause_at: float = 2.0,
    timeout: float = 180.0,
    websocket: float = 0.0,
) -> FanoutResult:
    # Probes first, then the slow receivers, senders last; probes are senders
    # only when there are no other receivers.
    receivers = clients - senders - slow
    probes = min(5, receivers) if receivers > 0 else min(clients, 5)
    slow_range = range(probes, probes + slow) if slow else range(0)
    peers, join_s, failures = await connect_all(
        server, dialect, clients, 1, probes, slow=slow_range, web=websocket
    )
    if failures:
        _close(peers)
        raise RuntimeError(f"{server.name}: {failures} of {clients} clients could not join")
    slow_peers = [peers[i] for i in slow_range]
    sending = [
        Sender(peer, i, messages, 0 if rate else window) for i, peer in enumerate(peers[-senders:])
    ]
    healthy = [p for p in peers if p not in slow_peers]
    for peer in slow_peers:
        peer.slow = True
    for peer in peers:
        peer.wanted = senders * messages - (messages if peer.sender else 0)
    redis0 = server.redis.cpu() if isinstance(server, Cluster) else 0.0
    cpu0, gen0, t0 = server.cpu(), time.process_time(), time.perf_counter()
    tasks: list[asyncio.Task[Any]] = []
    pausing: asyncio.Task[None] | None = None
    if slow_peers:
        pausing = asyncio.create_task(_pause(slow_peers, pause_at, pause))
    if rate:
        start = asyncio.get_running_loop().time()
        step = 1 / rate / len(sending) if phase == "spread" else 0.0
        tasks = [
            asyncio.create_task(s.at_rate(rate, start + i * step)) for i, s in enumerate(sending)
        ]
    else:
        for s in sending:
            s.start_window()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.gather(*(p.done.wait() for p in healthy)), timeout)
    send_s = time.perf_counter() - t0
    cpu1, gen1 = server.cpu(), time.process_time()
    redis1 = server.redis.cpu() if isinstance(server, Cluster) else 0.0
    for task in tasks:
        task.cancel()
    if pausing is not None:
        await pausing
        # A slow receiver that is not dropped gets everything once it reads again.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*(p.done.wait() for p in slow_peers)), 15)
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
    dropped = [p for p in slow_peers if p.lost_at is not None]
    result = FanoutResult(
        server=server.name,
        clients=clients,
        senders=senders,
        messages=messages,
        rate=rate,
        window=0 if rate else window,
        phase=phase if rate else "-",
        join_s=join_s,
        send_s=send_s,
        deliveries=sum(min(p.delivered, p.wanted) for p in healthy),
        expected=sum(p.wanted for p in healthy),
        server_cpu_s=cpu1 - cpu0,
        gen_cpu_s=gen1 - gen0,
        peak_rss_mib=server.peak_rss() / 2**20,
        p50_ms=_percentile(latencies, 0.50),
        p99_ms=_percentile(latencies, 0.99),
        max_ms=max(latencies, default=0.0),
        duplicates=duplicates,
        reorders=reorders,
        latency_samples=len(latencies),
        slow=slow,
        pause_s=pause if slow else 0.0,
        slow_dropped=len(dropped),
        slow_told=sum(p.told_dropped for p in dropped),
        slow_logged=server.log_lines(dialect.logs_drop),
        switch_interval=server.switch_interval,
        nodes=len(server.nodes) if isinstance(server, Cluster) else 0,
        redis_cpu_s=redis1 - redis0,
        websocket=websocket,
    )
    _close(peers)
    return result


async def connections(
    server: Target, dialect: Dialect, clients: int, rooms: int, timeout: float
) -> dict[str, Any]:
    base_rss = server.rss()
    cpu0, gen0 = server.cpu(), time.process_time()
    peers, join_s, failures = await connect_all(server, dialect, clients, rooms, 0, timeout=timeout)
    cpu1, gen1 = server.cpu(), time.process_time()
    await asyncio.sleep(0.5)  # let the last presence broadcasts settle
    rss = server.rss()
    figures = {
        "mode": "connections",
        "server": server.name,
        "clients": clients,
        "joined": len(peers),
        "failed": failures,
        "rooms": rooms,
        "connect_and_join_s": round(join_s, 2),
        "server_cpu_s": round(cpu1 - cpu0, 2),
        "gen_cpu_s": round(gen1 - gen0, 2),
        "server_rss_mib": round(rss / 2**20, 1),
        "rss_per_connection_kib": round((rss - base_rss) / max(1, len(peers)) / 1024, 1),
        "server_threads": server.threads(),
    }
    _close(peers)
    return figures


def servers(
    which: str,
    extra: list[str],
    switch_interval: float | None = None,
    root: Path | None = None,
    *,
    nodes: list[int] | None = None,
    fsync: str = "always",
) -> Iterator[tuple[Dialect, AbstractContextManager[Target]]]:
    if nodes:
        for count in nodes:
            yield CHAT, chat_cluster(count, extra, fsync=fsync)
        return
    if which in ("ours", "both"):
        yield CHAT, chat_server(extra, switch_interval=switch_interval, root=root)
    if which in ("ngircd", "both"):
        yield IRC, ngircd_server()


def ratio_row(ours: FanoutResult, theirs: FanoutResult) -> str:
    def r(a: float, b: float) -> str:
        return f"{a / b:.2f}" if b else "-"

    return (
        f"| ours/ngircd | {ours.clients} | {ours.senders} | "
        f"{'full' if not ours.rate else f'{ours.rate:g}/s {ours.phase}'} | | "
        f"{r(ours.per_s, theirs.per_s)} | | {r(ours.p50_ms, theirs.p50_ms)} "
        f"| {r(ours.p99_ms, theirs.p99_ms)} | {r(ours.max_ms, theirs.max_ms)} "
        f"| {r(ours.cpu_us, theirs.cpu_us)} | | {r(ours.gen_cpu_s, theirs.gen_cpu_s)} | "
        f"| {r(ours.peak_rss_mib, theirs.peak_rss_mib)} | {r(ours.join_s, theirs.join_s)} | | |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=("fanout", "connections"), default="fanout")
    parser.add_argument("--server", choices=("ours", "ngircd", "both"), default="both")
    parser.add_argument("--clients", type=int, nargs="+", default=[100])
    parser.add_argument("--senders", type=int, default=10)
    parser.add_argument("--messages", type=int, default=2000, help="per sender")
    parser.add_argument("--rate", type=float, default=0.0, help="per sender; 0: full speed")
    parser.add_argument("--window", type=int, default=8, help="unacknowledged per sender")
    parser.add_argument(
        "--phase",
        choices=("spread", "together"),
        default="spread",
        help="with --rate: senders evenly spread over each period, or all at its start",
    )
    parser.add_argument("--slow", type=int, default=0, help="receivers that stop reading")
    parser.add_argument("--pause", type=float, default=5.0, help="seconds the slow ones stop")
    parser.add_argument("--pause-at", type=float, default=2.0, help="seconds into sending")
    parser.add_argument("--rooms", type=int, default=100, help="connections mode")
    parser.add_argument("--timeout", type=float, default=180.0, help="per phase, seconds")
    parser.add_argument("--json", type=Path, help="also append results to this file")
    parser.add_argument("--server-arg", action="append", default=[], help="extra flag for ours")
    parser.add_argument(
        "--switch-interval", type=float, help="sys.setswitchinterval for our server, seconds"
    )
    parser.add_argument(
        "--server-root", type=Path, help="run our server from the packages in this directory"
    )
    parser.add_argument(
        "--nodes",
        type=int,
        nargs="+",
        help="cluster mode: our server as this many nodes on one redis-server, clients "
        "spread evenly over them (one run per count; ngircd is not run)",
    )
    parser.add_argument(
        "--redis-fsync",
        choices=("always", "everysec", "no"),
        default="always",
        help="cluster mode: Redis's appendfsync",
    )
    parser.add_argument(
        "--websocket",
        type=float,
        nargs="+",
        default=[0.0],
        metavar="SHARE",
        help="ours only: the share of clients (0 to 1) on a WebSocket; one run per share",
    )
    args = parser.parse_args()
    if any(share for share in args.websocket):
        if args.server != "ours" or args.nodes:
            parser.error("--websocket needs --server ours (and no --nodes)")
        if not all(0 <= share <= 1 for share in args.websocket):
            parser.error("--websocket: each share is between 0 and 1")
    if args.nodes:
        args.server = "ours"
    if args.server != "ours" and ngircd_version() is None:
        parser.error("ngircd is not installed (Debian package 'ngircd'); use --server ours")
    print(f"# generator: {'uvloop' if _uvloop else 'asyncio'}, python {sys.version.split()[0]}")
    print(f"# ngircd: {ngircd_version()}; our server's flags: {' '.join(args.server_arg) or '-'}")
    if args.mode == "fanout":
        print(CLUSTER_HEADER if args.nodes else HEADER)
    for clients in args.clients:
        rows: dict[str, FanoutResult] = {}
        for slow, share in [
            (slow, share)
            for slow in ([0, args.slow] if args.slow else [0])
            for share in args.websocket
        ]:
            for dialect, starting in servers(
                args.server,
                args.server_arg,
                args.switch_interval,
                args.server_root,
                nodes=args.nodes,
                fsync=args.redis_fsync,
            ):
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
                                phase=args.phase,
                                slow=slow,
                                pause=args.pause,
                                pause_at=args.pause_at,
                                timeout=args.timeout,
                                websocket=share,
                            )
                        )
                        print(result.cluster_row() if args.nodes else result.row(), flush=True)
                        rows[server.name] = result
                        record = result.record()
                    else:
                        record = _run(
                            connections(server, dialect, clients, args.rooms, args.timeout)
                        )
                        print(json.dumps(record), flush=True)
                    if args.json:
                        with args.json.open("a") as out:
                            out.write(json.dumps(record) + "\n")
            if {"threadchat", "ngircd"} <= rows.keys():
                print(ratio_row(rows["threadchat"], rows["ngircd"]), flush=True)
            rows = {}


if __name__ == "__main__":
    main()
