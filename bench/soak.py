"""Adversarial soak: many clients misbehaving at once, a server killed midway, and
checks of what PROTOCOL.md promises (sections 11, 12 and 13) at the end.

The server runs as a subprocess (`python -m chatserver`, SQLite in a temporary
directory, rate limits out of the way, small send-queue limits) on a loopback
port. Against it, for `--seconds`:

- `--clients` library clients (`chatclient.Client`, reconnection on), each in
  a thread of its own, doing at random: join, part, rename, say, dm, history,
  and bursts of says sent without waiting (sometimes followed at once by a
  part and a join of the same room). `--observers` of them join every room
  at the start and never part;
- `--slow` raw sockets with a small receive buffer that log in, join every
  room and never read (half before the kill, half after the restart); half of
  them start reading once an observer sees them dropped, the others only at
  the end;
- `--vanishers` threads that connect over and over and vanish with a TCP
  reset: before hello, in the middle of a frame, with a `say` in flight, or
  after its echo;
- two raw readers in every room, one per life of the server, that record
  what the server itself sends (the library drops duplicates; they do not);
- halfway, the server is killed with SIGKILL and started again on the same
  SQLite file and port; the library clients come back by themselves.

Then it checks:

1. every message acknowledged to its sender (the echo arrived) is in its
   room's history exactly once;
2. every library client saw each room's messages, while it was a member, as
   a contiguous run of the stored history (same order, no gap, no duplicate),
   across its reconnection; observers saw all of every room; the raw readers
   saw contiguous runs too, the second one up to the end of every room;
3. the never-reading sockets were dropped as slow consumers, no other client
   was, and the say-to-echo latency of the library clients stayed under
   `--latency-bound` (p99, outside the window from the kill until every
   client is back, plus 2 s);
4. once every client has closed, the restarted server's threads and open
   descriptors are back at what they were right after its start;
5. the server logged no error.

It prints a summary and exits with status 1 if a check fails.

    .venv/bin/python bench/soak.py                  # 60 s, 200 clients
    .venv/bin/python bench/soak.py --seconds 10 --clients 60 --slow 6 --interval 0.5
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import random
import re
import select
import signal
import socket
import string
import struct
import subprocess
import sys
import tempfile
import threading
import time
from array import array
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.servers import chat_command
from chatclient import (
    ChatError,
    Client,
    ClientError,
    ClientEvent,
    ConnectionLost,
    Disconnected,
    Reconnected,
)
from chatproto import (
    MAX_HISTORY_PAGE,
    Command,
    DirectMessage,
    Event,
    Join,
    Joined,
    LeaveReason,
    MemberLeft,
    Ok,
    Part,
    RoomMessage,
    Say,
)

__all__ = ["SoakConfig", "SoakReport", "main", "run_soak"]

HOST = "127.0.0.1"
_ROOT = Path(__file__).resolve().parent.parent
_TICK = os.sysconf("SC_CLK_TCK")
REQUEST_TIMEOUT = 10.0  # one request of a library client
SETTLE = 2.0  # seconds after the last client is back that still count as the restart window
SLOW_RCVBUF = 4096
# The segment size of an Ethernet path, for the never-reading sockets. Over
# loopback (64 KiB segments) Linux grows the server's send buffer of a socket
# that does not read to 4 MiB (tcp_wmem), and ~3 MB disappear into the kernel
# before the server's own queue, and its limits, see anything; with 1460-byte
# segments the kernel holds ~80 KB, as on a real network.
SLOW_MSS = 1460
# Per-room log of a library client, one int per entry (compact: array of int64):
# a message id (>= 1), ECHO | id for the echo of its own `say`, PART_SENT when
# it sends `part`, PART when the `part` is answered, or a join header -1 - k
# followed by the k ids of the `joined` history.
PART = 0
PART_SENT = 1 << 59
ECHO = 1 << 60


@dataclass(frozen=True)
class SoakConfig:
    seconds: float = 60.0
    clients: int = 200
    observers: int = 5
    rooms: int = 5
    slow: int = 10
    vanishers: int = 4
    interval: float = 1.0  # mean seconds between two actions of one client
    max_text: int = 2000
    latency_bound: float = 2.0  # p99 of say -> echo, seconds
    seed: int | None = None
    hard_limit: int = 262144
    soft_limit: int = 65536
    soft_seconds: float = 1.0

    def __post_init__(self) -> None:
        if self.seconds <= 0 or self.interval <= 0:
            raise ValueError("seconds and interval must be positive")
        if not 1 <= self.observers <= self.clients:
            raise ValueError("need 1 <= observers <= clients")
        if not 1 <= self.rooms <= 50 or self.slow < 0 or self.vanishers < 0:
            raise ValueError("need 1-50 rooms and no negative counts")
        if not 20 <= self.max_text <= 4000:
            raise ValueError("max_text must be between 20 and 4000")


@dataclass
class Check:
    name: str
    passed: bool
    detail: str


@dataclass
class SoakReport:
    checks: list[Check]
    lines: list[str]

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(c.passed for c in self.checks)

    @property
    def summary(self) -> str:
        return "\n".join(self.lines)


@dataclass(frozen=True, slots=True)
class Ack:
    token: str
    room: str
    id: int
    nick: str


# -- the server process ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Footprint:
    threads: int
    fds: int
    connections: int  # TCP sockets other than the listener among the fds
    targets: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.threads} threads / {self.fds} fds"


def _tcp_states(pid: int) -> dict[int, str]:
    states: dict[int, str] = {}
    for name in ("tcp", "tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/net/{name}").read_text().splitlines()[1:]:
                fields = line.split()
                states[int(fields[9])] = fields[3]
    return states


def footprint(pid: int) -> Footprint:
    """Threads and descriptors of a process; `connections` counts the TCP sockets
    among them that are not listening (one per client the server still holds)."""
    threads = len(os.listdir(f"/proc/{pid}/task"))
    targets: list[str] = []
    for fd in os.listdir(f"/proc/{pid}/fd"):
        with contextlib.suppress(OSError):  # closed meanwhile
            targets.append(os.readlink(f"/proc/{pid}/fd/{fd}"))
    states = _tcp_states(pid)
    connections = 0
    for target in targets:
        match = re.fullmatch(r"socket:\[(\d+)\]", target)
        if match and states.get(int(match.group(1)), "0A") != "0A":  # 0A: LISTEN
            connections += 1
    return Footprint(threads, len(targets), connections, tuple(sorted(targets)))


class ServerProcess:
    """`python -m chatserver` on a loopback port, started, killed and stopped by PID."""

    def __init__(self, db: Path, log: Path, config: SoakConfig) -> None:
        self.db = db
        self.log = log
        self.config = config
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.attempts = 0
        self.cpu_used = 0.0  # by the servers killed so far

    def command(self, port: int) -> list[str]:
        c = self.config
        return chat_command(
            HOST,
            port,
            self.db,
            "--hard-limit",
            str(c.hard_limit),
            "--soft-limit",
            str(c.soft_limit),
            "--soft-seconds",
            str(c.soft_seconds),
        )

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self, port: int = 0, within: float = 15.0) -> None:
        """Start on `port` (0: any free one), retrying while the port cannot be
        bound, for `within` seconds at most."""
        deadline = time.monotonic() + within
        self.attempts = 0
        while True:
            self.attempts += 1
            with self.log.open("ab") as err:
                proc = subprocess.Popen(
                    self.command(port), stdout=subprocess.PIPE, stderr=err, cwd=_ROOT
                )
            assert proc.stdout is not None
            line = b""
            ready, _, _ = select.select(
                [proc.stdout], [], [], max(0.1, deadline - time.monotonic())
            )
            if ready:
                line = proc.stdout.readline()
            match = re.search(rb"listening on ([\d.]+):(\d+)", line)
            if match:
                self.proc, self.port = proc, int(match.group(2))
                return
            _end(proc)
            if time.monotonic() >= deadline:
                raise RuntimeError(f"the server did not start on port {port}: {line!r}")
            time.sleep(0.1)

    def cpu(self) -> float:
        """CPU seconds (user + system) the running server has used."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / _TICK

    def kill(self) -> None:
        """SIGKILL, by PID, and reap."""
        assert self.proc is not None
        self.cpu_used += self.cpu()
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()

    def stop(self) -> None:
        if self.proc is not None:
            _end(self.proc)


