"""The clock of the server: handshake timeouts, idle pings, stale slow consumers."""

from __future__ import annotations

import contextlib
import itertools
import logging
import socket
import threading
import time

from chatproto import Error, ErrorCode, LeaveReason, ServerPing
from chatserver.config import ServerConfig
from chatserver.hub import Hub
from chatserver.logs import log_failure
from chatserver.session import Session

__all__ = ["Housekeeper", "kick"]

log = logging.getLogger(__name__)


def kick(hub: Hub, session: Session, code: ErrorCode, message: str, reason: LeaveReason) -> None:
    """End a session from outside its reader: say why, then wake the reader."""
    session.end(reason, code.value)
    hub.send(session, Error(code=code.value, message=message, fatal=True))
    with contextlib.suppress(OSError):
        session.sock.shutdown(socket.SHUT_RD)


def evict(hub: Hub, session: Session) -> None:
    """Push out a connection still in the handshake to make room for a newer one."""
    if session.securing:
        with contextlib.suppress(OSError):
            session.sock.shutdown(socket.SHUT_RDWR)
        return
    kick(
        hub,
        session,
        ErrorCode.SERVER_FULL,
        "too many connections are waiting to say hello; try again",
        LeaveReason.TIMEOUT,
    )


class Housekeeper(threading.Thread):
    def __init__(self, config: ServerConfig, hub: Hub) -> None:
        super().__init__(name="chat-housekeeper", daemon=True)
        self._config = config
        self._hub = hub
        self._halt = threading.Event()
        self._tokens = itertools.count(1)
        shortest = min(
            config.handshake_timeout, config.ping_interval, config.ping_timeout, config.soft_seconds
        )
        self.tick = max(0.01, min(0.5, shortest / 4))

    def stop(self) -> None:
        self._halt.set()

    def run(self) -> None:
        while not self._halt.wait(self.tick):
            try:
                self.sweep(time.monotonic())
            except Exception:
                log_failure(log, "housekeeping failed")

    def sweep(self, now: float) -> None:
        config = self._config
        hub = self._hub
        with hub.lock:
            sessions = list(hub.sessions)
            for session in sessions:
                hub.writer.drop_if_stale(session.box, now, config.soft_seconds)
        hub.writer.wake()
        for session in sessions:
            if session.end_reason is not None or session.securing:
                continue
            if not session.welcomed:
                if now - session.connected_at > config.handshake_timeout:
                    kick(hub, session, ErrorCode.TIMEOUT, "no 'hello' in time", LeaveReason.TIMEOUT)
            elif session.ping_token is not None and session.last_frame >= session.ping_sent:
                session.ping_token = None
            elif session.ping_token is None:
                if now - session.last_frame > config.ping_interval:
                    session.ping_token = f"k{next(self._tokens)}"
                    session.ping_sent = now
                    hub.send(session, ServerPing(token=session.ping_token))
            elif now - session.ping_sent > config.ping_timeout:
                kick(hub, session, ErrorCode.TIMEOUT, "no answer to ping", LeaveReason.TIMEOUT)
