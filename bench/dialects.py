"""How the load generator speaks to each server: login, send, and the cheap
byte patterns that count deliveries and acknowledgements without parsing."""

from __future__ import annotations

import json
from dataclasses import dataclass

__all__ = ["CHAT", "IRC", "Counter", "Dialect"]

_PAD = "x" * 40


class Counter:
    """Counts a byte pattern in a stream that arrives in arbitrary chunks.

    `bytes.count` on each chunk alone misses a pattern split across two
    chunks; over millions of reads that loses a few acknowledgements, and a
    sender whose window waits for them stalls. The last `len(pattern) - 1`
    bytes of the stream are kept to count the matches that span a boundary,
    without copying the chunk.
    """

    __slots__ = ("keep", "pattern", "tail")

    def __init__(self, pattern: bytes) -> None:
        self.pattern = pattern
        self.keep = len(pattern) - 1
        self.tail = b""

    def count(self, data: bytes) -> int:
        keep = self.keep
        found = data.count(self.pattern)
        if self.tail:
            # Only a match that starts in the tail and ends in `data` fits here.
            found += (self.tail + data[:keep]).count(self.pattern)
        if len(data) >= keep:
            self.tail = data[len(data) - keep :]
        else:
            self.tail = (self.tail + data)[-keep:]
        return found


@dataclass(frozen=True)
class Dialect:
    name: str
    welcome: bytes  # appears once the server has registered the client
    ready: bytes  # appears once the client has joined its room
    delivery: bytes  # once per room message received
    ack: bytes  # once per acknowledgement of a sender's message
    echoes: bool  # the acknowledgement is the sender's own copy of its message
    dropped: bytes  # in the last line a server sends to a client it drops as too slow
    logs_drop: str  # in the line the server logs when it drops a client as too slow
    # Connections at once in the connect phase (from connect until `welcome`).
    connect_batch: int

    def login(self, nick: str, room: str) -> bytes:
        """What a client sends first."""
        raise NotImplementedError

    def join(self, room: str) -> bytes:
        """What a client sends once `welcome` arrived (empty: `login` joined already)."""
        return b""

    def say(self, room: str, index: int, n: int, stamp: int) -> bytes:
        raise NotImplementedError

    def text_of(self, line: bytes) -> str | None:
        """The text of a room message line, for probes; None for other lines."""
        raise NotImplementedError

    def answer(self, data: bytes) -> bytes:
        """What to send back for keepalives found in `data`."""
        return b""


class _Chat(Dialect):
    def login(self, nick: str, room: str) -> bytes:
        # The protocol lets a client send `join` right behind `hello`.
        return b'{"type":"hello","id":0,"nick":"%s"}\n{"type":"join","id":1,"room":"%s"}\n' % (
            nick.encode(),
            room.encode(),
        )

    def say(self, room: str, index: int, n: int, stamp: int) -> bytes:
        return b'{"type":"say","id":%d,"room":"%s","text":"%d %d %d %s"}\n' % (
            n,
            room.encode(),
            index,
            n,
            stamp,
            _PAD.encode(),
        )

    def text_of(self, line: bytes) -> str | None:
        if b'"type":"message"' not in line:
            return None
        text: str = json.loads(line)["text"]
        return text

    def answer(self, data: bytes) -> bytes:
        if b'"type":"ping"' not in data:
            return b""
        out = b""
        for line in data.split(b"\n"):
            if b'"type":"ping"' in line:
                token = json.loads(line).get("token")
                out += json.dumps({"type": "pong", "token": token}).encode() + b"\n"
        return out


class _Irc(Dialect):
    def login(self, nick: str, room: str) -> bytes:
        return b"NICK %s\r\nUSER %s 0 * :%s\r\n" % (nick.encode(), nick.encode(), nick.encode())

    def join(self, room: str) -> bytes:
        return b"JOIN #%s\r\n" % room.encode()

    def say(self, room: str, index: int, n: int, stamp: int) -> bytes:
        # IRC does not echo a PRIVMSG to its sender; the PONG to a PING sent
        # right behind it is the acknowledgement (commands are handled in order).
        return b"PRIVMSG #%s :%d %d %d %s\r\nPING :a\r\n" % (
            room.encode(),
            index,
            n,
            stamp,
            _PAD.encode(),
        )

    def text_of(self, line: bytes) -> str | None:
        if b" PRIVMSG " not in line:
            return None
        return line.split(b" :", 1)[1].rstrip(b"\r").decode()

    def answer(self, data: bytes) -> bytes:
        if not data.startswith(b"PING") and b"\nPING" not in data:
            return b""
        out = b""
        for line in data.split(b"\n"):
            if line.startswith(b"PING"):
                out += b"PONG" + line[4:].rstrip(b"\r") + b"\r\n"
        return out


CHAT: Dialect = _Chat(
    name="threadchat",
    welcome=b'"type":"welcome"',
    ready=b'"type":"joined"',
    delivery=b'"type":"message"',
    ack=b'{"ref":',
    echoes=True,
    dropped=b'"slow_consumer"',
    logs_drop="dropped as a slow consumer",
    connect_batch=100,
)
# ngircd listens with a backlog of 10 (listen(sock, 10) in conn.c, not
# configurable) and accepts one connection per pass of its main loop: more
# handshakes at once than that overflow the accept queue, Linux drops the SYN
# or the handshake's last ACK, and it is retried only after a timeout of 1 s,
# then 2, 4, 8... s. Eight at a time keep the queue from overflowing.
IRC: Dialect = _Irc(
    name="ngircd",
    welcome=b" 001 ",
    ready=b" 366 ",
    delivery=b" PRIVMSG ",
    ack=b" PONG ",
    echoes=False,
    dropped=b"ERROR :",
    logs_drop="Write buffer space exhausted (",
    connect_batch=8,
)