def _end(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
    if proc.stdout is not None:
        proc.stdout.close()


# -- what every actor shares ------------------------------------------------------------


class Shared:
    def __init__(self, config: SoakConfig, seed: int) -> None:
        self.config = config
        self.seed = seed
        self.port = 0
        self.stop = threading.Event()  # the actors end their loops
        self.go = threading.Event()  # setup done: the library clients start acting
        self.up = threading.Event()  # the server is up (cleared around the restart)
        self.up.set()
        self.final = threading.Event()  # the slow consumers are read now
        self.deadline = 0.0
        self.lock = threading.Lock()
        self.acked: list[Ack] = []
        # say -> echo of library clients: (start, seconds, of which until the server's timestamp)
        self.latencies: list[tuple[float, float, float]] = []
        self.kicked: dict[str, float] = {}  # nick -> when an observer saw it kicked
        self.kick_events: dict[str, threading.Event] = {}
        self.lost_nicks: set[str] = set()
        self.counts: Counter[str] = Counter()
        self.members: list[Member] = []
        rng = random.Random(seed)
        self.filler = "".join(rng.choices(string.ascii_letters + "     ", k=2 * config.max_text))

    def count(self, what: str, n: int = 1) -> None:
        with self.lock:
            self.counts[what] += n

    def ack(self, ack: Ack) -> None:
        with self.lock:
            self.acked.append(ack)

    def latency(self, started: float, now: float, to_server: float) -> None:
        with self.lock:
            self.latencies.append((started, now - started, to_server))

    def saw_left(self, nick: str, reason: str) -> None:
        """A reader saw `nick` leave a room (`member_left`) for `reason`."""
        with self.lock:
            if reason == LeaveReason.KICKED:
                if nick not in self.kicked:
                    self.kicked[nick] = time.monotonic()
                    waiting = self.kick_events.get(nick)
                    if waiting is not None:
                        waiting.set()
            elif reason == LeaveReason.LOST:
                self.lost_nicks.add(nick)

    def text(self, token: str, rng: random.Random) -> str:
        size = rng.randint(10, self.config.max_text - len(token) - 1)
        start = rng.randrange(len(self.filler) - size)
        return f"{token} {self.filler[start : start + size]}".rstrip()


# -- library clients ----------------------------------------------------------------------


class Member:
    """A `chatclient.Client` with reconnection on, acting at random in its own thread.

    Everything it sees is logged per room in the client's receive thread (the
    event callback, and request callbacks that run there in order with the
    events), so the log is in the order the client received it.
    """

    WORKER = (
        ("say", 36),
        ("burst", 4),
        ("dm", 15),
        ("join", 12),
        ("part", 10),
        ("nick", 8),
        ("history", 5),
    )
    OBSERVER = (("say", 36), ("burst", 4), ("dm", 15), ("nick", 8), ("history", 5))

    def __init__(self, shared: Shared, index: int, observer: bool) -> None:
        self.shared = shared
        self.observer = observer
        self.key = f"obs{index}" if observer else f"w{index}"
        self.rng = random.Random(shared.seed * 100_003 + index)
        self.rooms = [f"room{n}" for n in range(shared.config.rooms)]
        self.log: dict[str, array[int]] = {}
        self.said = 0
        self.renames = 0
        self.disconnects = 0
        self.reconnects = 0
        self.slow_drops = 0
        self.dms_received = 0
        self.failure: str | None = None
        self.ready = threading.Event()
        self.client = Client(
            self.key,
            host=HOST,
            port=shared.port,
            reconnect=True,
            on_event=self._on_event,
            queue_size=0,
            timeout=REQUEST_TIMEOUT,
        )
        actions = self.OBSERVER if observer else self.WORKER
        self._actions = [a for a, _ in actions]
        self._weights = [w for _, w in actions]
        self.thread = threading.Thread(target=self._run, name=f"soak-{self.key}", daemon=True)

    # -- in the receive thread --

    def _room_log(self, room: str) -> array[int]:
        log = self.log.get(room)
        if log is None:
            log = self.log[room] = array("q")
        return log

    def _on_event(self, event: ClientEvent) -> None:
        if isinstance(event, RoomMessage):
            self._room_log(event.room).append(event.id)
        elif isinstance(event, MemberLeft):
            self.shared.saw_left(event.nick, event.reason)
        elif isinstance(event, DirectMessage):
            self.dms_received += 1
        elif isinstance(event, Disconnected):
            if event.reconnecting:
                self.disconnects += 1
            else:
                self.failure = f"gave up: {event.reason}"
            if event.error is not None and event.error.code == "slow_consumer":
                self.slow_drops += 1
        elif isinstance(event, Reconnected):
            self.reconnects += 1

    def _joined(self, reply: Event) -> None:
        if isinstance(reply, Joined):
            # One extend: the member's thread may append PART_SENT meanwhile.
            header = [-1 - len(reply.history), *(m.id for m in reply.history)]
            self._room_log(reply.room).extend(array("q", header))

    # -- in the member's own thread --

    def _submit(self, command: Command, on_reply: Callable[[Event], None]) -> Future[Event]:
        """Send `command`; `on_reply` gets its reply in the receive thread, in order
        with the events. The future returned is done once `on_reply` has run."""
        outcome: Future[Event] = Future()

        def done(future: Future[Event]) -> None:
            error = future.exception()  # done: no waiting
            if error is not None:
                outcome.set_exception(error)
                return
            reply = future.result()
            on_reply(reply)
            outcome.set_result(reply)

        self.client.submit(command, done)
        return outcome

    def _part(self, room: str) -> Future[Event]:
        def parted(reply: Event) -> None:
            if isinstance(reply, Ok):
                self._room_log(room).append(PART)

        # Before sending: whatever the server does after it comes later in the log.
        self._room_log(room).append(PART_SENT)
        return self._submit(Part(room=room), parted)

    def _say(self, room: str) -> Future[Event]:
        shared = self.shared
        self.said += 1
        token = f"{self.key}#{self.said}"
        started, wall = time.monotonic(), time.time()

        def echoed(reply: Event) -> None:
            if isinstance(reply, RoomMessage):
                self._room_log(reply.room).append(ECHO | reply.id)
                shared.ack(Ack(token, reply.room, reply.id, reply.nick))
                # The server stamps a message (ms) when it numbers it, before storing it.
                shared.latency(started, time.monotonic(), reply.ts / 1000 - wall)

        shared.count("say")
        return self._submit(Say(room=room, text=shared.text(token, self.rng)), echoed)

    def _run(self) -> None:
        try:
            self.client.connect()
            rooms = (
                self.rooms
                if self.observer
                else self.rng.sample(self.rooms, self.rng.randint(1, min(3, len(self.rooms))))
            )
            for room in rooms:
                self._submit(Join(room=room), self._joined).result(REQUEST_TIMEOUT)
        except (ClientError, TimeoutError) as exc:
            self.failure = f"setup: {exc!r}"
            return
        finally:
            self.ready.set()
        shared = self.shared
        if not shared.go.wait(120):
            return
        while not shared.stop.wait(self.rng.expovariate(1 / shared.config.interval)):
            if time.monotonic() >= shared.deadline:
                break
            if not self.client.connected:
                shared.count("skipped while reconnecting")
                continue
            action = self.rng.choices(self._actions, self._weights)[0]
            try:
                futures = self._act(action)
            except ClientError as exc:
                self._failed(action, exc)
                continue
            for future in futures:
                try:
                    future.result(REQUEST_TIMEOUT)
                except (ClientError, TimeoutError) as exc:
                    self._failed(action, exc)

    def _failed(self, action: str, exc: Exception) -> None:
        if isinstance(exc, ChatError):
            self.shared.count(f"{action} refused: {exc.code}")
        elif isinstance(exc, ConnectionLost):
            self.shared.count(f"{action} lost")
        else:
            self.shared.count(f"{action} timed out")

    def _act(self, action: str) -> list[Future[Event]]:
        """Start `action`: the futures of the requests it sent."""
        shared, rng = self.shared, self.rng
        mine = sorted(self.client.joined_rooms)
        if action == "join" or not mine:
            others = [r for r in self.rooms if r not in mine]
            # Now and then join a room again while in it: a fresh `joined`.
            room = rng.choice(others) if others and rng.random() < 0.9 else rng.choice(self.rooms)
            shared.count("join")
            return [self._submit(Join(room=room), self._joined)]
        if action == "part":
            room = rng.choice(mine)
            shared.count("part")
            return [self._part(room)]
        if action == "say":
            return [self._say(rng.choice(mine))]
        if action == "burst":
            # Several says without waiting; a worker may then part the last one's
            # room, and join it again, before the echoes are back (an echo may come
            # after the replies to later commands: PROTOCOL.md section 4).
            rooms = [rng.choice(mine) for _ in range(rng.randint(2, 5))]
            futures = [self._say(room) for room in rooms]
            if not self.observer and rng.random() < 0.4:
                room = rooms[-1]
                shared.count("part")
                futures.append(self._part(room))
                if rng.random() < 0.5:
                    shared.count("join")
                    futures.append(self._submit(Join(room=room), self._joined))
            return futures
        if action == "dm":
            target = rng.choice(shared.members).client.nickname
            shared.count("dm")
            self.client.dm(target, shared.text(f"{self.key}-dm", rng), timeout=REQUEST_TIMEOUT)
        elif action == "nick":
            shared.count("nick")
            self.client.nick(f"{self.key}n{self.renames + 1}", timeout=REQUEST_TIMEOUT)
            self.renames += 1
        else:
            shared.count("history")
            self.client.history(rng.choice(mine), limit=5, timeout=REQUEST_TIMEOUT)
        return []

    def last_seen(self, room: str) -> int:
        """The highest message id logged for `room`."""
        log = self.log.get(room)
        return max((e & ~ECHO for e in log if e != PART_SENT), default=0) if log else 0


# -- raw sockets -------------------------------------------------------------------------------


class Raw:
    """A bare protocol connection: JSON lines over a socket."""

    def __init__(self, port: int, *, slow: bool = False, timeout: float = 5.0) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            if slow:  # before connecting: they shape the connection from the handshake on
                self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SLOW_RCVBUF)
                self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, SLOW_MSS)
            self.sock.settimeout(timeout)
            self.sock.connect((HOST, port))
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            self.sock.close()
            raise
        self.buf = b""

    @staticmethod
    def frame(**fields: Any) -> bytes:
        return json.dumps(fields, separators=(",", ":")).encode() + b"\n"

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def until(self, ref: str, within: float) -> dict[str, Any]:
        """Read frames until the one with `ref`; raises OSError or TimeoutError."""
        deadline = time.monotonic() + within
        while True:
            while b"\n" in self.buf:
                line, self.buf = self.buf.split(b"\n", 1)
                frame: dict[str, Any] = json.loads(line)
                if frame.get("ref") == ref:
                    return frame
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no reply to {ref}")
            self.sock.settimeout(remaining)
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("closed by the server")
            self.buf += data

    def drain(self, within: float, quiet: float = 2.0) -> tuple[dict[str, Any] | None, str, int]:
        """Read to the end of the stream: (last whole frame, how it ended, bytes read).

        How it ended: "eof", "reset", or "open" (nothing came for `quiet` seconds,
        or it was still sending after `within`)."""
        deadline = time.monotonic() + within
        data = bytearray()
        end = "open"
        while (remaining := deadline - time.monotonic()) > 0:
            self.sock.settimeout(min(quiet, remaining))
            try:
                chunk = self.sock.recv(1 << 20)
            except TimeoutError:
                break
            except OSError:
                end = "reset"
                break
            if not chunk:
                end = "eof"
                break
            data += chunk
        last = None
        lines = bytes(data).split(b"\n")
        for line in reversed(lines[:-1]):  # the part after the last LF is not a whole frame
            with contextlib.suppress(ValueError):
                last = json.loads(line)
                break
        return last, end, len(data)

    def reset(self) -> None:
        """Vanish: SO_LINGER 0, so that close sends a TCP reset."""
        with contextlib.suppress(OSError):
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()

    def close(self) -> None:
        self.sock.close()


