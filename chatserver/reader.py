"""The reader of one connection: its thread's whole life, from the TLS handshake
to the last frame.

Bytes in (decrypted on a TLS port; a TLS client on a plaintext port is told
apart by its first bytes), frames out of the sans-IO `ServerConnection`, each
frame charged to the client's `Meter`, then carried out by the handler,
answered as rejected or refused; at the end the session is removed and its
socket handed to the writer to flush and close.
"""

from __future__ import annotations

import logging
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

from chatproto import Command, Error, ErrorCode, LeaveReason, Rejected, State
from chatserver.admission import HandshakeGate, Refusal
from chatserver.backend import Backend
from chatserver.config import ServerConfig
from chatserver.handler import Handler
from chatserver.housekeeping import evict
from chatserver.http import looks_like_http
from chatserver.hub import Hub
from chatserver.logs import ClientLog, log_failure
from chatserver.ratelimit import Verdict
from chatserver.session import Session
from chatserver.tls import TlsChannel, looks_like_tls
from chatserver.web import WebConnection, WebPolicy

__all__ = ["ConnectionLoop"]

log = logging.getLogger(__name__)

_FRAMES_AT_ONCE = 16

# What OpenSSL says when the first bytes are not a TLS record.
_PLAINTEXT_REASONS = frozenset({"WRONG_VERSION_NUMBER", "HTTP_REQUEST", "UNSUPPORTED_PROTOCOL"})


@dataclass(frozen=True, slots=True)
class _Cut:
    code: ErrorCode
    message: str


