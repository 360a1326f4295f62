"""A raw-socket client for the conformance suite, and the harness around it.

`Wire` speaks PROTOCOL.md on a bare TCP socket. Frames go out in one of three
ways, chosen per test by the `mode` fixture: whole (one `sendall` per frame),
in random chunks (a seeded random picks the split points, which may fall
anywhere, also across frame boundaries) or byte by byte. Frames coming in are
checked against the specification as they arrive, whatever the test is about:
each is at most `max_frame` bytes, a JSON object with a string `type`, valid
as the event it names (via `chatproto.parse_event`); events that are never
replies carry no `ref`; every `ref` answers an id this client sent; nothing
but a fatal `error` comes before `welcome`; and nothing follows a fatal
`error`. Events of types this version does not know are skipped, as a client
must.

Waiting is always on the socket, with a deadline: a frame that does not come
in time fails the test with what was expected and what arrived instead.
"""

from __future__ import annotations

import contextlib
import json
import random
import re
import socket
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import count
from typing import Any, Literal

import pytest

from chatproto import DEFAULT_MAX_FRAME, EVENT_TYPES, ProtocolError, parse_event

__all__ = [
    "MODES",
    "WAIT",
    "Clients",
    "Frame",
    "Mode",
    "Target",
    "Wire",
    "encode_frame",
    "unique_nick",
    "unique_room",
]

Frame = dict[str, Any]
RequestId = str | int
Mode = Literal["whole", "chunks", "bytes"]
MODES: tuple[Mode, ...] = ("whole", "chunks", "bytes")

#: How long to wait for a frame that must come.
WAIT = 5.0

# Events that are never replies, so never carry `ref` (section 4).
_NEVER_REF = frozenset({"member_joined", "member_left", "ping"})

# The success reply of each command (section 6).
REPLY_TYPE = {
    "hello": "welcome",
    "join": "joined",
    "part": "ok",
    "say": "message",
    "dm": "dm",
    "nick": "renamed",
    "rooms": "rooms",
    "members": "members",
    "topic": "topic",
    "history": "history",
    "ping": "pong",
    "bye": "ok",
}

# Names unique to this run, so that tests never meet on a shared server.
_RUN = uuid.uuid4().hex[:6]
_serial = count(1)


def unique_nick(tag: str = "n") -> str:
    """A nick no other test (or run) uses: `tag` must start with a letter."""
    return f"{tag}{_RUN}{next(_serial)}"[:24]


def unique_room(tag: str = "r") -> str:
    """A room name no other test (or run) uses: `tag` must be lower-case."""
    return f"{tag}{_RUN}{next(_serial)}"[:32]


