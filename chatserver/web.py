"""A connection that began with `GET `: a browser's, on the chat port.

It carries HTTP requests for the web client's files (kept alive between them),
until one asks for a WebSocket: from then on it carries the chat protocol like
any connection, with the same session, send queue, limits and writer. The
reader thread hands `receive` what it reads and gets back protocol frames for
the session; the writer thread sends what `seal` makes of the session's queue.

The policy is the server's: which page origins may open a WebSocket (cross-site
WebSocket hijacking: a page from elsewhere must not chat with the user's
address), and which peers are proxies whose `X-Forwarded-For` names the client.
"""

from __future__ import annotations

import ipaddress
import logging
import threading
import urllib.parse
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from chatproto import Error, ErrorCode, LeaveReason
from chatserver.http import BadRequest, RequestReader, StaticFiles, WebRequest
from chatserver.ratelimit import Verdict
from chatserver.session import Session
from chatserver.websocket import CloseCode, WebSocketChannel

__all__ = ["WebConnection", "WebPolicy", "normal_origin"]

log = logging.getLogger(__name__)

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
# Gives the session another client address; says why not, if that address is full.
Readdress = Callable[[Session, str], tuple[ErrorCode, str] | None]

_DEFAULT_PORTS = {"http": 80, "https": 443}


def normal_origin(origin: str) -> str:
    """`scheme://host[:port]` in lower case, without the scheme's default port.

    Raises ValueError for what is not an origin."""
    parts = urllib.parse.urlsplit(origin.strip().lower())
    if parts.scheme not in _DEFAULT_PORTS or not parts.hostname or parts.path not in ("", "/"):
        raise ValueError(f"{origin!r} is not an origin (scheme://host[:port])")
    port = parts.port
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    if port is None or port == _DEFAULT_PORTS[parts.scheme]:
        return f"{parts.scheme}://{host}"
    return f"{parts.scheme}://{host}:{port}"


@dataclass(frozen=True, slots=True)
class WebPolicy:
    """What the server allows of browsers; shared, read-only, by every reader thread."""

    origins: frozenset[str]  # allowed besides the server's own; "*": any
    proxies: tuple[Network, ...]
    tls: bool
    files: StaticFiles

    @classmethod
    def build(cls, origins: Iterable[str], proxies: Iterable[str], *, tls: bool) -> WebPolicy:
        return cls(
            origins=frozenset(o if o == "*" else normal_origin(o) for o in origins),
            proxies=tuple(ipaddress.ip_network(p, strict=False) for p in proxies),
            tls=tls,
            files=StaticFiles(),
        )

    def origin_allowed(self, origin: str | None, host: str | None) -> bool:
        """A request without `Origin` is not a browser page's, and is allowed like
        a TCP client; a page's origin must be the server's own or a listed one."""
        if origin is None:
            return True
        if "*" in self.origins:
            return True
        try:
            origin = normal_origin(origin)
        except ValueError:
            return False  # "null" (a sandboxed page or a file), or junk
        if origin in self.origins:
            return True
        if host is None:
            return False
        try:
            own = normal_origin(("https://" if self.tls else "http://") + host)
        except ValueError:
            return False
        return origin == own

    def client_address(self, peer: str, forwarded: str | None) -> str:
        """The client's address: the peer's, or, when the peer is a trusted proxy,
        the rightmost address in `X-Forwarded-For` that is not a trusted proxy."""
        if forwarded is None or not self.trusts(peer):
            return peer
        address = peer
        for hop in reversed(forwarded.split(",")):
            try:
                address = str(ipaddress.ip_address(hop.strip()))
            except ValueError:
                break  # not an address: trust nothing left of it
            if not self.trusts(address):
                break
        return address

    def trusts(self, address: str) -> bool:
        """`address` is a trusted proxy's."""
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in self.proxies)


