"""The client: a chat session that outlives its connections, driven by one receive thread.

A `Client` is the public face; the work is split by job:
`chatclient.session.Session` is one connection's requests and replies (ids,
futures, pings answered), `chatclient.resume.Resumer` what carries over from
one connection to the next (nick, password, rooms, resume token, epoch, ids
seen), and `chatclient.link.Link` the bytes (a sender thread writes, so no
caller ever blocks on a server that stops reading). The client connects,
runs the receive thread, reconnects, and hands events to the callback and
the queue, in arrival order.

TLS runs over memory buffers (`chatclient.tls`): the socket stays a plain
one, so the receive thread can block in `recv` while the sender writes.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import secrets
import ssl
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from enum import Enum
from types import TracebackType
from typing import Final, TypeVar

from pydantic import BaseModel, ValidationError

from chatclient.errors import (
    ChatError,
    ClientClosed,
    ClientError,
    ConnectionLost,
    InvalidRequest,
    RequestTimeout,
    TlsError,
)
from chatclient.events import (
    ClientEvent,
    Disconnected,
    Reconnected,
    Reconnecting,
    RejoinFailed,
)
from chatclient.inbox import Inbox
from chatclient.link import Link
from chatclient.pacing import Pacer
from chatclient.policy import ReconnectPolicy
from chatclient.resume import Rejoin, Resumer
from chatclient.session import Session
from chatclient.tls import client_context
from chatproto import (
    Bye,
    Command,
    DirectMessage,
    Dm,
    ErrorCode,
    Event,
    Hello,
    History,
    HistoryPage,
    Join,
    Joined,
    MemberList,
    Members,
    Nick,
    Ok,
    Part,
    Ping,
    Pong,
    PongReply,
    ProtocolError,
    Register,
    Renamed,
    RequestId,
    RoomList,
    RoomMessage,
    Rooms,
    Say,
    SetTopic,
    TopicChanged,
    Welcome,
)

__all__ = ["CLIENT_NAME", "Client", "new_key"]

log = logging.getLogger("chatclient")

CLIENT_NAME: Final = "chatclient 0.1"

R = TypeVar("R", bound=BaseModel)

# Hello errors that another attempt cannot cure: reconnecting stops. A
# refused password is one: retrying it would only use up the address's
# allowance of failed logins (PROTOCOL.md section 10).
_HOPELESS: Final = frozenset(
    {
        ErrorCode.AUTH_FAILED,
        ErrorCode.UNSUPPORTED_VERSION,
        ErrorCode.INVALID_FIELDS,
        ErrorCode.OUT_OF_ORDER,
        ErrorCode.UNKNOWN_TYPE,
        ErrorCode.INVALID_JSON,
        ErrorCode.INVALID_UTF8,
        ErrorCode.NOT_AN_OBJECT,
        ErrorCode.FRAME_TOO_LARGE,
    }
)
# How long a send refused with `unavailable` waits before it is tried again, at most.
_RETRY_PAUSE: Final = 1.0
# The share of close()'s timeout kept for the threads to end after waiting for `ok`.
_JOIN_SHARE: Final = 0.25


class _State(Enum):
    NEW = "new"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    RECONNECTING = "reconnecting"
    CLOSED = "closed"


@contextlib.contextmanager
def _checked() -> Iterator[None]:
    """Turn a command the models reject into the error the server would have sent."""
    try:
        yield
    except ValidationError as exc:
        details = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'value'}: {err['msg']}"
            for err in exc.errors(include_url=False)
        )
        raise InvalidRequest(details) from None


def new_key() -> str:
    """A fresh idempotency key for a `say` or `dm` (PROTOCOL.md 1.3): 22 random characters."""
    return secrets.token_urlsafe(16)


class Client:
    """A chat session: request methods that return replies, and a stream of events.

    Every request method takes a `timeout` in seconds (None: the client's
    default), gives the command a fresh `id`, waits for the reply with that
    `ref` and returns it typed. It raises `ChatError` (with `.code`) if the
    server refused, `ConnectionLost` if the connection broke or is being
    re-established, and `RequestTimeout` if no reply came in time (a server
    that stops reading makes requests time out too: they never block longer).

    `say` and `dm` carry an idempotency key (PROTOCOL.md 1.3): a fresh one
    unless given. Within their timeout they are sent again, with the same
    key, after `unavailable` and, with `reconnect`, after the connection
    broke: a server that keys messages stores each one once.

    Events, meaning everything the server sends that is not a reply (room
    messages of others, direct messages, presence, fatal errors) plus the
    library's `Disconnected`/`Reconnecting`/`Reconnected`/`RejoinFailed`/
    `EventsDropped`, go first to `on_event`, called in the receive thread
    (keep it short, and do not call blocking request methods from it: use
    `submit`), then to a queue read by `next_event()`/`events()`. The queue
    holds `queue_size` events (0 disables it); when it is full, new events
    are dropped for the queue (the callback still sees them) and an
    `EventsDropped` marker takes their place, so a slow reader never delays
    replies or the connection.

    With `reconnect`, a broken connection is re-established with capped
    exponential backoff: same nick (the last `welcome`'s resume token takes
    over the session the server may still hold), each room rejoined on its
    own (one that refuses is reported by `RejoinFailed`), and every room
    message stored meanwhile is delivered once, in order; if the server lost
    its stored state (another `welcome.epoch`), the ids seen are forgotten.
    Direct messages sent meanwhile are lost: servers do not store them.
    `fallbacks` are other servers of the same cluster, as (host, port): a
    connection, the first one too, that cannot reach the current server
    tries each in turn.

    With `pace`, requests wait for a slot in a copy of the server's rate limit
    instead of being refused with `rate_limited`.

    `password` is the nick's password (for a registered nick) and
    `server_password` the server's, both sent in `hello`; reconnections send
    them again, with the password of the nick the client has by then (see
    `register` and `nick`).

    With `tls`, the connection is TLS (1.2 at least) and the server's
    certificate must be valid for `host`: signed by an authority in the
    system's trust store, or in the PEM file `ca`. `insecure` turns every
    check off, for a development server with a self-signed certificate only.
    `tls` may also be an `ssl.SSLContext` of your own. A refused certificate
    raises `TlsCertificateError`, another TLS failure `TlsError`.

    Options that cannot work together, a bad number, or a `ca` file that
    cannot be loaded raise `ValueError`; a nick or password the protocol does
    not allow, `InvalidRequest`.
    """

    def __init__(
        self,
        nick: str,
        *,
        host: str = "127.0.0.1",
        port: int = 7878,
        fallbacks: Sequence[tuple[str, int]] = (),
        password: str | None = None,
        server_password: str | None = None,
        tls: bool | ssl.SSLContext = False,
        ca: str | None = None,
        insecure: bool = False,
        on_event: Callable[[ClientEvent], None] | None = None,
        reconnect: ReconnectPolicy | bool = False,
        queue_size: int = 1000,
        timeout: float = 10.0,
        pace: bool = True,
        client_name: str = CLIENT_NAME,
    ) -> None:
        with _checked():
            hello = Hello(
                nick=nick, client=client_name, password=password, server_password=server_password
            )
        if not timeout > 0:
            raise ValueError(f"timeout must be > 0 seconds, not {timeout!r}")
        if queue_size < 0:
            raise ValueError(f"queue_size must be >= 0, not {queue_size!r}")
        if not 0 < port < 65536:
            raise ValueError(f"port must be from 1 to 65535, not {port!r}")
        if isinstance(tls, ssl.SSLContext):
            if ca is not None or insecure:
                raise ValueError("ca= and insecure= configure tls=True, not a context of your own")
            self._tls_context: ssl.SSLContext | None = tls
        elif tls:
            self._tls_context = client_context(ca=ca, insecure=insecure)
        elif ca is not None or insecure:
            raise ValueError("ca= and insecure= need tls=True")
        else:
            self._tls_context = None
        self.host = host
        self.port = port
        self._addresses = [(host, port), *((h, int(p)) for h, p in fallbacks)]
        self.timeout = timeout
        self._on_event = on_event
        self._policy: ReconnectPolicy | None = (
            reconnect
            if isinstance(reconnect, ReconnectPolicy)
            else (ReconnectPolicy() if reconnect else None)
        )
        self._inbox = Inbox(queue_size) if queue_size else None
        self._pacer = Pacer() if pace else None
        self._resumer = Resumer(hello)
        self._welcome: Welcome | None = None
        self._closing = threading.Event()
        self._wake = threading.Event()  # cuts a reconnection's wait short
        # _lock guards the fields below it; _changed is notified when _state changes.
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._state = _State.NEW
        self._session: Session | None = None
        self._setup: Link | None = None  # a connection being set up
        self._thread: threading.Thread | None = None
        self._pings = 0  # answered on sessions that ended

    # -- what the client knows ----------------------------------------------

    @property
    def nickname(self) -> str:
        """The nick the server knows this client by now."""
        return self._resumer.nick

    @property
    def joined_rooms(self) -> frozenset[str]:
        """The rooms this client is in (and rejoins after a reconnection)."""
        return self._resumer.rooms

    @property
    def welcome(self) -> Welcome | None:
        """The server's latest `welcome`, with its limits; None before connecting."""
        return self._welcome

    @property
    def connected(self) -> bool:
        return self._state is _State.CONNECTED

    @property
    def tls(self) -> bool:
        """Whether the connection is (and reconnections will be) TLS."""
        return self._tls_context is not None

    @property
    def dropped_events(self) -> int:
        """Events the full queue did not take, since the start."""
        return self._inbox.dropped if self._inbox is not None else 0

    @property
    def pending_requests(self) -> int:
        """Requests sent on the current connection that still wait for their reply."""
        session = self._session
        return session.waiting if session is not None else 0

    @property
    def pings_answered(self) -> int:
        """The server's pings this client answered, since the start."""
        session = self._session
        return self._pings + (session.pings_answered if session is not None else 0)

    def __repr__(self) -> str:
        tls = " tls" if self.tls else ""
        return f"<Client {self.nickname} {self.host}:{self.port}{tls} {self._state.value}>"

    # -- life cycle ---------------------------------------------------------------

    def connect(self, timeout: float | None = None) -> Welcome:
        """Connect and say hello; returns the `welcome`.

        Tries the server, then each of `fallbacks` in turn, until one answers.
        Raises `ChatError` if the server refuses the hello (e.g. `nick_in_use`,
        `auth_failed`), `ConnectionLost` if none can be reached, and its
        subclass `TlsError` (`TlsCertificateError`) if TLS cannot be set up;
        the client may then try again. A failure here is never retried
        automatically. Only one `connect` may run: another raises `ClientError`.
        """
        with self._lock:
            if self._closing.is_set():
                raise ClientClosed("the client was closed")
            if self._state is not _State.NEW:
                raise ClientError("connect() was called already")
            self._state = _State.CONNECTING
        try:
            session, welcome = self._open(timeout or self.timeout)
        except BaseException:
            with self._changed:
                if self._state is _State.CONNECTING:
                    self._state = _State.NEW
                self._changed.notify_all()
            raise
        thread = threading.Thread(
            target=self._run, args=(session,), name=f"chatclient-{welcome.nick}", daemon=True
        )
        with self._changed:
            # Started under the lock: close() must never see a thread it cannot join.
            self._setup = None
            if self._closing.is_set():
                session.close()
                raise ClientClosed("the client was closed while connecting")
            self._session, self._state, self._thread = session, _State.CONNECTED, thread
            self._changed.notify_all()
            thread.start()
        return welcome

    def close(self, timeout: float = 1.0) -> None:
        """Say `bye`, wait for its `ok`, and stop the receive thread, within `timeout` seconds.

        Returns within `timeout` in every state, even if the server stopped
        reading. Idempotent. Waiting requests fail with `ClientClosed`. When
        called from the receive thread itself (a callback), the thread ends
        right after.
        """
        deadline = time.monotonic() + timeout
        with self._lock:
            first = not self._closing.is_set()
            self._closing.set()
            self._wake.set()
            session = self._session if self._state is _State.CONNECTED else None
            setup = self._setup
            thread = self._thread
        inside = threading.current_thread() is thread
        if first and session is not None:
            # The `ok` may take most of the time; the rest is for the threads to end.
            answered = deadline - timeout * _JOIN_SHARE
            bye: Future[Event] = Future()
            try:
                session.submit(Bye(), bye, answered)
                if inside:
                    session.link.flushed(answered)
                else:
                    bye.result(max(0.0, answered - time.monotonic()))
            except (ClientError, ProtocolError, FutureTimeout):
                pass
        if session is not None:
            session.shutdown()
            session.end(ClientClosed("the client was closed"))
        if setup is not None:
            setup.shutdown()
        if thread is not None and not inside:
            thread.join(max(0.0, deadline - time.monotonic()))
            if thread.is_alive():
                log.debug("the receive thread is still in a callback; it ends after it")
        with self._changed:
            self._state = _State.CLOSED
            self._changed.notify_all()
        if self._inbox is not None:
            self._inbox.finish(ClientClosed("the client was closed"))

    def reconnect_now(self) -> bool:
        """Cut short the wait before the next reconnection attempt; False if not reconnecting."""
        if self._state is not _State.RECONNECTING:
            return False
        self._wake.set()
        return True

    def __enter__(self) -> Client:
        if self._state is _State.NEW:
            self.connect()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- events -------------------------------------------------------------------

    def next_event(self, timeout: float | None = None) -> ClientEvent:
        """The next queued event, waiting up to `timeout` seconds (None: no limit).

        Raises `TimeoutError` if none came, and `ConnectionLost` (or
        `ClientClosed`) once the client has ended and the queue is empty.
        """
        if self._inbox is None:
            raise RuntimeError("this client was made with queue_size=0: use on_event")
        return self._inbox.get(timeout)

    def events(self, timeout: float | None = None) -> Iterator[ClientEvent]:
        """Iterate over events until the client ends, or none comes for `timeout` seconds."""
        while True:
            try:
                yield self.next_event(timeout)
            except (TimeoutError, ConnectionLost):
                return

    # -- requests -----------------------------------------------------------------

    def submit(
        self, command: Command, callback: Callable[[Future[Event]], None] | None = None
    ) -> Future[Event]:
        """Send `command` with a fresh id without waiting; its future gets the reply.

        The future fails with `ChatError` or `ConnectionLost`. `callback`, if
        given, is attached before sending, so it runs in the receive thread in
        order with the events. Safe from any thread, the receive thread
        included. Raises `ConnectionLost` at once if not connected, and
        `RequestTimeout` if the server has not read what was sent before
        (from the receive thread: at once).
        """
        inside = threading.current_thread() is self._thread
        wait = 0.0 if inside else self.timeout
        _, _, future = self._submit(command, callback, time.monotonic() + wait)
        return future

    def _submit(
        self,
        command: Command,
        callback: Callable[[Future[Event]], None] | None,
        deadline: float,
    ) -> tuple[Session, RequestId, Future[Event]]:
        if isinstance(command, Hello | Bye | Pong):
            raise ValueError(f"{command.type!r} is sent by the client itself")
        if self._pacer is not None and threading.current_thread() is not self._thread:
            delay = self._pacer.reserve()
            if delay > 0 and self._closing.wait(delay):
                raise ClientClosed("the client was closed")
        future: Future[Event] = Future()
        if callback is not None:
            future.add_done_callback(callback)
        with self._lock:
            state, session = self._state, self._session
        if self._closing.is_set() or state is _State.CLOSED:
            raise ClientClosed("the client is closed")
        if state is not _State.CONNECTED or session is None:
            raise ConnectionLost(
                "not connected; reconnecting" if state is _State.RECONNECTING else "not connected"
            )
        rid = session.submit(command, future, deadline)
        return session, rid, future

    def request(self, command: Command, timeout: float | None = None) -> Event:
        """Send `command` and wait for its reply (untyped; the methods below are typed)."""
        if threading.current_thread() is self._thread:
            raise RuntimeError(
                "a blocking request from the receive thread would wait forever; use submit()"
            )
        deadline = time.monotonic() + (timeout or self.timeout)
        session, rid, future = self._submit(command, None, deadline)
        try:
            return future.result(max(0.0, deadline - time.monotonic()))
        except FutureTimeout:
            if future.done():
                raise
            session.forget(rid)
            raise RequestTimeout(f"no reply to {command.type!r} in time") from None

    def _call(self, command: Command, kind: type[R], timeout: float | None) -> R:
        reply = self.request(command, timeout)
        if not isinstance(reply, kind):  # ClientConnection checks this already
            raise ClientError(f"{command.type!r} was answered by {reply.type!r}")
        return reply

    def _call_keyed(self, command: Say | Dm, kind: type[R], timeout: float | None) -> R:
        """`_call`, sent again with the same key while the outcome is unknown and time remains."""
        deadline = time.monotonic() + (timeout or self.timeout)
        pause = 0.05
        while True:
            broken = self._session
            try:
                return self._call(command, kind, max(0.001, deadline - time.monotonic()))
            except ChatError as exc:
                if exc.code != ErrorCode.UNAVAILABLE or exc.fatal:
                    raise
                failure: ClientError = exc
                if self._closing.wait(min(pause, max(0.0, deadline - time.monotonic()))):
                    raise ClientClosed("the client was closed") from exc
                pause = min(_RETRY_PAUSE, pause * 2)
            except ClientClosed:
                raise
            except ConnectionLost as exc:
                if self._policy is None:
                    raise
                failure = exc
                with self._changed:
                    if self._state is _State.NEW:
                        raise
                    # Until a new connection is up (or the client ends).
                    self._changed.wait_for(
                        functools.partial(self._replaced, broken),
                        max(0.0, deadline - time.monotonic()),
                    )
            if time.monotonic() >= deadline:
                raise failure

    def _replaced(self, broken: Session | None) -> bool:
        """Whether `broken` gave way to a new connection, or the client ended (`_lock` held)."""
        if self._state is _State.CLOSED:
            return True
        return self._state is _State.CONNECTED and self._session is not broken

    def join(self, room: str, *, timeout: float | None = None) -> Joined:
        """Enter `room` (created if new): its members (the first page in a large room;
        `count` says how many), topic and latest messages."""
        with _checked():
            command = Join(room=room)
        reply = self._call(command, Joined, timeout)
        welcome = self._welcome
        if not reply.history and welcome is not None and welcome.limits.history == 0:
            # The server replays no history, so an empty one says nothing about
            # where the room stands: ask, to know where to resume from.
            page = self.history(room, limit=1, timeout=timeout)
            if page.messages:
                self._resumer.tracker.raise_floor(room, page.messages[-1].id)
        return reply

    def part(self, room: str, *, timeout: float | None = None) -> Ok:
        """Leave `room`."""
        with _checked():
            command = Part(room=room)
        return self._call(command, Ok, timeout)

    def say(
        self, room: str, text: str, *, key: str | None = None, timeout: float | None = None
    ) -> RoomMessage:
        """Send `text` to `room`; returns the stored message (the echo), with its id.

        `key` is the idempotency key (a fresh one if None): give the same key
        to send the same message again after a `RequestTimeout`.
        """
        with _checked():
            command = Say(room=room, text=text, key=key or new_key())
        return self._call_keyed(command, RoomMessage, timeout)

    def dm(
        self, nick: str, text: str, *, key: str | None = None, timeout: float | None = None
    ) -> DirectMessage:
        """Send `text` to the connected client `nick`; returns the delivered message.

        `key` is the idempotency key, as for `say`.
        """
        with _checked():
            command = Dm(to=nick, text=text, key=key or new_key())
        return self._call_keyed(command, DirectMessage, timeout)

    def nick(
        self, new: str, password: str | None = None, *, timeout: float | None = None
    ) -> Renamed:
        """Change this client's nick; a registered nick needs its `password`.

        A wrong or missing password raises `ChatError` with code `auth_failed`.
        Once renamed, reconnections use `new` and this password.
        """
        with _checked():
            command = Nick(nick=new, password=password)
        return self._call(command, Renamed, timeout)

    def register(self, password: str, *, timeout: float | None = None) -> Ok:
        """Register the current nick with `password` (8-256 characters).

        From then on the nick can be used only with this password; this
        client's reconnections send it. Raises `ChatError` with code
        `already_registered` if the nick is registered already.
        """
        with _checked():
            command = Register(password=password)
        return self._call(command, Ok, timeout)

    def rooms(
        self, *, after: str | None = None, limit: int | None = None, timeout: float | None = None
    ) -> RoomList:
        """The rooms that have members, a page of them (see `RoomList.more` and `after`)."""
        with _checked():
            command = Rooms(after=after) if limit is None else Rooms(after=after, limit=limit)
        return self._call(command, RoomList, timeout)

    def members(
        self,
        room: str,
        *,
        after: str | None = None,
        limit: int | None = None,
        timeout: float | None = None,
    ) -> MemberList:
        """Who is in `room` (membership not needed): a page of members in nick order,
        after the nick `after`; `count` is the total and `more` says whether more follow."""
        with _checked():
            command = (
                Members(room=room, after=after)
                if limit is None
                else Members(room=room, after=after, limit=limit)
            )
        return self._call(command, MemberList, timeout)

    def topic(self, room: str, topic: str, *, timeout: float | None = None) -> TopicChanged:
        """Set `room`'s topic ("" clears it)."""
        with _checked():
            command = SetTopic(room=room, topic=topic)
        return self._call(command, TopicChanged, timeout)

    def history(
        self,
        room: str,
        *,
        before: int | None = None,
        after: int | None = None,
        limit: int = 50,
        timeout: float | None = None,
    ) -> HistoryPage:
        """A page of `room`'s stored messages, oldest first; see `HistoryPage.more`."""
        with _checked():
            command = History(room=room, before=before, after=after, limit=limit)
        return self._call(command, HistoryPage, timeout)

    def ping(self, token: str | None = None, *, timeout: float | None = None) -> PongReply:
        """Ask the server for a `pong`: a round trip, or a keep-alive."""
        with _checked():
            command = Ping(token=token)
        return self._call(command, PongReply, timeout)

    # -- the receive thread -----------------------------------------------------------

    def _run(self, first: Session) -> None:
        session: Session | None = first
        reason = "closed"
        while session is not None:
            reason, fatal = session.run(self._deliver)
            session.close()
            closing = self._closing.is_set()
            # `replaced`: another connection took this session over; fighting back is pointless.
            replaced = fatal is not None and fatal.code == ErrorCode.REPLACED
            again = self._policy is not None and not closing and not replaced
            with self._changed:
                self._pings += session.pings_answered
                self._session = None
                self._state = _State.RECONNECTING if again else _State.CLOSED
                self._changed.notify_all()
            session.end(
                ClientClosed("the client was closed") if closing else ConnectionLost(reason)
            )
            if closing:
                break
            self._emit(Disconnected(reason, fatal, reconnecting=again))
            session = self._reconnect(self._policy) if self._policy is not None and again else None
            if session is None and self._closing.is_set():
                reason = "closed"
        with self._changed:
            self._state = _State.CLOSED
            self._changed.notify_all()
        if self._inbox is not None:
            self._inbox.finish(
                ClientClosed("the client was closed")
                if self._closing.is_set()
                else ConnectionLost(reason)
            )

    def _deliver(self, event: Event) -> None:
        if not isinstance(event, RoomMessage) or self._resumer.fresh(event):
            self._emit(event)

    def _emit(self, event: ClientEvent) -> None:
        if self._on_event is not None:
            try:
                self._on_event(event)
            except Exception:
                log.exception("the on_event callback failed on %r", event)
        if self._inbox is not None:
            self._inbox.put(event)

    # -- connecting (the receive thread, or connect()) ------------------------------------

    def _exchange(self, session: Session, command: Command, deadline: float) -> Event:
        if self._pacer is not None:
            delay = self._pacer.reserve()
            if delay > 0 and self._closing.wait(delay):
                raise ClientClosed("the client was closed")
        return session.exchange(command, deadline)

    def _open_link(self, timeout: float) -> Link:
        """Connect to the current server, else to each fallback in turn; the one
        that answers becomes current."""
        start = self._addresses.index((self.host, self.port))
        failures: list[str] = []
        for i in range(len(self._addresses)):
            host, port = self._addresses[(start + i) % len(self._addresses)]
            try:
                link = Link.open(
                    host,
                    port,
                    timeout,
                    self._closing,
                    self._tls_context,
                    name=f"chatclient-{self.nickname}",
                )
            except TlsError:
                raise
            except (OSError, TimeoutError) as exc:
                failures.append(
                    f"{host}:{port}: {exc}"
                    if len(self._addresses) == 1
                    else f"{host}:{port} ({exc})"
                )
                continue
            self.host, self.port = host, port
            return link
        raise ConnectionLost("cannot connect to " + "; ".join(failures))

    def _open(self, timeout: float) -> tuple[Session, Welcome]:
        """A new connection, greeted: the session and its `welcome`.

        The link stays in `_setup` (where `close()` finds it) until the caller
        installs the session or drops it.
        """
        link = self._open_link(timeout)
        deadline = time.monotonic() + timeout
        with self._lock:
            self._setup = link
        try:
            if self._closing.is_set():
                raise ClientClosed("the client was closed while connecting")
            session = Session(link, self._resumer.learn)
            return session, self._greet(session, deadline)
        except BaseException as exc:
            link.close()
            with self._lock:
                self._setup = None
            if self._closing.is_set():
                raise ClientClosed("the client was closed while connecting") from exc
            if isinstance(exc, OSError | ProtocolError):
                raise ConnectionLost(f"lost {self.host}:{self.port} during hello: {exc}") from exc
            if isinstance(exc, ConnectionLost) and not isinstance(exc, TlsError):
                # Closed without a word: what a TLS server does to a plaintext hello.
                hint = "" if self.tls else " (does the server expect TLS?)"
                raise ConnectionLost(
                    f"{self.host}:{self.port} closed the connection during hello{hint}"
                ) from exc
            raise

    def _greet(self, session: Session, deadline: float) -> Welcome:
        welcome = self._exchange(session, self._resumer.hello(), deadline)
        assert isinstance(welcome, Welcome)  # ClientConnection checks the reply's type
        self._resumer.welcomed(welcome)
        self._welcome = welcome
        if self._pacer is not None:
            self._pacer.configure(welcome.limits.rate, welcome.limits.burst)
        return welcome

    def _resume(self, timeout: float) -> tuple[Session, Welcome, Rejoin]:
        """A new connection that carries on the session: greeted, rooms rejoined."""
        session, welcome = self._open(timeout)
        deadline = time.monotonic() + timeout
        with self._lock:
            self._setup = session.link
        try:
            rejoin = self._resumer.rejoin(
                lambda command: self._exchange(session, command, deadline)
            )
        except BaseException:
            session.close()
            raise
        finally:
            with self._lock:
                self._setup = None
        return session, welcome, rejoin

    def _pause(self, delay: float) -> bool:
        """Wait `delay` seconds, or less if told to hurry; True if the client is closing."""
        self._wake.wait(delay)
        self._wake.clear()
        return self._closing.is_set()

    def _reconnect(self, policy: ReconnectPolicy) -> Session | None:
        """Connect again until it works, the policy gives up, or the client is closed."""
        error: str | None = None
        for attempt, delay in enumerate(policy.delays(), start=1):
            if policy.attempts is not None and attempt > policy.attempts:
                self._emit(Disconnected(f"gave up after {policy.attempts} attempts: {error}"))
                return None
            self._emit(Reconnecting(attempt, delay, error))
            if self._pause(delay):
                return None
            try:
                session, welcome, rejoin = self._resume(policy.timeout)
            except ChatError as exc:
                error = f"{exc.code}: {exc.message}"
                if exc.code in _HOPELESS:
                    self._emit(Disconnected(f"cannot reconnect: {error}"))
                    return None
            except (ClientError, OSError, ProtocolError) as exc:
                error = str(exc) or type(exc).__name__
            else:
                with self._changed:
                    self._setup = None
                    closing = self._closing.is_set()
                    if not closing:
                        self._session, self._state = session, _State.CONNECTED
                        self._changed.notify_all()
                if closing:
                    session.close()
                    return None
                self._emit(
                    Reconnected(
                        welcome,
                        attempt,
                        rejoin.joined,
                        len(rejoin.recovered),
                        rejoin.epoch_changed,
                    )
                )
                for room, refusal in rejoin.refused:
                    self._emit(RejoinFailed(room, refusal.code, refusal.message))
                for message in rejoin.recovered:
                    if self._resumer.fresh(message):
                        self._emit(message)
                return session
            if self._closing.is_set():
                return None
        return None  # pragma: no cover - delays() never ends