def encode_frame(frame: Frame) -> bytes:
    """Compact JSON in UTF-8, then LF: a frame as PROTOCOL.md section 2 has it."""
    return json.dumps(frame, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


def _key(value: Any) -> tuple[str, Any] | None:
    # Request ids are strings or integers; 1 and "1" are different ids.
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    return (type(value).__name__, value)


def same_id(ref: Any, rid: RequestId) -> bool:
    """Whether `ref` is exactly the request id `rid`, type included."""
    return _key(ref) is not None and _key(ref) == _key(rid)


_ID = re.compile(rb'"id":"([A-Za-z0-9_-]{1,64})"')


class _Timeout(Exception):
    pass


class Wire:
    """One client connection, driven frame by frame from a test."""

    def __init__(
        self,
        address: tuple[str, int],
        mode: Mode,
        rng: random.Random,
        *,
        rcvbuf: int | None = None,
        maxseg: int | None = None,
    ) -> None:
        self.mode = mode
        self._rng = rng
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        # Buffer sizes and the segment size must be set before connecting.
        if rcvbuf is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        if maxseg is not None and hasattr(socket, "TCP_MAXSEG"):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, maxseg)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.settimeout(WAIT)
        try:
            sock.connect(address)
        except OSError:
            sock.close()
            raise
        self.sock = sock
        self._nick: str | None = None
        self.limits: dict[str, Any] = {}
        self.max_frame = DEFAULT_MAX_FRAME
        self.welcomed = False
        self.write_failed = False
        self._buf = bytearray()
        self._eof = False
        self._fatal: Frame | None = None
        self._inbox: list[Frame] = []
        self._outstanding: Counter[tuple[str, Any]] = Counter()
        self._ids = count(1)

    @property
    def nick(self) -> str:
        """The nick the server has given this client."""
        assert self._nick is not None, "this client has not been welcomed"
        return self._nick

    # -- sending -----------------------------------------------------------

    def _pieces(self, data: bytes) -> list[bytes]:
        if self.mode == "bytes":
            return [data[i : i + 1] for i in range(len(data))]
        if self.mode == "chunks" and len(data) > 1:
            k = self._rng.randint(1, min(len(data) - 1, 12))
            cuts = sorted(self._rng.sample(range(1, len(data)), k))
            return [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]
        return [data]

    def _sendall(self, pieces: list[bytes]) -> bool:
        if self.write_failed:
            return False
        try:
            for piece in pieces:
                self.sock.sendall(piece)
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError):
            # The server closed the connection; what it said is still readable.
            self.write_failed = True
            return False
        return True

    def _note_ids(self, data: bytes) -> None:
        # Remember the ids sent, so that every `ref` can be checked to answer one.
        for line in data.split(b"\n"):
            try:
                obj = json.loads(line)
            except (ValueError, RecursionError):
                # Too deep or broken for us: a server may still read its id.
                found = _ID.search(line)
                if found is not None:
                    self._outstanding[("str", found[1].decode())] += 1
                continue
            if isinstance(obj, dict) and obj.get("type") != "pong":
                key = _key(obj.get("id"))
                if key is not None:
                    self._outstanding[key] += 1

    def write(self, data: bytes) -> bool:
        """Send raw bytes, split as the mode says; False if the server had closed."""
        self._note_ids(data)
        return self._sendall(self._pieces(data))

    def send(self, *frames: Frame | bytes) -> bool:
        """Send frames back to back (pipelined). Dicts are encoded; bytes go as they are."""
        data = [f if isinstance(f, bytes) else encode_frame(f) for f in frames]
        if self.mode == "whole":
            for piece in data:
                self._note_ids(piece)
            return self._sendall(data)
        return self.write(b"".join(data))

    def send_whole(self, *frames: Frame | bytes) -> bool:
        """Send each frame with one `sendall`, whatever the mode: for bulk traffic."""
        data = [f if isinstance(f, bytes) else encode_frame(f) for f in frames]
        for piece in data:
            self._note_ids(piece)
        return self._sendall(data)

    def send_pair(self, first: Frame, second: Frame) -> bool:
        """Send two frames so that the server cannot answer the first before it
        has the second: `first` goes out as the mode says except for its line
        end, which goes together with all of `second` in one `sendall`."""
        a, b = encode_frame(first), encode_frame(second)
        self._note_ids(a + b)
        return self._sendall([*self._pieces(a[:-1]), a[-1:] + b])

    # -- receiving ---------------------------------------------------------

    def _check(self, line: bytes) -> Frame | None:
        """Validate one frame from the server; None for an event type to skip."""
        if line.endswith(b"\r"):
            line = line[:-1]
        text = line.decode("utf-8", "replace")
        if len(line) > self.max_frame:
            pytest.fail(f"server sent a frame of {len(line)} bytes, over max_frame")
        if self._fatal is not None:
            pytest.fail(f"server sent {text[:300]} after the fatal error {self._fatal}")
        try:
            frame = json.loads(line)
        except ValueError:
            pytest.fail(f"server sent a frame that is not JSON: {text[:300]!r}")
        if not isinstance(frame, dict) or not isinstance(frame.get("type"), str):
            pytest.fail(f"server sent a frame that is not an object with a type: {text[:300]}")
        kind = frame["type"]
        if kind not in EVENT_TYPES:
            return None  # a newer minor version's event: ignored, as a client must
        try:
            parse_event(line)
        except ProtocolError as exc:
            pytest.fail(f"server sent an invalid {kind!r}: {exc.message}\n{text[:500]}")
        if kind in _NEVER_REF and "ref" in frame:
            pytest.fail(f"server sent {kind!r} with a ref: {text[:300]}")
        if "ref" in frame:
            key = _key(frame["ref"])
            if key is None or self._outstanding[key] <= 0:
                pytest.fail(f"server sent a ref that answers no request: {text[:300]}")
            self._outstanding[key] -= 1
        if kind == "welcome":
            if self.welcomed:
                pytest.fail(f"server sent a second welcome: {text[:300]}")
            self.welcomed = True
            self.limits = frame["limits"]
            self.max_frame = frame["limits"]["max_frame"]
        elif not self.welcomed and not (kind == "error" and frame.get("fatal") is True):
            pytest.fail(f"server sent {text[:300]} before welcome (only a fatal error may)")
        if kind == "error" and frame.get("fatal") is True:
            self._fatal = frame
        return frame

    def _read(self, deadline: float) -> Frame | None:
        """The next frame from the socket; None at the end of the stream."""
        while True:
            end = self._buf.find(b"\n")
            if end >= 0:
                line = bytes(self._buf[:end])
                del self._buf[: end + 1]
                frame = self._check(line)
                if frame is not None:
                    return frame
                continue
            if len(self._buf) > self.max_frame + 1:
                pytest.fail(f"server sent more than max_frame ({self.max_frame}) bytes in a frame")
            if self._eof:
                if self._buf:
                    pytest.fail(f"stream ended inside a frame: {bytes(self._buf[:200])!r}")
                return None
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise _Timeout
            self.sock.settimeout(remaining)
            try:
                data = self.sock.recv(1 << 16)
            except TimeoutError:
                raise _Timeout from None
            except (ConnectionResetError, ConnectionAbortedError):
                data = b""
            if not data:
                self._eof = True
            self._buf += data

    def _frames(self, what: str, timeout: float) -> Iterator[Frame]:
        """Frames in order: first those set aside earlier, then new ones."""
        deadline = time.monotonic() + timeout
        seen: list[Frame] = []
        index = 0
        while True:
            if index < len(self._inbox):
                frame = self._inbox[index]
                index += 1
            else:
                try:
                    got = self._read(deadline)
                except _Timeout:
                    pytest.fail(f"no {what} within {timeout:g} s; got {seen[-10:]}")
                if got is None:
                    pytest.fail(f"connection closed while waiting for {what}; got {seen[-10:]}")
                frame = got
                self._inbox.append(frame)
                index = len(self._inbox)
            seen.append(frame)
            yield frame

    def wait(self, match: Callable[[Frame], bool], what: str, timeout: float = WAIT) -> Frame:
        """The first frame, set aside or new, that `match`es; others stay set aside."""
        for frame in self._frames(what, timeout):
            if match(frame):
                self._inbox.remove(frame)
                return frame
        raise AssertionError("unreachable")

    def next(self, what: str = "a frame", timeout: float = WAIT) -> Frame:
        """The next frame, set aside or new."""
        return self.wait(lambda f: True, what, timeout)

    def wait_type(self, kind: str, timeout: float = WAIT, **fields: Any) -> Frame:
        """The first frame of type `kind` whose fields include `fields`."""

        def match(f: Frame) -> bool:
            return f["type"] == kind and all(f.get(k) == v for k, v in fields.items())

        return self.wait(match, f"{kind!r} with {fields}", timeout)

    def reply(self, rid: RequestId, timeout: float = WAIT) -> Frame:
        """The frame that answers the request with id `rid`."""
        return self.wait(lambda f: same_id(f.get("ref"), rid), f"the reply to id {rid!r}", timeout)

    def pending(self) -> list[Frame]:
        """Take the frames set aside so far."""
        frames, self._inbox = self._inbox, []
        return frames

    def until_closed(self, timeout: float = WAIT) -> list[Frame]:
        """Every frame up to the end of the stream, which must come within `timeout`."""
        frames = self.pending()
        deadline = time.monotonic() + timeout
        while True:
            try:
                frame = self._read(deadline)
            except _Timeout:
                pytest.fail(f"connection not closed within {timeout:g} s; got {frames[-10:]}")
            if frame is None:
                return frames
            frames.append(frame)

    def fatal(self, code: str, timeout: float = WAIT) -> Frame:
        """Read to the end of the stream, which must end with a fatal `code` error."""
        frames = self.until_closed(timeout)
        assert frames, f"connection closed without the fatal {code!r} error"
        last = frames[-1]
        assert last["type"] == "error", f"expected a fatal {code!r} error, got {last}"
        assert (last["code"], last["fatal"]) == (code, True), last
        return last

    def closed_quietly(self, timeout: float = WAIT) -> None:
        """The server ends the stream without sending anything more."""
        assert self.until_closed(timeout) == []

    def barrier(self) -> list[Frame]:
        """Ping and wait for the pong; return the frames that came before it.

        The server handles a client's commands in order and queues each
        connection's frames in order, so anything it queued for this client
        before handling the ping arrives before the pong."""
        rid = self.new_id()
        self.send({"type": "ping", "id": rid})
        pong = self.reply(rid)
        assert pong["type"] == "pong", pong
        return self.pending()

    # -- commands ------------------------------------------------------------

    def need(self, commands: int) -> None:
        """Skip the test unless the rate limit lets this client send `commands` at once."""
        burst = self.limits["burst"]
        if burst < commands + 1:
            pytest.skip(f"needs {commands} commands at once; the server's burst is {burst}")

    def new_id(self) -> RequestId:
        """A fresh request id; integers and strings alternate, to use both kinds."""
        n = next(self._ids)
        return n if n % 2 else f"q{n}"

    def request(self, frame: Frame, *, expect: str | None = None) -> Frame:
        """Send a command with an id (a fresh one unless given) and return its reply.

        The reply must be of type `expect` (by default the command's success
        reply; pass "error" to expect an error)."""
        if "id" not in frame:
            frame = {**frame, "id": self.new_id()}
        self.send(frame)
        reply = self.reply(frame["id"])
        wanted = expect or REPLY_TYPE[frame["type"]]
        assert reply["type"] == wanted, f"{frame} was answered by {reply}, not by {wanted!r}"
        if reply["type"] == "renamed":
            self._nick = reply["new"]
        return reply

    def refused(self, frame: Frame, code: str) -> Frame:
        """Send a command that must fail with the non-fatal error `code`."""
        error = self.request(frame, expect="error")
        assert (error["code"], error["fatal"]) == (code, False), f"{frame}: {error}"
        assert isinstance(error["message"], str)
        return error

    def hello(self, nick: str, **extra: Any) -> Frame:
        welcome = self.request({"type": "hello", "nick": nick, "version": "1.0", **extra})
        self._nick = welcome["nick"]
        return welcome

    def join(self, room: str) -> Frame:
        return self.request({"type": "join", "room": room})

    def say(self, room: str, text: str) -> Frame:
        """Say `text` in `room` and return the echo."""
        echo = self.request({"type": "say", "room": room, "text": text})
        assert (echo["room"], echo["nick"], echo["text"]) == (room, self.nick, text), echo
        return echo

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()