class WebConnection:
    """HTTP requests, then perhaps a WebSocket, on one session's connection."""

    def __init__(self, policy: WebPolicy, session: Session, readdress: Readdress) -> None:
        self._policy = policy
        self._session = session
        self._readdress = readdress
        self._http = RequestReader()
        self._requests = 0
        self._out = b""  # HTTP responses waiting for the writer
        self._early = b""  # a fatal error to send right after the upgrade
        self._lock = threading.Lock()
        self._ws: WebSocketChannel | None = None
        self.closed = False  # input has ended: the reader stops
        self.ending = (LeaveReason.LOST, "closed")  # why, for the session

    @classmethod
    def attach(cls, policy: WebPolicy, session: Session, readdress: Readdress) -> WebConnection:
        """Put a web layer under `session`: what its writer sends passes through
        `seal` (then through TLS's, if the connection has it)."""
        web = cls(policy, session, readdress)
        tls = session.box.seal
        session.box.seal = web.seal if tls is None else lambda data: tls(web.seal(data))
        return web

    # -- input (reader thread) ---------------------------------------------

    def receive(self, data: bytes) -> bytes:
        """Protocol frames from what the connection received; sets `closed` when it ends."""
        ws = self._ws
        if ws is not None:
            frames = ws.receive(data)
            if ws.closed:
                self._end_websocket(ws)
            return frames
        if self.closed:
            return b""
        try:
            request = self._http.feed(data)
            while request is not None:
                frames = self._serve(request)
                if self._ws is not None or self.closed:
                    return frames
                request = self._http.feed(b"")
        except BadRequest as exc:
            self._fail(exc.status, "bad HTTP request")
        return b""

    @property
    def has_output(self) -> bool:
        """Something waits for the writer: call for a flush."""
        ws = self._ws
        return bool(self._out) or (ws is not None and ws.has_output)

    def _serve(self, request: WebRequest) -> bytes:
        session = self._session
        self._requests += 1
        if self._requests == 1:
            address = self._policy.client_address(
                session.host, request.headers.get("x-forwarded-for")
            )
            if address != session.host:
                refusal = self._readdress(session, address)
                if refusal is not None:
                    return self._refuse(request, *refusal)
        elif session.meter.charge("http") is not Verdict.PASS:
            self._fail(429, "too many requests")
            return b""
        if request.method != "GET":
            self._fail(405, "not a GET request")
            return b""
        if request.upgrade:
            return self._upgrade(request)
        found = self._policy.files.lookup(request.target)
        if found is None:
            self._fail(404, "no such file")
            return b""
        body, content_type = found
        self._queue(self._http.respond(200, body, content_type))
        if not self._http.keep_alive:
            self._stop(LeaveReason.QUIT, "web page served")
        return b""

    def _upgrade(self, request: WebRequest) -> bytes:
        headers = request.headers
        if not self._policy.origin_allowed(headers.get("origin"), headers.get("host")):
            log.warning("%s: WebSocket from a refused origin", self._session.peer)
            self._fail(403, "refused origin")
            return b""
        ws = WebSocketChannel(charge=self._charge)
        accepted, first = ws.upgrade(request.raw_headers, request.target, self._http.trailing)
        self._ws = ws
        if not accepted:
            self._stop(LeaveReason.LOST, "bad WebSocket upgrade")
            return b""
        log.info("%s: WebSocket from %s", self._session.id, self._session.peer)
        return self.receive(first) if first else b""

    def _refuse(self, request: WebRequest, code: ErrorCode, message: str) -> bytes:
        """The forwarded client's address is full: a browser hears why in the
        protocol's own words, over the WebSocket; a file request gets 429."""
        log.warning("refused %s: %s", self._session.peer, message)
        if not request.upgrade:
            self._fail(429, code.value)
            return b""
        refusal = Error(code=code.value, message=message, fatal=True)
        with self._lock:
            self._early = self._session.encode(refusal) or b""
        self._upgrade(request)
        self._stop(LeaveReason.KICKED, code.value)
        return b""

    def _charge(self) -> bool:
        """A WebSocket frame that carries no protocol frame costs a token too."""
        return self._session.meter.charge("ws") is Verdict.PASS

    def _fail(self, status: int, why: str) -> None:
        self._queue(self._http.error(status))
        self._stop(LeaveReason.LOST, why)

    def _queue(self, data: bytes) -> None:
        with self._lock:
            self._out += data

    def _stop(self, reason: LeaveReason, detail: str) -> None:
        self.closed = True
        self.ending = (reason, detail)

    def _end_websocket(self, ws: WebSocketChannel) -> None:
        code = ws.close_code
        if code in (
            CloseCode.UNSUPPORTED_DATA,
            CloseCode.PROTOCOL_ERROR,
            CloseCode.INVALID_DATA,
            CloseCode.POLICY_VIOLATION,
        ):
            self._stop(LeaveReason.KICKED, ws.close_reason or f"WebSocket close {code}")
        else:
            self._stop(LeaveReason.LOST, f"WebSocket closed ({code})")

    # -- output (writer thread) --------------------------------------------

    def seal(self, data: bytes) -> bytes:
        """What to send for the session's queued `data`. Before the upgrade (and on
        a connection that only fetches files) protocol frames have no reader and are
        dropped. Bytes this adds or drops are taken off the box's count of sent
        bytes, so that its backlog still measures what the peer has not taken."""
        out = b""
        if self._out or self._early:  # rare: read again under the lock
            with self._lock:
                out, self._out = self._out, b""
                early, self._early = self._early, b""
            data_in = early + data
        else:
            data_in = data
        ws = self._ws
        box = self._session.box
        if ws is not None:
            last = box.finishing and not box.frames
            out += ws.seal(data_in, self._close_code() if last else None)
        box.sent -= len(out) - len(data)
        return out

    def _close_code(self) -> int:
        session = self._session
        reason, detail = session.end_reason, session.end_detail
        if detail == "shutdown":
            return CloseCode.GOING_AWAY
        if reason is None or reason is LeaveReason.QUIT:
            return CloseCode.NORMAL
        if detail == ErrorCode.FRAME_TOO_LARGE.value:
            return CloseCode.MESSAGE_TOO_BIG
        if reason in (LeaveReason.KICKED, LeaveReason.TIMEOUT):
            return CloseCode.POLICY_VIOLATION
        if detail == "internal error":
            return CloseCode.INTERNAL_ERROR
        return CloseCode.NORMAL
