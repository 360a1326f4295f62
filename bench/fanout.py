"""Fan-out and capacity benchmark for the chat server.

Starts `python -m chatserver` as a subprocess (SQLite store in a temporary
directory, limits raised so they do not cap the run), then drives it from one
asyncio process (uvloop when installed):

- `--mode fanout`: N clients in one room, S of them sending M messages each,
  either as fast as a window of W unacknowledged messages per sender allows
  (`--rate 0`) or at a fixed rate per sender. Every receiver counts frames;
  a few probe receivers also parse them for latency, order and duplicates.
- `--mode connections`: N idle, logged-in clients spread over R rooms; reports
  the time to connect them and the server's memory per connection.

Server CPU is read from /proc before and after the sending phase, so CPU
microseconds per delivery is a figure the load generator cannot hide.

    .venv/bin/python bench/fanout.py --clients 100 --senders 10 --messages 2000
    .venv/bin/python bench/fanout.py --mode connections --clients 2000
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

try:
    import uvloop as _uvloop  # type: ignore[import-not-found,unused-ignore]
except ImportError:  # the generator still works, only slower
    _uvloop = None  # type: ignore[assignment,unused-ignore]

_T = TypeVar("_T")


def _run(coro: Coroutine[Any, Any, _T]) -> _T:
    if _uvloop is not None:
        result: _T = _uvloop.run(coro)
        return result
    return asyncio.run(coro)


_TICK = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")
_ROOT = Path(__file__).resolve().parent.parent


# -- the server process ---------------------------------------------------------


@dataclass
class ServerProcess:
    proc: subprocess.Popen[str]
    host: str
    port: int

    def cpu(self) -> float:
        """CPU seconds (user + system) the server has used so far."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / _TICK

    def rss(self) -> int:
        """Resident memory now, in bytes."""
        return int(Path(f"/proc/{self.proc.pid}/statm").read_text().split()[1]) * _PAGE

    def peak_rss(self) -> int:
        status = Path(f"/proc/{self.proc.pid}/status").read_text()
        match = re.search(r"VmHWM:\s+(\d+) kB", status)
        return int(match.group(1)) * 1024 if match else 0

    def threads(self) -> int:
        return len(os.listdir(f"/proc/{self.proc.pid}/task"))


@contextlib.contextmanager
def chat_server(extra: list[str]) -> Iterator[ServerProcess]:
    """Our server on a free loopback port, ended by its PID afterwards."""
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [
            sys.executable,
            "-m",
            "chatserver",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--db",
            str(Path(tmp) / "bench.db"),
            "--rate",
            "1000000",
            "--burst",
            "1000000",
            "--max-clients",
            "100000",
            "--ping-interval",
            "3600",
            "--history",
            "0",
            "--log-level",
            "WARNING",
            *extra,
        ]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, cwd=_ROOT)
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            match = re.search(r"listening on ([\d.]+):(\d+)", line)
            if not match:
                raise RuntimeError(f"server did not start: {line!r}")
            yield ServerProcess(proc, match.group(1), int(match.group(2)))
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


# -- clients -----------------------------------------------------------------------


class Peer(asyncio.Protocol):
    """One client connection. Counts frames; probes also parse them."""

    def __init__(self, probe: bool) -> None:
        self.probe = probe
        self.transport: asyncio.Transport | None = None
        self.frames = 0
        self.acks = 0
        self.buf = b""
        self.received: list[tuple[int, int]] = []  # (message id, receive time ns), probes only
        self.texts: list[str] = []
        self.on_ack: asyncio.Event | None = None
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
        if not self.ready.is_set():
            self.buf += data
            if b'"type":"joined"' in self.buf:
                self.buf = self.buf[self.buf.index(b'"type":"joined"') :].split(b"\n", 1)[1]
                self.ready.set()
            return
        frames = data.count(b"\n")
        self.frames += frames
        if self.sender is not None:
            acks = data.count(b'{"ref":')
            if acks:
                self.sender.acked(acks)
        if self.probe:
            lines = (self.buf + data).split(b"\n")
            self.buf = lines.pop()
            for line in lines:
                frame = json.loads(line)
                if frame.get("type") == "message":
                    self.received.append((frame["id"], now))
                    self.texts.append(frame["text"])
        if self.wanted and self.frames >= self.wanted:
            self.done.set()

    def connection_lost(self, exc: Exception | None) -> None:
        self.done.set()

    def write(self, data: bytes) -> None:
        assert self.transport is not None
        self.transport.write(data)


