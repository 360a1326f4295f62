"""One connection's requests and replies: the session a `Client` has between two reconnections.

The session gives each command an id, keeps the requests that wait for a
reply, and reads the connection: a reply settles its request's future, a
server ping is answered at once (queued without waiting: the reader never
waits behind a blocked write), and every other event goes to a sink. It
knows nothing about rooms, nicks or reconnecting: `chatclient.resume` does.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, InvalidStateError
from dataclasses import dataclass

from chatclient.errors import ChatError, ConnectionLost
from chatclient.link import Link
from chatproto import (
    Command,
    Error,
    Event,
    LocalProtocolError,
    Pong,
    ProtocolError,
    RequestId,
    ServerPing,
)

__all__ = ["Session"]

log = logging.getLogger("chatclient")

#: Called with each request and its successful reply, before the request's future is settled.
Observer = Callable[[Command, Event], None]
Sink = Callable[[Event], None]


@dataclass(frozen=True, slots=True)
class _Pending:
    command: Command
    future: Future[Event]


def _fail(future: Future[Event], error: BaseException) -> None:
    """Fail `future` unless it is settled already."""
    with contextlib.suppress(InvalidStateError):
        future.set_exception(error)


class Session:
    """Requests over one `Link`: ids, the table of those awaiting a reply, and the reader.

    `submit` and `forget` may be called from any thread; `exchange` and `run`
    only from the one thread that reads (`exchange` before `run`).
    """

    def __init__(self, link: Link, observer: Observer | None = None) -> None:
        self.link = link
        self._observer = observer
        self._ids = itertools.count(1)
        self._lock = threading.Lock()  # guards the fields below; never held during I/O
        self._pending: dict[RequestId, _Pending] = {}
        self._ended: ConnectionLost | None = None
        self._held: list[Event] = []  # events read while waiting in `exchange`
        self.pings_answered = 0

    @property
    def waiting(self) -> int:
        """Requests that wait for a reply."""
        with self._lock:
            return len(self._pending)

    # -- sending -------------------------------------------------------------------

    def submit(self, command: Command, future: Future[Event], deadline: float | None) -> RequestId:
        """Give `command` the next id, register `future` for its reply, and queue it.

        Waits for room in the link's queue until `deadline`. Raises
        `ConnectionLost` if the session ended, `RequestTimeout` if the queue
        stayed full, `LocalProtocolError` for a command the protocol forbids now.
        """
        rid: RequestId = next(self._ids)
        command = command.model_copy(update={"id": rid})
        with self._lock:
            if self._ended is not None:
                raise type(self._ended)(*self._ended.args)
            self._pending[rid] = _Pending(command, future)
        try:
            self.link.send(command, deadline)
        except BaseException:
            self.forget(rid)
            raise
        return rid

    def forget(self, rid: RequestId) -> None:
        """Stop waiting for the reply to `rid` (its request timed out); a late reply is dropped."""
        with self._lock:
            self._pending.pop(rid, None)

    def end(self, error: ConnectionLost) -> None:
        """Refuse new requests and fail every waiting one with `error`."""
        with self._lock:
            if self._ended is None:
                self._ended = error
            pending, self._pending = self._pending, {}
        for item in pending.values():
            _fail(item.future, type(error)(*error.args))

    def _pong(self, ping: ServerPing) -> None:
        try:
            sent = self.link.send_nowait(Pong(token=ping.token))
        except (ConnectionLost, LocalProtocolError):
            return  # the reader will see the connection end
        if sent:
            self.pings_answered += 1
        else:
            log.debug("the send queue is full: this ping goes unanswered")

    # -- reading -------------------------------------------------------------------

    def exchange(self, command: Command, deadline: float) -> Event:
        """Send `command` and read until its reply, setting other events aside for `run`.

        For the handshake (hello, rejoining, catching up) before `run`.
        Raises `ChatError` if refused (or at a fatal error), `RequestTimeout`
        at the deadline, `ConnectionLost`, `OSError` or `ProtocolError`.
        """
        rid: RequestId = next(self._ids)
        self.link.send(command.model_copy(update={"id": rid}), deadline)
        while True:
            event = self.link.next_event(deadline)
            if getattr(event, "ref", None) == rid:
                if isinstance(event, Error):
                    raise ChatError.from_event(event)
                return event
            if isinstance(event, ServerPing):
                self._pong(event)
            elif isinstance(event, Error) and event.fatal:
                raise ChatError.from_event(event)
            else:
                self._held.append(event)

    def run(self, sink: Sink) -> tuple[str, Error | None]:
        """Handle events until the connection ends; say why it ended (and the fatal error)."""
        fatal: Error | None = None
        try:
            held, self._held = self._held, []
            for event in held:
                self._dispatch(event, sink)
            while True:
                event = self.link.next_event()
                if isinstance(event, Error) and event.fatal:
                    fatal = event
                self._dispatch(event, sink)
        except ConnectionLost as exc:
            reason = str(exc)
        except OSError as exc:
            reason = f"connection error: {exc}"
        except ProtocolError as exc:
            reason = f"the server broke the protocol: {exc.message}"
        except Exception as exc:  # a bug here: end this connection, not the caller's cleanup
            log.exception("failed to handle an event")
            reason = f"client error: {exc!r}"
        if fatal is not None:
            reason = f"{fatal.code}: {fatal.message}"
        return reason, fatal

    def _dispatch(self, event: Event, sink: Sink) -> None:
        ref = getattr(event, "ref", None)
        if ref is not None:
            with self._lock:
                pending = self._pending.pop(ref, None)
            if pending is None:
                log.debug("a reply to a forgotten request: %r", event)
            elif isinstance(event, Error):
                _fail(pending.future, ChatError.from_event(event))
            else:
                if self._observer is not None:
                    self._observer(pending.command, event)
                with contextlib.suppress(InvalidStateError):
                    pending.future.set_result(event)
        elif isinstance(event, ServerPing):
            self._pong(event)
        else:
            sink(event)

    def shutdown(self) -> None:
        """Wake the reader, wherever it waits; the connection is over."""
        self.link.shutdown()

    def close(self) -> None:
        self.link.close()
