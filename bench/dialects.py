"""How the load generator speaks to each server: login, send, and the cheap
byte patterns that count deliveries and acknowledgements without parsing."""

from __future__ import annotations

import json
from dataclasses import dataclass

__all__ = ["CHAT", "IRC", "Dialect"]

_PAD = "x" * 40


@dataclass(frozen=True)
class Dialect:
    name: str
    ready: bytes  # appears once the client has joined its room
    delivery: bytes  # once per room message received
    ack: bytes  # once per acknowledgement of a sender's message
    echoes: bool  # the acknowledgement is the sender's own copy of its message

    def login(self, nick: str, room: str) -> bytes:
        raise NotImplementedError

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
        return b"NICK %s\r\nUSER %s 0 * :%s\r\nJOIN #%s\r\n" % (
            nick.encode(),
            nick.encode(),
            nick.encode(),
            room.encode(),
        )

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


CHAT: Dialect = _Chat("threadchat", b'"type":"joined"', b'"type":"message"', b'{"ref":', True)
IRC: Dialect = _Irc("ngircd", b" 366 ", b" PRIVMSG ", b" PONG ", False)