_PAD = "x" * 40


class Sender:
    """Sends M messages, keeping at most W unacknowledged (or at a fixed rate)."""

    def __init__(self, peer: Peer, index: int, messages: int, window: int) -> None:
        self.peer = peer
        self.index = index
        self.messages = messages
        self.window = window
        self.sent = 0
        self.acked_count = 0
        self.finished = asyncio.Event()
        peer.sender = self

    def _send_one(self) -> None:
        n = self.sent
        self.sent += 1
        stamp = time.perf_counter_ns()
        self.peer.write(
            b'{"type":"say","id":%d,"room":"bench","text":"%d %d %d %s"}\n'
            % (n, self.index, n, stamp, _PAD.encode())
        )

    def start_window(self) -> None:
        while self.sent < min(self.window, self.messages):
            self._send_one()

    def acked(self, count: int) -> None:
        self.acked_count += count
        if self.window:
            while self.sent < self.messages and self.sent - self.acked_count < self.window:
                self._send_one()
        if self.acked_count >= self.messages:
            self.finished.set()

    async def at_rate(self, rate: float, start: float) -> None:
        interval = 1.0 / rate
        loop = asyncio.get_running_loop()
        for n in range(self.messages):
            delay = start + n * interval - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            self._send_one()


async def connect(host: str, port: int, nick: str, room: str, probe: bool) -> Peer:
    loop = asyncio.get_running_loop()
    _, peer = await loop.create_connection(lambda: Peer(probe), host, port)
    peer.write(
        b'{"type":"hello","id":0,"nick":"%s"}\n{"type":"join","id":1,"room":"%s"}\n'
        % (nick.encode(), room.encode())
    )
    await asyncio.wait_for(peer.ready.wait(), 60)
    return peer


async def connect_all(
    host: str, port: int, count: int, rooms: int, probes: int
) -> tuple[list[Peer], float]:
    gate = asyncio.Semaphore(200)

    async def one(i: int) -> Peer:
        async with gate:
            room = "bench" if rooms == 1 else f"room{i % rooms}"
            return await connect(host, port, f"c{i}", room, i < probes)

    start = time.perf_counter()
    peers = await asyncio.gather(*(one(i) for i in range(count)))
    return list(peers), time.perf_counter() - start


# -- the runs ----------------------------------------------------------------------


@dataclass
class FanoutResult:
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
    peak_rss: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    duplicates: int
    reorders: int
    extra: dict[str, float] = field(default_factory=dict)

    @property
    def rate_per_s(self) -> float:
        return self.deliveries / self.send_s if self.send_s else 0.0

    @property
    def cpu_us_per_delivery(self) -> float:
        return self.server_cpu_s / self.deliveries * 1e6 if self.deliveries else 0.0

    def row(self) -> str:
        mode = "full" if not self.rate else f"{self.rate:g}/s"
        return (
            f"| {self.clients} | {self.senders} | {mode} | {self.rate_per_s:,.0f} "
            f"| {self.deliveries / self.expected:.2%} | {self.p50_ms:.1f} | {self.p99_ms:.1f} "
            f"| {self.max_ms:.1f} | {self.cpu_us_per_delivery:.2f} | {self.server_cpu_s:.2f} "
            f"| {self.gen_cpu_s:.2f} | {self.peak_rss / 2**20:.0f} | {self.join_s:.2f} "
            f"| {self.duplicates} | {self.reorders} |"
        )