@dataclass
class SlowConsumer:
    """Logs in, joins every room and never reads; `prompt` ones start reading as
    soon as an observer sees them dropped, the others only at the end."""

    nick: str
    prompt: bool
    phase: int
    kicked: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    raw: Raw | None = None
    last: dict[str, Any] | None = None
    end: str = "not connected"
    received: int = 0
    thread: threading.Thread | None = None

    def start(self, shared: Shared) -> None:
        with shared.lock:
            shared.kick_events[self.nick] = self.kicked
        try:
            raw = Raw(shared.port, slow=True)
            data = Raw.frame(type="hello", id="h", nick=self.nick)
            for n in range(shared.config.rooms):
                data += Raw.frame(type="join", id=f"j{n}", room=f"room{n}")
            raw.send(data)
        except OSError as exc:
            self.end = f"could not connect: {exc}"
            return
        self.raw = raw
        if self.prompt:
            self.thread = threading.Thread(
                target=self._wait_and_read, args=(shared,), name=f"soak-{self.nick}", daemon=True
            )
            self.thread.start()

    def _wait_and_read(self, shared: Shared) -> None:
        while not self.kicked.wait(0.1):
            if shared.final.is_set():
                return  # read with the others at the end
        self.read()

    def read(self) -> None:
        with self.lock:
            if self.raw is None or self.end != "not connected":
                return
            self.last, self.end, self.received = self.raw.drain(15.0)
            self.raw.close()

    @property
    def got_error(self) -> bool:
        return (
            self.last is not None
            and self.last.get("type") == "error"
            and self.last.get("code") == "slow_consumer"
        )


