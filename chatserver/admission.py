"""Connections that have not said `hello` yet, bounded apart from the others.

A socket that connects and says nothing costs a thread until the handshake
timeout. Counted with everyone else, a few addresses' idle sockets would fill
`--max-clients` and lock everybody out, again and again. So these are
bounded on their own, per address and in total:

- an address that has `per_address` connections in the handshake gets no
  more until one of them says `hello` or goes (`too_many_connections`);
- when `total` connections are in the handshake, the oldest of them makes
  room for the newest: a client that says `hello` at once always gets in,
  and idle sockets only push each other out.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from chatproto import ErrorCode
from chatserver.session import Session

__all__ = ["HandshakeGate", "Refusal"]

Refusal = tuple[ErrorCode, str]


class HandshakeGate:
    def __init__(self, total: int, per_address: int) -> None:
        self._total = total
        self._per_address = per_address
        self._lock = threading.Lock()
        self._waiting: OrderedDict[Session, None] = OrderedDict()  # oldest first
        self._counts: dict[str, int] = {}

    def enter(
        self, session: Session, *, exempt: bool = False
    ) -> tuple[Refusal | None, Session | None]:
        """Count `session` in, or say why not; and the session it pushed out, if any,
        which the caller must end. An `exempt` address (a trusted proxy's) has no
        per-address bound."""
        with self._lock:
            if not exempt and self._counts.get(session.host, 0) >= self._per_address:
                return (
                    ErrorCode.TOO_MANY_CONNECTIONS,
                    "your address has too many connections that have not said hello",
                ), None
            evicted = None
            if len(self._waiting) >= self._total:
                evicted, _ = self._waiting.popitem(last=False)
                self._forget(evicted)
            self._waiting[session] = None
            self._counts[session.host] = self._counts.get(session.host, 0) + 1
            session.handshaking = True
            return None, evicted

    def leave(self, session: Session) -> None:
        """`session` said hello, or ended: it no longer counts here."""
        if not session.handshaking:
            return
        with self._lock:
            if session in self._waiting:
                del self._waiting[session]
                self._forget(session)

    def _forget(self, session: Session) -> None:
        session.handshaking = False
        left = self._counts[session.host] - 1
        if left:
            self._counts[session.host] = left
        else:
            del self._counts[session.host]

    def __len__(self) -> int:
        with self._lock:
            return len(self._waiting)