HEADER = (
    "| clients | senders | rate | deliveries/s | complete | p50 ms | p99 ms | max ms "
    "| server µs/delivery | server CPU s | generator CPU s | peak RSS MiB | join s "
    "| dups | reorders |\n|" + "---|" * 15
)


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def fanout(
    server: ServerProcess, clients: int, *, senders: int, messages: int, rate: float, window: int
) -> FanoutResult:
    probes = min(clients, 5)
    peers, join_s = await connect_all(server.host, server.port, clients, 1, probes)
    # Senders are the last clients, so probes are receivers only.
    sending = [
        Sender(peer, i, messages, 0 if rate else window) for i, peer in enumerate(peers[-senders:])
    ]
    total = senders * messages
    for peer in peers:
        peer.frames = 0
        peer.wanted = total
        peer.done.clear()
    cpu0, gen0, t0 = server.cpu(), time.process_time(), time.perf_counter()
    if rate:
        start = asyncio.get_running_loop().time()
        tasks = [asyncio.create_task(s.at_rate(rate, start)) for s in sending]
    else:
        tasks = []
        for s in sending:
            s.start_window()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.gather(*(p.done.wait() for p in peers)), 120)
    send_s = time.perf_counter() - t0
    cpu1, gen1 = server.cpu(), time.process_time()
    for task in tasks:
        task.cancel()
    deliveries = sum(min(p.frames, total) for p in peers)
    latencies: list[float] = []
    duplicates = reorders = 0
    for probe in peers[:probes]:
        ids = [mid for mid, _ in probe.received]
        duplicates += len(ids) - len(set(ids))
        reorders += sum(1 for a, b in itertools.pairwise(ids) if b <= a)
        for (_, got), text in zip(probe.received, probe.texts, strict=True):
            latencies.append((got - int(text.split()[2])) / 1e6)
    result = FanoutResult(
        clients=clients,
        senders=senders,
        messages=messages,
        rate=rate,
        join_s=join_s,
        send_s=send_s,
        deliveries=deliveries,
        expected=total * clients,
        server_cpu_s=cpu1 - cpu0,
        gen_cpu_s=gen1 - gen0,
        peak_rss=server.peak_rss(),
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


async def connections(server: ServerProcess, clients: int, rooms: int) -> dict[str, float]:
    base_rss, base_threads = server.rss(), server.threads()
    peers, join_s = await connect_all(server.host, server.port, clients, rooms, 0)
    rss, threads = server.rss(), server.threads()
    for peer in peers:
        if peer.transport is not None:
            peer.transport.close()
    return {
        "clients": len(peers),
        "rooms": rooms,
        "connect_and_join_s": join_s,
        "server_rss_mib": rss / 2**20,
        "rss_per_connection_kib": (rss - base_rss) / len(peers) / 1024,
        "server_threads": threads - base_threads,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=("fanout", "connections"), default="fanout")
    parser.add_argument("--clients", type=int, nargs="+", default=[100])
    parser.add_argument("--senders", type=int, default=10)
    parser.add_argument("--messages", type=int, default=2000, help="per sender")
    parser.add_argument("--rate", type=float, default=0.0, help="per sender; 0: full speed")
    parser.add_argument("--window", type=int, default=8, help="unacknowledged per sender")
    parser.add_argument("--rooms", type=int, default=100, help="connections mode")
    parser.add_argument("--server-arg", action="append", default=[], help="extra server flag")
    args = parser.parse_args()
    print(
        f"# load generator: {'uvloop' if _uvloop else 'asyncio'}, python {sys.version.split()[0]}"
    )
    if args.mode == "fanout":
        print(HEADER)
    for clients in args.clients:
        with chat_server(args.server_arg) as server:
            if args.mode == "fanout":
                result = _run(
                    fanout(
                        server,
                        clients,
                        senders=args.senders,
                        messages=args.messages,
                        rate=args.rate,
                        window=args.window,
                    )
                )
                print(result.row(), flush=True)
            else:
                figures = _run(connections(server, clients, args.rooms))
                print(json.dumps(figures), flush=True)


if __name__ == "__main__":
    main()