class WireObserver:
    """A raw reader in every room, for one life of the server: what the server
    itself sends, with no library in between to drop duplicates."""

    def __init__(self, nick: str) -> None:
        self.nick = nick
        self.log: dict[str, array[int]] = {}
        self.end = "open"
        self._raw: Raw | None = None
        self._closing = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, shared: Shared) -> None:
        raw = Raw(shared.port)
        # One room at a time: twenty `joined` replies of 64 KiB asked for at once
        # would overflow a small send queue by themselves.
        raw.send(
            Raw.frame(type="hello", id="h", nick=self.nick)
            + Raw.frame(type="join", id="j0", room="room0")
        )
        self._raw = raw
        self._thread = threading.Thread(
            target=self._read, args=(shared,), name=f"soak-{self.nick}", daemon=True
        )
        self._thread.start()

    def _read(self, shared: Shared) -> None:
        raw = self._raw
        assert raw is not None
        buf = b""
        raw.sock.settimeout(0.2)
        while not self._closing.is_set():
            try:
                data = raw.sock.recv(1 << 20)
                if not data:
                    self.end = "closed by the server"
                    return
                *lines, buf = (buf + data).split(b"\n")
                for line in lines:
                    self._handle(shared, raw, json.loads(line))
            except TimeoutError:
                continue
            except OSError as exc:
                self.end = f"reset ({exc.strerror})"
                return

    def _handle(self, shared: Shared, raw: Raw, frame: dict[str, Any]) -> None:
        kind = frame.get("type")
        if kind == "message":
            self._room(frame["room"]).append(frame["id"])
        elif kind == "joined":
            log = self._room(frame["room"])
            log.append(-1 - len(frame["history"]))
            log.extend(m["id"] for m in frame["history"])
            n = int(frame["room"].removeprefix("room")) + 1
            if n < shared.config.rooms:
                raw.send(Raw.frame(type="join", id=f"j{n}", room=f"room{n}"))
        elif kind == "member_left":
            shared.saw_left(frame["nick"], frame["reason"])
        elif kind == "ping":  # the server's keepalive
            raw.send(Raw.frame(type="pong", token=frame.get("token")))

    def _room(self, room: str) -> array[int]:
        log = self.log.get(room)
        if log is None:
            log = self.log[room] = array("q")
        return log

    def last_seen(self, room: str) -> int:
        log = self.log.get(room)
        return max(log, default=0) if log else 0

    def close(self) -> None:
        self._closing.set()
        if self._thread is not None:
            self._thread.join(5)
        if self._raw is not None:
            self._raw.close()


