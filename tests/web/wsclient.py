"""A WebSocket test client on a plain socket, driven by wsproto's client side:
what a browser sends, byte for byte where a test needs it, and what it gets."""

from __future__ import annotations

import json
import socket
import ssl
import time
from typing import Any

from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Event,
    Message,
    Ping,
    Pong,
    RejectConnection,
    RejectData,
    Request,
    TextMessage,
)

from tests.support import WAIT, FrameReader


class Refused(Exception):
    """The server answered the upgrade with an HTTP status instead of 101."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


class WsClient(FrameReader):
    """One WebSocket; `frames` are decoded text messages, `close_code` the server's close."""

    def __init__(
        self,
        address: tuple[str, int],
        *,
        origin: str | None = None,
        headers: list[tuple[str, str]] | None = None,
        extensions: list[str] | None = None,
        tls: ssl.SSLContext | None = None,
        target: str = "/ws",
        rcvbuf: int | None = None,
    ) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.settimeout(WAIT)
        sock.connect(address)
        self.sock: socket.socket = (
            tls.wrap_socket(sock, server_hostname="localhost") if tls is not None else sock
        )
        self.ws = WSConnection(ConnectionType.CLIENT)
        self.close_code: int | None = None
        self.close_reason: str | None = None
        self.pongs: list[bytes] = []
        self._texts: list[str] = []
        self._partial: list[str] = []
        self._ids = 0
        extra = [(k.encode(), v.encode()) for k, v in headers or []]
        if origin is not None:
            extra.append((b"Origin", origin.encode()))
        if extensions:
            extra.append((b"Sec-WebSocket-Extensions", ", ".join(extensions).encode()))
        host = f"{address[0]}:{address[1]}"
        self.sock.sendall(self.ws.send(Request(host=host, target=target, extra_headers=extra)))
        self.accept: AcceptConnection | None = None
        for event in self._events():
            if isinstance(event, AcceptConnection):
                self.accept = event
                break
            if isinstance(event, RejectConnection):
                raise Refused(event.status_code)

    def _events(self, timeout: float = WAIT) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            got = False
            for event in self.ws.events():
                got = True
                yield event
            if got:
                continue
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("nothing from the server in time")
            self.sock.settimeout(remaining)
            try:
                data = self.sock.recv(65536)
            except ConnectionResetError:
                data = b""
            self.ws.receive_data(data or None)
            if not data:
                for event in self.ws.events():
                    yield event
                return

    def send_text(self, text: str) -> None:
        self.sock.sendall(self.ws.send(TextMessage(data=text)))

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def send(self, event: Event) -> None:
        self.sock.sendall(self.ws.send(event))

    def send_frame(self, **frame: Any) -> None:
        self.send_text(json.dumps(frame))

    def request(self, **frame: Any) -> dict[str, Any]:
        self._ids += 1
        rid = f"q{self._ids}"
        self.send_frame(id=rid, **frame)
        return self.until(lambda f: f.get("ref") == rid)

    def hello(self, nick: str, **extra: Any) -> dict[str, Any]:
        return self.request(type="hello", nick=nick, **extra)

    def recv_text(self, timeout: float = WAIT) -> str | None:
        """The next whole text message, or None once the server has closed."""
        if self._texts:
            return self._texts.pop(0)
        for event in self._events(timeout):
            self._handle(event)
            if self._texts:
                return self._texts.pop(0)
            if self.close_code is not None:
                return None
        return None

    def _handle(self, event: Event) -> None:
        if isinstance(event, TextMessage):
            self._partial.append(event.data)
            if event.message_finished:
                self._texts.append("".join(self._partial))
                self._partial = []
        elif isinstance(event, BytesMessage | Message | RejectData):
            raise AssertionError(f"unexpected {event!r}")
        elif isinstance(event, Pong):
            self.pongs.append(bytes(event.payload))
        elif isinstance(event, Ping):
            self.send(event.response())
        elif isinstance(event, CloseConnection) and self.close_code is None:
            self.close_code = event.code
            self.close_reason = event.reason
            if self.ws.state.name == "REMOTE_CLOSING":
                self.sock.sendall(self.ws.send(event.response()))

    def recv(self, timeout: float = WAIT) -> dict[str, Any] | None:
        text = self.recv_text(timeout)
        if text is None:
            return None
        frame: dict[str, Any] = json.loads(text)
        return frame

    def _closed_note(self) -> str:
        return f"closed ({self.close_code})"

    def wait_pong(self, timeout: float = WAIT) -> bytes:
        if self.pongs:
            return self.pongs.pop(0)
        for event in self._events(timeout):
            self._handle(event)
            if self.pongs:
                return self.pongs.pop(0)
        raise ConnectionError("closed before a pong")

    def close(self) -> None:
        self.sock.close()


def http_get(
    address: tuple[str, int], target: str, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    """One raw GET request (the target sent as given, unnormalised): status, headers, body."""
    lines = [f"GET {target} HTTP/1.1", f"Host: {address[0]}:{address[1]}", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    with socket.create_connection(address, timeout=WAIT) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    parsed = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        parsed[name.strip().lower()] = value.strip()
    return int(status_line.split()[1]), parsed, body
