"""The little HTTP the chat port speaks: request heads in, static files out.

A browser's connection starts with `GET `. This module reads its request
heads with h11 and answers them: the web client's files, which are read once
from the package's own `static` directory and served only by their exact
names (so no path, encoded or not, can reach another file), or an error. A
request that asks for a WebSocket is handed back to the caller untouched, to
be upgraded. No I/O happens here.
"""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass
from importlib import resources
from typing import Final

import h11

__all__ = [
    "CSP",
    "BadRequest",
    "RequestReader",
    "StaticFiles",
    "WebRequest",
    "looks_like_http",
]

MAX_HEAD: Final = 8192  # bytes of one request head

# The page runs only its own files: no inline script or style, nothing from
# another origin, no framing, no forms, no plugins.
CSP: Final = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)

_TYPES: Final = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}

_REASONS: Final = {
    400: b"Bad Request",
    403: b"Forbidden",
    404: b"Not Found",
    405: b"Method Not Allowed",
    429: b"Too Many Requests",
}


def looks_like_http(data: bytes) -> bool:
    """The first bytes of a connection are (the start of) `GET `: no frame starts so."""
    head = data[:4]
    return bool(head) and b"GET ".startswith(head)


class BadRequest(Exception):
    """The request cannot be served; answer with `status` and close."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


@dataclass(frozen=True, slots=True)
class WebRequest:
    """One request head. Header names are lower case; repeated headers are joined by commas."""

    method: str
    target: str
    headers: dict[str, str]
    raw_headers: list[tuple[bytes, bytes]]

    @property
    def upgrade(self) -> bool:
        """It asks to become a WebSocket."""
        return self.headers.get("upgrade", "").lower() == "websocket"


class RequestReader:
    """Request heads from a byte stream, and the responses to them, on one h11 connection."""

    def __init__(self) -> None:
        self._h11 = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD)
        self.request: WebRequest | None = None
        self.keep_alive = True  # after the last response, another request may come

    def feed(self, data: bytes) -> WebRequest | None:
        """The next complete request head, or None until it is complete.

        Raises `BadRequest` for what h11 cannot parse and for requests with a body.
        """
        if data:  # to h11, b"" would mean the end of the stream
            self._h11.receive_data(data)
        while True:
            try:
                event = self._h11.next_event()
            except h11.RemoteProtocolError as exc:
                raise BadRequest(exc.error_status_hint) from None
            if isinstance(event, h11.Request):
                headers: dict[str, str] = {}
                for name, value in event.headers:
                    key = name.decode("ascii").lower()
                    text = value.decode("latin-1")
                    headers[key] = f"{headers[key]}, {text}" if key in headers else text
                self.request = WebRequest(
                    method=event.method.decode("ascii"),
                    target=event.target.decode("ascii", "replace"),
                    headers=headers,
                    raw_headers=list(event.headers),
                )
            elif isinstance(event, h11.Data):
                raise BadRequest(400)  # nothing here takes a body
            elif isinstance(event, h11.EndOfMessage) or event is h11.PAUSED:
                request, self.request = self.request, None
                return request
            else:  # NEED_DATA, or the peer closed its side
                return None

    @property
    def trailing(self) -> bytes:
        """Bytes received after the last request head (after an upgrade: the first frames)."""
        return self._h11.trailing_data[0]

    def respond(
        self, status: int, body: bytes = b"", content_type: str = "text/plain; charset=utf-8"
    ) -> bytes:
        """A complete response; afterwards the next request may be read, if `keep_alive`."""
        headers = [
            ("Content-Type", content_type),
            ("Content-Length", str(len(body))),
            ("Content-Security-Policy", CSP),
            ("X-Content-Type-Options", "nosniff"),
            ("Referrer-Policy", "no-referrer"),
            ("Cache-Control", "no-cache"),
        ]
        if status == 405:
            headers.append(("Allow", "GET"))
        if status >= 400:
            headers.append(("Connection", "close"))
        out = self._h11.send(
            h11.Response(status_code=status, headers=headers, reason=_REASONS.get(status, b""))
        )
        out = out or b""
        if body:
            out += self._h11.send(h11.Data(data=body)) or b""
        out += self._h11.send(h11.EndOfMessage()) or b""
        self.keep_alive = self._h11.our_state is h11.DONE and self._h11.their_state is h11.DONE
        if self.keep_alive:
            self._h11.start_next_cycle()
        return out

    def error(self, status: int) -> bytes:
        """A short error response (h11 writes one even after a request it could not parse)."""
        body = f"{status} {_REASONS.get(status, b'').decode()}\n".encode()
        return self.respond(status, body)


@dataclass(frozen=True, slots=True)
class _File:
    body: bytes
    content_type: str


class StaticFiles:
    """The web client's files, read once from the package; looked up by exact name."""

    def __init__(self) -> None:
        folder = resources.files("chatserver") / "static"
        self._files: dict[str, _File] = {}
        for entry in folder.iterdir():
            suffix = "." + entry.name.rsplit(".", 1)[-1]
            if entry.is_file() and suffix in _TYPES:
                self._files["/" + entry.name] = _File(entry.read_bytes(), _TYPES[suffix])
        if "/index.html" in self._files:
            self._files["/"] = self._files["/index.html"]

    def lookup(self, target: str) -> tuple[bytes, str] | None:
        """The body and type of the file `target` names, or None."""
        path = urllib.parse.unquote(target.split("?", 1)[0].split("#", 1)[0])
        found = self._files.get(path)
        return None if found is None else (found.body, found.content_type)

    @property
    def names(self) -> list[str]:
        return sorted(self._files)