def vanisher(shared: Shared, index: int) -> None:
    """Connects again and again and vanishes with a TCP reset, in one of four ways."""
    rng = random.Random(shared.seed * 7919 + index)
    rooms = shared.config.rooms
    n = 0
    while not shared.stop.is_set() and time.monotonic() < shared.deadline:
        if not shared.up.wait(0.2):
            continue
        n += 1
        nick = f"gone{index}x{n}"
        token = f"{nick}#1"
        mode = rng.randrange(4)
        hello = Raw.frame(type="hello", id="h", nick=nick)
        join = Raw.frame(type="join", id="j", room=f"room{rng.randrange(rooms)}")
        try:
            raw = Raw(shared.port)
        except OSError:
            shared.count("vanisher could not connect")
            shared.stop.wait(0.2)
            continue
        try:
            if mode == 0:  # say, wait for the echo, vanish
                raw.send(hello + join)
                joined = raw.until("j", 5.0)
                say = Raw.frame(type="say", id="s", room=joined["room"], text=token + " bye")
                raw.send(say)
                echo = raw.until("s", 5.0)
                if echo.get("type") == "message":
                    ack = Ack(token, echo["room"], echo["id"], echo["nick"])
                    shared.ack(ack)
                    shared.count("vanished after an acknowledged say")
                else:
                    shared.count(f"vanisher's say refused: {echo.get('code')}")
            elif mode == 1:  # say and vanish at once: stored or not, never acknowledged
                room = json.loads(join)["room"]
                raw.send(hello + join + Raw.frame(type="say", id="s", room=room, text=token))
                shared.count("vanished with a say in flight")
            elif mode == 2:  # in the middle of a frame
                raw.send(hello + join + b'{"type":"say","room":"room0","te')
                shared.count("vanished mid-frame")
            else:  # before hello
                shared.count("vanished before hello")
        except (OSError, TimeoutError, ValueError, KeyError):
            shared.count("vanisher broken off")
        finally:
            raw.reset()
        shared.stop.wait(rng.uniform(0.02, 0.2))


# -- checks ----------------------------------------------------------------------------------


def fetch_history(client: Client, room: str) -> list[RoomMessage]:
    """Every stored message of `room`, oldest first, paging with `after`."""
    messages: list[RoomMessage] = []
    # Ids start at 1, and `after` needs an id: fetch message 1 first, if it is this room's.
    first = client.history(room, before=2, limit=1)
    messages.extend(first.messages)
    after = 1
    for _ in range(1_000_000):
        page = client.history(room, after=after, limit=MAX_HISTORY_PAGE)
        messages.extend(page.messages)
        if not page.more or not page.messages:
            break
        after = page.messages[-1].id
    return messages


def check_log(
    log: array[int], stored: list[int], where: dict[int, int]
) -> tuple[list[str], list[int], int]:
    """Problems in one client's log of one room, the message ids it received, and
    how many of them were echoes that came after the client had left the room.

    While a member (from a `joined` until the answer to `part`), every message
    must be the next one of the stored history after the previous one (or after
    the last of the `joined` history). The echo of the client's own `say` is a
    reply, not a delivery: once the client has sent `part`, the server may carry
    it out before publishing messages whose echoes still come before the `ok`
    (replies keep the order of the commands). So after a `part` is sent, an echo
    may skip messages, published after the client left, and then only echoes
    may follow; outside membership, only echoes may come."""
    problems: list[str] = []
    received: list[int] = []
    late = 0
    prev: int | None = None  # position in `stored` of the last message seen; None: not a member
    leaving = False  # a `part` was sent and is not answered yet
    left = False  # ... and an echo showed that the server had carried it out
    i = 0
    while i < len(log):
        entry = log[i]
        i += 1
        if entry == PART:
            prev, leaving, left = None, False, False
        elif entry == PART_SENT:
            leaving = prev is not None
        elif entry < 0:
            k = -1 - entry
            ids = list(log[i : i + k])
            i += k
            positions = [where.get(m) for m in ids]
            leaving = left = False
            if None in positions:
                problems.append(f"joined history holds unstored ids {ids}")
                prev = None
                continue
            pos = [p for p in positions if p is not None]
            if pos and pos != list(range(pos[0], pos[0] + len(pos))):
                problems.append(f"joined history is not contiguous: {ids}")
            last = pos[-1] if pos else -1
            if prev is not None and last != prev:
                problems.append(f"joined again at {ids[-1:]} but had seen up to {stored[prev]}")
            prev = last
        else:
            echo = entry >= ECHO
            entry &= ~ECHO
            received.append(entry)
            here = where.get(entry)
            if here is None:
                problems.append(f"message {entry} is not in the stored history")
            elif prev is None or left:
                if echo:
                    late += 1
                else:
                    problems.append(f"message {entry} after leaving the room")
            elif here <= prev:
                problems.append(f"message {entry} again or out of order (after {stored[prev]})")
            elif here == prev + 1:
                prev = here
            elif echo and leaving:
                left = True
                late += 1
            else:
                problems.append(f"gap of {here - prev - 1} before message {entry}")
                prev = here
    return problems, received, late


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def _wait(condition: Callable[[], bool], within: float, step: float = 0.05) -> bool:
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() >= deadline:
            return False
        time.sleep(step)
    return True


# -- the run ---------------------------------------------------------------------------------


def run_soak(config: SoakConfig, out: Callable[[str], None] | None = None) -> SoakReport:
    """Run the soak; the server and every client are gone when this returns."""
    return Soak(config, out).run()