@dataclass(frozen=True, slots=True)
class Target:
    """A server under test: where it listens, and whether this suite started it."""

    address: tuple[str, int]
    external: bool


class Clients:
    """Opens connections for one test, all sending in the test's mode; closes them after."""

    def __init__(self, target: Target, mode: Mode, rng: random.Random) -> None:
        self.target = target
        self.mode = mode
        self.rng = rng
        self._open: list[Wire] = []

    def connect(
        self,
        target: Target | None = None,
        *,
        rcvbuf: int | None = None,
        maxseg: int | None = None,
    ) -> Wire:
        wire = Wire(
            (target or self.target).address,
            self.mode,
            random.Random(self.rng.random()),
            rcvbuf=rcvbuf,
            maxseg=maxseg,
        )
        self._open.append(wire)
        return wire

    def login(
        self,
        *rooms: str,
        target: Target | None = None,
        nick: str | None = None,
        rcvbuf: int | None = None,
        maxseg: int | None = None,
    ) -> Wire:
        """A welcomed client, member of `rooms`."""
        wire = self.connect(target, rcvbuf=rcvbuf, maxseg=maxseg)
        wire.hello(nick or unique_nick())
        for room in rooms:
            wire.join(room)
        return wire

    def close(self) -> None:
        for wire in self._open:
            wire.close()
        self._open.clear()
