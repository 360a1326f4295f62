"""One client connection: its protocol state machine, identity and limits."""

from __future__ import annotations

import itertools
import socket
import threading
import time

from chatproto import Error, ErrorCode, Event, LeaveReason, ServerConnection, State
from chatserver.outbox import Outbox
from chatserver.ratelimit import Meter

__all__ = ["Session"]

_ids = itertools.count(1)


class Session:
    """Everything the server knows about one connection.

    The reader thread owns it; other threads touch the protocol object only
    through `encode` (under `lock`) and the identity fields under the hub lock.
    """

    def __init__(
        self,
        sock: socket.socket,
        address: tuple[str, int],
        *,
        max_frame: int,
        rate: float,
        burst: int,
    ) -> None:
        self.id = f"s{next(_ids)}"
        self.sock = sock
        self.host = address[0]
        self.peer = f"{address[0]}:{address[1]}"
        self.protocol = ServerConnection(max_frame=max_frame)
        self.lock = threading.Lock()
        self.box = Outbox(sock, f"{self.id} {self.peer}", self._slow_consumer)
        self.nick: str | None = None
        self.welcomed = False
        self.securing = False  # in the TLS handshake, which keeps its own time
        self.rooms: set[str] = set()
        self.meter = Meter(rate, burst)  # what its frames cost
        self.handshaking = False  # counted among the connections yet to say hello
        now = time.monotonic()
        self.connected_at = now
        self.last_frame = now
        self.ping_token: str | None = None
        self.ping_sent = 0.0
        self.end_reason: LeaveReason | None = None
        self.end_detail = ""
        self.resume_token: str | None = None  # under the hub lock

    def encode(self, event: Event) -> bytes | None:
        """`event` as bytes for this client, or None once the session is closed."""
        with self.lock:
            if self.protocol.state is State.CLOSED:
                return None
            return self.protocol.send(event)

    def _slow_consumer(self) -> bytes | None:
        self.end(LeaveReason.KICKED, "slow_consumer")
        return self.encode(
            Error(
                code=ErrorCode.SLOW_CONSUMER.value,
                message="you did not read your messages fast enough",
                fatal=True,
            )
        )

    def end(self, reason: LeaveReason, detail: str) -> None:
        """Mark why the session ends, unless a reason was given already; first one wins."""
        if self.end_reason is None:
            self.end_reason = reason
            self.end_detail = detail

    def __repr__(self) -> str:
        return f"<Session {self.id} {self.nick or '-'} {self.peer}>"