class Soak:
    """One run: the server, the actors, the timeline, and the checks at the end."""

    def __init__(self, config: SoakConfig, out: Callable[[str], None] | None) -> None:
        self.config = config
        seed = config.seed if config.seed is not None else random.randrange(1 << 30)
        self.shared = Shared(config, seed)
        self.out = out
        self.lines: list[str] = []
        self.rooms = [f"room{n}" for n in range(config.rooms)]
        self.members: list[Member] = []  # made once the server listens
        self.observers: list[Member] = []
        half = (config.slow + 1) // 2
        self.slow = [
            SlowConsumer(f"slow{n}", prompt=n % 2 == 0, phase=1 if n < half else 2)
            for n in range(config.slow)
        ]
        self.wires = [WireObserver("wire1"), WireObserver("wire2")]  # one per server life
        self.vanishers = [
            threading.Thread(
                target=vanisher, args=(self.shared, n), name=f"soak-gone{n}", daemon=True
            )
            for n in range(config.vanishers)
        ]
        self.server: ServerProcess | None = None
        self.first_base: Footprint | None = None
        self.base: Footprint | None = None
        self.started = 0.0
        self.window = (0.0, 0.0)  # the kill, until every client is back (+ SETTLE)

    def say(self, line: str) -> None:
        self.lines.append(line)
        if self.out is not None:
            self.out(line)

    def run(self) -> SoakReport:
        c = self.config
        self.say(
            f"adversarial soak: {c.seconds:g} s, {c.clients} library clients ({c.observers} "
            f"observers) in {c.rooms} rooms, {c.slow} never-reading sockets, {c.vanishers} "
            f"vanishing threads; seed {self.shared.seed}"
        )
        with tempfile.TemporaryDirectory(prefix="soak-") as tmp:
            server = ServerProcess(Path(tmp) / "soak.db", Path(tmp) / "server.log", c)
            self.server = server
            try:
                checks = self._drive(server)
            finally:
                self.shared.stop.set()
                for member in self.members:
                    member.client.close(0.5)
                for wire in self.wires:
                    wire.close()
                for consumer in self.slow:
                    if consumer.raw is not None:
                        consumer.raw.close()
                server.stop()
            log = server.log.read_text(errors="replace").splitlines()
        errors = [line for line in log if " ERROR " in line or "Traceback" in line]
        drops = sum("dropped as a slow consumer" in line for line in log)
        self.say(
            f"server log: {len(log)} lines, {drops} slow-consumer drops, {len(errors)} errors"
            + "".join(f"\n    {line}" for line in errors[:5])
        )
        checks.append(Check("5 the server logged no error", not errors, f"{len(errors)} errors"))
        for check in checks:
            self.say(f"{'PASS' if check.passed else 'FAIL'}  {check.name}: {check.detail}")
        self.say("soak: PASS" if all(ch.passed for ch in checks) else "soak: FAIL")
        return SoakReport(checks, self.lines)

    def _drive(self, server: ServerProcess) -> list[Check]:
        shared, c = self.shared, self.config
        server.start()
        shared.port = server.port
        self.first_base = footprint(server.pid)
        setup = time.monotonic()
        own = os.times()
        self.members = [Member(shared, n, n < c.observers) for n in range(c.clients)]
        shared.members = self.members
        self.observers = self.members[: c.observers]
        # Observers first: they are in every room before anyone speaks.
        for member in self.observers:
            member.thread.start()
        self.wires[0].start(shared)
        _wait(lambda: all(m.ready.is_set() for m in self.observers), 60)
        for member in self.members[c.observers :]:
            member.thread.start()
        _wait(lambda: all(m.ready.is_set() for m in self.members), 120)
        failed = [
            f"{m.key}: {m.failure or 'not ready'}"
            for m in self.members
            if not m.ready.is_set() or m.failure
        ]
        if failed:
            raise RuntimeError(f"clients failed to start: {failed[:3]}")
        self.started = started = time.monotonic()
        shared.deadline = started + c.seconds
        self.say(f"setup: {c.clients} clients connected and joined in {started - setup:.1f} s")
        shared.go.set()
        for thread in self.vanishers:
            thread.start()
        for consumer in self.slow:
            if consumer.phase == 1:
                consumer.start(shared)

        time.sleep(max(0.0, started + c.seconds / 2 - time.monotonic()))
        self._kill_and_restart(server)

        time.sleep(max(0.0, shared.deadline - time.monotonic()))
        ended = time.monotonic()
        shared.stop.set()
        for member in self.members:
            member.thread.join(REQUEST_TIMEOUT + 5)
        for thread in self.vanishers:
            thread.join(15)
        connected = _wait(lambda: all(m.client.connected for m in self.members), 60)
        # Second-phase slow consumers still over the soft limit are dropped by it soon.
        _wait(lambda: all(s.kicked.is_set() for s in self.slow if s.phase == 2), 10)
        history, caught_up = self._audit(server.port)
        audited = time.monotonic()
        checks = [self._check_acked(history), self._check_order(history, caught_up and connected)]
        for member in self.members:
            member.client.close()
        for wire in self.wires:
            wire.close()
        shared.final.set()
        readers = [threading.Thread(target=s.read, daemon=True) for s in self.slow]
        for thread in readers:
            thread.start()
        for thread in readers + [s.thread for s in self.slow if s.thread is not None]:
            thread.join(20)
        checks.append(self._check_slow())
        checks.append(self._check_footprint(server.pid))
        spent = os.times()
        load = spent.user + spent.system - own.user - own.system
        self.say(
            f"timing: setup {started - setup:.1f} s, run {ended - started:.1f} s, wind-down and "
            f"audit {audited - ended:.1f} s; CPU: servers {server.cpu_used + server.cpu():.1f} s, "
            f"this process (clients and checks) {load:.1f} s, on {os.cpu_count()} cores"
        )
        return checks

    def _kill_and_restart(self, server: ServerProcess) -> None:
        """SIGKILL midway, and the same file and port again; the clients come back alone."""
        shared = self.shared
        shared.up.clear()  # the vanishers pause
        first_pid = server.pid
        killed = time.monotonic()
        server.kill()
        server.start(server.port)
        back = time.monotonic()
        self.base = _baseline(server.pid)
        shared.up.set()
        attempts = f"{server.attempts} start attempt{'s' if server.attempts > 1 else ''}"
        self.say(
            f"server pid {first_pid} killed with SIGKILL at {killed - self.started:.1f} s; pid "
            f"{server.pid} listening again on port {server.port} {back - killed:.2f} s later "
            f"({attempts})"
        )
        self.wires[1].start(shared)
        everyone = _wait(lambda: all(m.client.connected for m in self.members), 60)
        recovered = time.monotonic()
        # Now that the observers are back to see them dropped.
        for consumer in self.slow:
            if consumer.phase == 2:
                consumer.start(shared)
        self.window = (killed, recovered + SETTLE)
        self.say(
            f"reconnection: {'all' if everyone else 'NOT all'} {len(self.members)} clients back "
            f"{recovered - killed:.1f} s after the kill"
        )

    def _audit(self, port: int) -> tuple[dict[str, list[RoomMessage]], bool]:
        """Wait for the observers to have every room's newest message; fetch all history."""
        audit = Client("auditor", host=HOST, port=port, timeout=REQUEST_TIMEOUT)
        try:
            audit.connect()
            newest = {
                r: max((m.id for m in audit.history(r, limit=1).messages), default=0)
                for r in self.rooms
            }
            readers: list[Member | WireObserver] = [*self.observers, self.wires[-1]]
            caught_up = _wait(
                lambda: all(o.last_seen(r) >= newest[r] for o in readers for r in self.rooms),
                30,
            )
            return {r: fetch_history(audit, r) for r in self.rooms}, caught_up
        finally:
            audit.close()

    # -- the checks --

    def _check_acked(self, history: dict[str, list[RoomMessage]]) -> Check:
        stored: dict[str, list[RoomMessage]] = {}
        total = 0
        for messages in history.values():
            for message in messages:
                stored.setdefault(message.text.split(" ", 1)[0], []).append(message)
                total += 1
        with self.shared.lock:
            acked = list(self.shared.acked)
            sent = self.shared.counts["say"]
        problems: list[str] = []
        tokens = set()
        for ack in acked:
            tokens.add(ack.token)
            found = stored.get(ack.token, [])
            if len(found) != 1:
                problems.append(f"{ack.token} (id {ack.id}) is stored {len(found)} times")
            elif (found[0].id, found[0].room, found[0].nick) != (ack.id, ack.room, ack.nick):
                problems.append(f"{ack.token}: acknowledged as {ack}, stored as {found[0]!r}")
        problems += [
            f"{t} (never acknowledged) is stored {len(found)} times"
            for t, found in stored.items()
            if len(found) > 1 and t not in tokens
        ]
        unacked = sum(1 for t in stored if t not in tokens)
        ids = [m.id for messages in history.values() for m in messages]
        if len(set(ids)) != len(ids):
            problems.append("a message id is stored twice")
        for room, messages in history.items():
            if any(a.id >= b.id for a, b in itertools.pairwise(messages)):
                problems.append(f"{room}: the history's ids do not increase")
        self.say(
            f"messages: {sent} says by library clients; {len(acked)} acknowledged (vanishers' "
            f"included); {total} stored in {len(history)} rooms, {unacked} of them without an "
            f"acknowledgement (the sender lost its connection first)"
        )
        return Check(
            "1 every acknowledged message is in its room's history exactly once",
            not problems and bool(acked),
            f"{len(acked)} acknowledged, {len(problems)} problems"
            + "".join(f"; {p}" for p in problems[:5]),
        )

    def _check_order(self, history: dict[str, list[RoomMessage]], complete: bool) -> Check:
        problems: list[str] = []
        compared = 0
        full = 0
        late = 0
        wired = 0
        for room, messages in history.items():
            stored = [m.id for m in messages]
            where = {m: n for n, m in enumerate(stored)}
            for member in self.members:
                log = member.log.get(room)
                if log is None:
                    continue
                found, received, after_part = check_log(log, stored, where)
                compared += len(received)
                late += after_part
                problems += [f"{member.key} in {room}: {p}" for p in found]
                if member.observer:
                    # From its first id onwards exactly the stored history, which it
                    # joined empty: all of it.
                    start = where.get(received[0], -1) if received else 0
                    if start != 0 or received != stored:
                        problems.append(
                            f"observer {member.key} in {room}: {len(received)} messages from "
                            f"position {start}; the room holds {len(stored)}"
                        )
                    else:
                        full += 1
            for n, wire in enumerate(self.wires):
                log = wire.log.get(room)
                found, received, _ = check_log(log or array("q"), stored, where)
                wired += len(received)
                problems += [f"{wire.nick} in {room}: {p}" for p in found]
                if not received or (n == len(self.wires) - 1 and received[-1] != stored[-1]):
                    problems.append(f"{wire.nick} in {room}: did not see the room up to its end")
        problems += [f"{m.key}: {m.failure}" for m in self.members if m.failure]
        if not complete:
            problems.append("not every client was connected and caught up at the end")
        self.say(
            f"ordering: {compared} received message ids of {len(self.members)} clients compared "
            f"with the stored history ({late} echoes after a part); {full} of "
            f"{len(self.observers) * len(history)} observer room logs are the whole history; "
            f"{wired} ids read raw off the wire by {len(self.wires)} observers without a library "
            f"(ends: {', '.join(w.end for w in self.wires)})"
        )
        return Check(
            "2 every reader saw each room in the stored order, without gaps or duplicates",
            not problems and compared > 0,
            f"{compared} ids, {len(problems)} problems" + "".join(f"; {p}" for p in problems[:5]),
        )

    def _check_slow(self) -> Check:
        shared, c = self.shared, self.config
        with shared.lock:
            kicked = dict(shared.kicked)
            latencies = list(shared.latencies)
            counts = Counter(shared.counts)
            lost = len(shared.lost_nicks)
        dropped = [s for s in self.slow if s.nick in kicked]
        with_error = sum(s.got_error for s in dropped)
        by_kill = [s for s in self.slow if s.phase == 1 and s.nick not in kicked]
        problems = [
            f"{s.nick} (after the restart) was not dropped"
            for s in self.slow
            if s.phase == 2 and s not in dropped
        ]
        problems += [
            f"{s.nick} was still connected at the end ({s.end})"
            for s in self.slow
            if s.end not in ("eof", "reset")
        ]
        healthy = sorted(n for n in kicked if not n.startswith(("slow", "gone")))
        if healthy or any(m.slow_drops for m in self.members):
            problems.append(f"healthy clients dropped as slow consumers: {healthy[:5]}")
        low, high = self.window
        outside = [s for t, s, _ in latencies if not low <= t <= high]
        inside = [s for t, s, _ in latencies if low <= t <= high]
        stamped = [max(0.0, v) for t, _, v in latencies if not low <= t <= high]
        p50, p99 = _percentile(outside, 0.50), _percentile(outside, 0.99)
        if not outside:
            problems.append("no latency measured")
        elif p99 >= c.latency_bound:
            problems.append(f"p99 latency {_ms(p99)} is not below {c.latency_bound:g} s")
        requests = [f"{k} {v}" for k, v in sorted(counts.items()) if not k.startswith("van")]
        vanished = [
            f"{k.removeprefix('vanished ')} {v}"
            for k, v in sorted(counts.items())
            if k.startswith("van")
        ]
        self.say("requests: " + ", ".join(requests))
        self.say("vanishers: " + ", ".join(vanished) + f"; observers saw {lost} leave as lost")
        self.say(
            f"library clients: {sum(m.disconnects for m in self.members)} disconnections, "
            f"{sum(m.reconnects for m in self.members)} reconnections, "
            f"{sum(m.renames for m in self.members)} renames, "
            f"{sum(m.dms_received for m in self.members)} dms received"
        )
        ends = ", ".join(f"{k} {v}" for k, v in sorted(Counter(s.end for s in self.slow).items()))
        self.say(
            f"slow consumers: {len(self.slow)} never-reading sockets; {len(dropped)} dropped as "
            f"slow consumers ({with_error} read the slow_consumer error frame last, "
            f"{len(dropped) - with_error} were disconnected without it); {len(by_kill)} of the "
            f"first half ended by the kill before being dropped; stream ends: {ends}; healthy "
            f"clients dropped: {len(healthy)}"
        )
        self.say(
            f"latency say->echo of healthy clients outside the restart window "
            f"({low - self.started:.1f}-{high - self.started:.1f} s): n={len(outside)}, "
            f"p50 {_ms(p50)}, p99 {_ms(p99)}, max {_ms(max(outside, default=0.0))} (until the "
            f"server's timestamp: p50 {_ms(_percentile(stamped, 0.5))}, p99 "
            f"{_ms(_percentile(stamped, 0.99))}); inside it: n={len(inside)}, p99 "
            f"{_ms(_percentile(inside, 0.99))}, max {_ms(max(inside, default=0.0))}"
        )
        return Check(
            f"3 slow consumers dropped, nobody else slowed (p99 < {c.latency_bound:g} s)",
            not problems,
            f"{len(dropped)}/{len(self.slow)} dropped ({with_error} with the error frame), "
            f"p99 {_ms(p99)}" + "".join(f"; {p}" for p in problems[:5]),
        )

    def _check_footprint(self, pid: int) -> Check:
        base = self.base
        assert base is not None
        waited = time.monotonic()
        now = footprint(pid)

        def settled() -> bool:
            nonlocal now
            now = footprint(pid)
            return (now.threads, now.fds, now.connections) == (base.threads, base.fds, 0)

        back = _wait(settled, 30, 0.1)
        extra = sorted(set(now.targets) - set(base.targets))
        self.say(
            f"server footprint: first server at its start {self.first_base}; restarted server "
            f"right after its start {base}; once every client closed {now} (after "
            f"{time.monotonic() - waited:.1f} s)"
            + (f"; descriptors not in the baseline: {extra[:5]}" if extra else "")
        )
        return Check(
            "4 the server's threads and descriptors are back at their baseline",
            back,
            f"baseline {base}, end {now}",
        )