class ConnectionLoop:
    """Runs connections' reader threads; one instance serves them all."""

    def __init__(
        self,
        config: ServerConfig,
        *,
        handler: Handler,
        hub: Hub,
        backend: Backend,
        gate: HandshakeGate,
        tls: ssl.SSLContext | None,
        web: WebPolicy | None,
        stopping: threading.Event,
    ) -> None:
        self._config = config
        self._web = web
        self._handler = handler
        self._hub = hub
        self._backend = backend
        self._gate = gate
        self._tls = tls
        self._stopping = stopping
        too_fast = f"too many frames: at most {config.rate:g} per second"
        self._cuts = {
            Verdict.REFUSE: _Cut(ErrorCode.RATE_LIMITED, too_fast),
            Verdict.CUT_RATE: _Cut(ErrorCode.RATE_LIMITED, too_fast),
            Verdict.CUT_ERRORS: _Cut(
                ErrorCode.TOO_MANY_ERRORS, "too many rejected frames in a row"
            ),
        }

    def client_log(self, session: Session) -> ClientLog:
        return ClientLog(log, session.id)

    def run(self, session: Session) -> None:
        """The reader thread of one connection: frames in, commands handled."""
        clog = self.client_log(session)
        clog.log(logging.INFO, "connect from %s", session.peer, always=True)
        try:
            self._read(session, clog)
        except OSError as exc:
            session.end(LeaveReason.LOST, exc.strerror or type(exc).__name__)
        except Exception:
            log_failure(log, "%s: reader failed", session.id)
            session.end(LeaveReason.LOST, "internal error")
        finally:
            self._finish(session, clog)

    def _read(self, session: Session, clog: ClientLog) -> None:
        sock = session.sock
        size = self._config.recv_size
        tls = None
        if self._tls is not None:
            tls = self._secure(session, self._tls, clog)
            if tls is None:
                return
        # A client may send its first frame right behind the end of its
        # handshake, so that both arrive in one read: that frame is already in
        # the TLS buffers, and no further read may come.
        early = tls.decrypt(b"") if tls is not None else b""
        web: WebConnection | None = None
        first = True
        drained = True
        while True:
            if early:
                data, early = early, b""
            else:
                data = _recv(sock, size, drained)
                drained = len(data) < size
                if not data:
                    session.end(LeaveReason.LOST, "connection closed")
                    return
                if tls is not None:
                    data = tls.decrypt(data)
                    if tls.has_output:
                        self._hub.send_raw(session, b"")
                    if tls.closed:
                        session.end(LeaveReason.LOST, "TLS closed")
                        return
                    if not data:
                        continue
                elif first and looks_like_tls(data):
                    clog.log(logging.WARNING, "TLS client on a plaintext port; closing")
                    session.end(LeaveReason.LOST, "TLS on a plaintext port")
                    return
            if first and self._web is not None and looks_like_http(data):
                web = WebConnection.attach(self._web, session, self.readdress)
            first = False
            if web is not None:
                data = web.receive(data)
                if web.has_output:
                    self._hub.send_raw(session, b"")
                if not data:
                    if web.closed:
                        session.end(*web.ending)
                        return
                    continue
            # A few frames at a time: a client cut off after its burst does not
            # get the rest of its read parsed first.
            for piece in _pieces(data, _FRAMES_AT_ONCE):
                with session.lock:
                    if session.protocol.state is State.CLOSED:
                        return
                    items = session.protocol.receive_data(piece)
                if items:
                    session.last_frame = time.monotonic()
                for item in items:
                    if not self._take(session, item, clog):
                        return
            if session.handshaking and session.welcomed:
                self._gate.leave(session)
            if web is not None and web.closed:
                session.end(*web.ending)
                return

    def readdress(self, session: Session, host: str) -> Refusal | None:
        """Count `session` under the client address `host` that a trusted proxy
        gave, in the handshake gate and among the connections; or say why not."""
        self._gate.leave(session)
        refusal = self._hub.readdress(session, host, self._config.max_per_address)
        if refusal is not None:
            return refusal
        if session.welcomed:
            return None
        refusal, evicted = self._gate.enter(session)
        if evicted is not None:
            evict(self._hub, evicted)
        return refusal

    def _take(self, session: Session, item: Command | Rejected, clog: ClientLog) -> bool:
        """Charge, then carry out, answer or refuse one frame; False: stop reading."""
        rejected = isinstance(item, Rejected)
        if isinstance(item, Rejected):
            err = item.error
            verdict = session.meter.charge(None, fatal=err.fatal)
            ref = err.ref
        else:
            verdict = session.meter.charge(item.type)
            ref = item.id
        if verdict is Verdict.IGNORE:
            return True
        if verdict is Verdict.PASS:
            if not isinstance(item, Rejected):
                keep = self._handler.handle(session, item)
                if not keep and session.end_reason is None:
                    session.end(LeaveReason.KICKED, "refused")
                return keep
            # Logged by code only: the message may describe what the client sent.
            clog.log(logging.INFO, "rejected frame: %s", err.code.value)
            self._hub.send(session, item.error_event())
            if err.fatal:
                session.end(LeaveReason.KICKED, err.code.value)
            return not err.fatal
        cut = self._cuts[verdict]
        fatal = verdict is not Verdict.REFUSE
        if fatal:
            clog.log(logging.WARNING, "cut off: %s", cut.code.value, always=True)
            session.end(LeaveReason.KICKED, cut.code.value)
        elif rejected:
            clog.log(logging.INFO, "refused a rejected frame: %s", cut.code.value)
        error = Error(ref=ref, code=cut.code.value, message=cut.message, fatal=fatal)
        self._hub.send(session, error)
        return not fatal

    def _secure(
        self, session: Session, context: ssl.SSLContext, clog: ClientLog
    ) -> TlsChannel | None:
        tls = TlsChannel(context)
        session.securing = True
        try:
            tls.handshake(session.sock, self._config.handshake_timeout)
        except (OSError, ssl.SSLError) as exc:
            plain = isinstance(exc, ssl.SSLError) and exc.reason in _PLAINTEXT_REASONS
            what = "plaintext client on a TLS port" if plain else type(exc).__name__
            clog.log(logging.WARNING, "TLS handshake failed: %s", what)
            session.end(LeaveReason.LOST, "TLS handshake failed")
            return None
        finally:
            session.securing = False
        session.box.seal = tls.encrypt
        return tls

    def _finish(self, session: Session, clog: ClientLog) -> None:
        self._gate.leave(session)
        reason = session.end_reason or LeaveReason.LOST
        with session.lock:
            session.protocol.close()
        self._backend.remove(session, reason, tell=not self._stopping.is_set())
        self._hub.writer.finish(session.box, self._config.shutdown_grace)
        suppressed = f"; {clog.suppressed} lines left out" if clog.suppressed else ""
        clog.log(
            logging.INFO,
            "disconnect %s %s: %s (%s)%s",
            session.nick or "-",
            session.peer,
            reason.value,
            session.end_detail or reason.value,
            suppressed,
            always=True,
        )


def _pieces(data: bytes, frames: int) -> Iterator[bytes]:
    """`data` cut after every `frames`-th line end (one piece if it has no more)."""
    if data.count(b"\n") <= frames:
        yield data
        return
    start = 0
    while True:
        end = start
        for _ in range(frames):
            end = data.find(b"\n", end) + 1
            if not end:
                yield data[start:]
                return
        yield data[start:end]
        start = end
        if start == len(data):
            return


def _recv(sock: socket.socket, size: int, drained: bool) -> bytes:
    # A connection that had nothing more to read waits on a one-byte peek:
    # recv(size) would hold a buffer of `size` bytes for as long as it waits.
    if drained and not sock.recv(1, socket.MSG_PEEK):
        return b""
    return sock.recv(size)