def _baseline(pid: int) -> Footprint:
    """The footprint of a server with no client, measured right after its start.

    Clients reconnect by themselves and may be in already: each holds a socket
    and a reader thread, which are not counted (read until two readings agree)."""
    previous: Footprint | None = None
    for _ in range(50):
        now = footprint(pid)
        clean = Footprint(
            now.threads - now.connections, now.fds - now.connections, now.connections, now.targets
        )
        if previous is not None and (clean.threads, clean.fds) == (previous.threads, previous.fds):
            return clean
        previous = clean
        time.sleep(0.005)
    assert previous is not None
    return previous


def parse_args(argv: list[str] | None = None) -> SoakConfig:
    d = SoakConfig()
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--seconds", type=float, default=d.seconds, help="run time (%(default)s)")
    p.add_argument("--clients", type=int, default=d.clients, help="library clients")
    p.add_argument("--observers", type=int, default=d.observers, help="of them, in every room")
    p.add_argument("--rooms", type=int, default=d.rooms)
    p.add_argument("--slow", type=int, default=d.slow, help="never-reading sockets")
    p.add_argument("--vanishers", type=int, default=d.vanishers, help="threads that reset")
    p.add_argument("--interval", type=float, default=d.interval, help="mean s between actions")
    p.add_argument("--max-text", type=int, default=d.max_text, help="longest say, characters")
    p.add_argument("--latency-bound", type=float, default=d.latency_bound, help="p99, seconds")
    p.add_argument("--seed", type=int, default=None)
    a = p.parse_args(argv)
    return SoakConfig(
        seconds=a.seconds,
        clients=a.clients,
        observers=a.observers,
        rooms=a.rooms,
        slow=a.slow,
        vanishers=a.vanishers,
        interval=a.interval,
        max_text=a.max_text,
        latency_bound=a.latency_bound,
        seed=a.seed,
    )


def main(argv: list[str] | None = None) -> int:
    report = run_soak(parse_args(argv), out=lambda line: print(line, flush=True))
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
