"""The client: one chat session over TCP (or TLS), driven by a single receive thread.

Any thread may send: a lock keeps each frame whole and gives request ids in
sending order. Only the receive thread reads; it settles each request's
future from the reply that carries its id, answers the server's pings, and
hands every other event to the callback and the queue, in arrival order.
With reconnection on, the same thread connects again, rejoins the rooms and
fetches the room messages missed meanwhile (PROTOCOL.md section 13).

TLS runs over memory buffers (`chatclient.tls`): the socket stays a plain
one, so the receive thread can block in `recv` while others send.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import ssl
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, InvalidStateError
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
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
from chatclient.events import ClientEvent, Disconnected, Reconnected, Reconnecting
from chatclient.inbox import Inbox
from chatclient.link import Link
from chatclient.pacing import Pacer
from chatclient.policy import ReconnectPolicy
from chatclient.resume import Tracker, missed
from chatclient.tls import client_context
from chatproto import (
    Bye,
    Command,
    DirectMessage,
    Dm,
    Error,
    ErrorCode,
    Event,
    Hello,
    History,
    HistoryPage,
    Join,
    Joined,
    LocalProtocolError,
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
    ServerPing,
    SetTopic,
    TopicChanged,
    Welcome,
)

__all__ = ["CLIENT_NAME", "Client"]

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


class _State(Enum):
    NEW = "new"
    CONNECTED = "connected"
    RECONNECTING = "reconnecting"
    CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class _Pending:
    command: Command
    future: Future[Event]


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


def _fail(future: Future[Event], error: BaseException) -> None:
    with contextlib.suppress(InvalidStateError):
        future.set_exception(error)


class Client:
    """A chat session: request methods that return replies, and a stream of events.

    Every request method takes a `timeout` in seconds (None: the client's
    default), gives the command a fresh `id`, waits for the reply with that
    `ref` and returns it typed. It raises `ChatError` (with `.code`) if the
    server refused, `ConnectionLost` if the connection broke or is being
    re-established, and `RequestTimeout` if no reply came in time.

    Events, meaning everything the server sends that is not a reply (room
    messages of others, direct messages, presence, fatal errors) plus the
    library's `Disconnected`/`Reconnecting`/`Reconnected`/`EventsDropped`,
    go first to `on_event`, called in the receive thread (keep it short, and
    do not call blocking request methods from it: use `submit`), then to a
    queue read by `next_event()`/`events()`. The queue holds `queue_size`
    events (0 disables it); when it is full, new events are dropped for the
    queue (the callback still sees them) and an `EventsDropped` marker takes
    their place, so a slow reader never delays replies or the connection.

    With `reconnect`, a broken connection is re-established with capped
    exponential backoff: same nick (retried while the server still holds it),
    same rooms, and every room message stored meanwhile is delivered once, in
    order. Direct messages sent meanwhile are lost: servers do not store them.
    `fallbacks` are other servers of the same cluster, as (host, port): a
    reconnection that cannot reach the current server tries each in turn.

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

    Options that cannot work together, or a `ca` file that cannot be loaded,
    raise `ValueError`; a nick or password the protocol does not allow,
    `InvalidRequest`.
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
            self._hello = Hello(
                nick=nick, client=client_name, password=password, server_password=server_password
            )
        if queue_size < 0 or timeout <= 0:
            raise ValueError("queue_size must be >= 0 and timeout > 0")
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
        self._tracker = Tracker()
        self._ids = itertools.count(1)
        # Lock order: _send_lock, then _lock. _lock guards the fields below it.
        self._send_lock = threading.Lock()
        self._lock = threading.Lock()
        self._state = _State.NEW
        self._link: Link | None = None
        self._setup_link: Link | None = None  # a reconnection in progress
        self._pending: dict[RequestId, _Pending] = {}
        self._nick = nick
        self._rooms: set[str] = set()
        self._welcome: Welcome | None = None
        self._closing = threading.Event()
        self._thread: threading.Thread | None = None
        self.pings_answered = 0

    # -- what the client knows ----------------------------------------------

    @property
    def nickname(self) -> str:
        """The nick the server knows this client by now."""
        return self._nick

    @property
    def joined_rooms(self) -> frozenset[str]:
        """The rooms this client is in (and rejoins after a reconnection)."""
        with self._lock:
            return frozenset(self._rooms)

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

    def __repr__(self) -> str:
        tls = " tls" if self.tls else ""
        return f"<Client {self._nick} {self.host}:{self.port}{tls} {self._state.value}>"

    # -- life cycle ---------------------------------------------------------------

    def connect(self, timeout: float | None = None) -> Welcome:
        """Connect and say hello; returns the `welcome`.

        Raises `ChatError` if the server refuses the hello (e.g. `nick_in_use`,
        `auth_failed`), `ConnectionLost` if it cannot be reached, and its
        subclass `TlsError` (`TlsCertificateError`) if TLS cannot be set up;
        the client may then try again. A failure here is never retried
        automatically.
        """
        with self._lock:
            if self._closing.is_set():
                raise ClientClosed("the client was closed")
            if self._state is not _State.NEW or self._thread is not None:
                raise ClientError("connect() was called already")
        limit = timeout or self.timeout
        deadline = time.monotonic() + limit
        try:
            link = Link.open(self.host, self.port, limit, self._closing, self._tls_context)
        except TlsError:
            raise
        except (OSError, TimeoutError) as exc:
            raise ConnectionLost(f"cannot connect to {self.host}:{self.port}: {exc}") from exc
        try:
            welcome = self._greet(link, deadline)
        except (OSError, ProtocolError) as exc:
            link.close()
            raise ConnectionLost(f"lost {self.host}:{self.port} during hello: {exc}") from exc
        except ConnectionLost as exc:
            link.close()
            if isinstance(exc, ClientClosed | TlsError):
                raise
            # Closed without a word: what a TLS server does to a plaintext hello.
            hint = "" if self.tls else " (does the server expect TLS?)"
            raise ConnectionLost(
                f"{self.host}:{self.port} closed the connection during hello{hint}"
            ) from exc
        except BaseException:
            link.close()
            raise
        thread = threading.Thread(target=self._run, name=f"chatclient-{welcome.nick}", daemon=True)
        with self._lock:
            # Started under the lock: close() must never see a thread it cannot join.
            if self._closing.is_set():
                link.close()
                raise ClientClosed("the client was closed while connecting")
            self._link, self._state, self._thread = link, _State.CONNECTED, thread
            thread.start()
        return welcome

    def close(self, timeout: float = 1.0) -> None:
        """Say `bye`, wait up to `timeout` for its `ok`, and stop the receive thread.

        Idempotent. Waiting requests fail with `ClientClosed`. When called from
        the receive thread itself (a callback), the thread ends right after.
        """
        with self._lock:
            first = not self._closing.is_set()
            self._closing.set()
            link = self._link if self._state is _State.CONNECTED else None
            setup = self._setup_link
            thread = self._thread
        inside = threading.current_thread() is thread
        if first and link is not None:
            bye: Future[Event] = Future()
            try:
                self._transmit(link, Bye(), bye)
                if not inside:
                    bye.result(timeout)
            except (ClientError, FutureTimeout):
                pass
        for each in (link, setup):
            if each is not None:
                each.shutdown()
        if thread is not None and not inside:
            thread.join(max(timeout, 5.0))
            if thread.is_alive():
                log.warning("the receive thread did not stop in time")
        with self._lock:
            self._state = _State.CLOSED
            pending, self._pending = self._pending, {}
        for item in pending.values():
            _fail(item.future, ClientClosed("the client was closed"))
        if thread is None and self._inbox is not None:
            self._inbox.finish(ClientClosed("the client was closed"))

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
        included. Raises `ConnectionLost` at once if not connected.
        """
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
            state, link = self._state, self._link
        if self._closing.is_set() or state is _State.CLOSED:
            raise ClientClosed("the client is closed")
        if state is not _State.CONNECTED or link is None:
            raise ConnectionLost(
                "not connected; reconnecting" if state is _State.RECONNECTING else "not connected"
            )
        self._transmit(link, command, future)
        return future

    def request(self, command: Command, timeout: float | None = None) -> Event:
        """Send `command` and wait for its reply (untyped; the methods below are typed)."""
        if threading.current_thread() is self._thread:
            raise RuntimeError(
                "a blocking request from the receive thread would wait forever; use submit()"
            )
        future = self.submit(command)
        try:
            return future.result(timeout or self.timeout)
        except FutureTimeout:
            if future.done():
                raise
            raise RequestTimeout(f"no reply to {command.type!r} in time") from None

    def _call(self, command: Command, kind: type[R], timeout: float | None) -> R:
        reply = self.request(command, timeout)
        if not isinstance(reply, kind):  # ClientConnection checks this already
            raise ClientError(f"{command.type!r} was answered by {reply.type!r}")
        return reply

    def join(self, room: str, *, timeout: float | None = None) -> Joined:
        """Enter `room` (created if new): its members, topic and latest messages."""
        with _checked():
            command = Join(room=room)
        reply = self._call(command, Joined, timeout)
        welcome = self._welcome
        if not reply.history and welcome is not None and welcome.limits.history == 0:
            # The server replays no history, so an empty one says nothing about
            # where the room stands: ask, to know where to resume from.
            page = self.history(room, limit=1, timeout=timeout)
            if page.messages:
                self._tracker.raise_floor(room, page.messages[-1].id)
        return reply

    def part(self, room: str, *, timeout: float | None = None) -> Ok:
        """Leave `room`."""
        with _checked():
            command = Part(room=room)
        return self._call(command, Ok, timeout)

    def say(self, room: str, text: str, *, timeout: float | None = None) -> RoomMessage:
        """Send `text` to `room`; returns the stored message (the echo), with its id."""
        with _checked():
            command = Say(room=room, text=text)
        return self._call(command, RoomMessage, timeout)

    def dm(self, nick: str, text: str, *, timeout: float | None = None) -> DirectMessage:
        """Send `text` to the connected client `nick`; returns the delivered message."""
        with _checked():
            command = Dm(to=nick, text=text)
        return self._call(command, DirectMessage, timeout)

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

    def rooms(self, *, timeout: float | None = None) -> RoomList:
        """The rooms that have members, the most populated first."""
        return self._call(Rooms(), RoomList, timeout)

    def members(self, room: str, *, timeout: float | None = None) -> MemberList:
        """Who is in `room` (membership not needed)."""
        with _checked():
            command = Members(room=room)
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

    # -- sending --------------------------------------------------------------------

    def _transmit(self, link: Link, command: Command, future: Future[Event] | None) -> RequestId:
        """Give `command` the next id, register `future` for its reply, and send it."""
        with self._send_lock:
            rid = next(self._ids)
            command = command.model_copy(update={"id": rid})
            if future is not None:
                with self._lock:
                    if self._link is not link and self._setup_link is not link:
                        raise ConnectionLost("the connection was lost")
                    self._pending[rid] = _Pending(command, future)
            try:
                link.send(command)
            except (OSError, LocalProtocolError) as exc:
                with self._lock:
                    self._pending.pop(rid, None)
                if self._closing.is_set():
                    raise ClientClosed("the client is closed") from exc
                raise ConnectionLost(f"cannot send: {exc}") from exc
        return rid

    def _pong(self, link: Link, ping: ServerPing) -> None:
        try:
            with self._send_lock:
                link.send(Pong(token=ping.token))
        except (OSError, LocalProtocolError):
            return  # the reader will see the connection end
        self.pings_answered += 1

    # -- the receive thread -----------------------------------------------------------

    def _run(self) -> None:
        link = self._link
        reason = "closed"
        while link is not None:
            reason, error = self._pump(link)
            link.close()
            closing = self._closing.is_set()
            again = self._policy is not None and not closing
            with self._lock:
                self._link = None
                self._state = _State.RECONNECTING if again else _State.CLOSED
                pending, self._pending = self._pending, {}
            for item in pending.values():
                _fail(
                    item.future,
                    ClientClosed("the client was closed") if closing else ConnectionLost(reason),
                )
            if closing:
                break
            self._emit(Disconnected(reason, error, reconnecting=again))
            link = self._reconnect(self._policy) if self._policy is not None else None
            if link is None and self._closing.is_set():
                reason = "closed"
        with self._lock:
            self._state = _State.CLOSED
        if self._inbox is not None:
            self._inbox.finish(
                ClientClosed("the client was closed")
                if self._closing.is_set()
                else ConnectionLost(reason)
            )

    def _pump(self, link: Link) -> tuple[str, Error | None]:
        """Handle events until the connection ends; say why it ended."""
        fatal: Error | None = None
        try:
            held, link.held = link.held, []
            for event in held:
                self._dispatch(link, event)
            while True:
                event = link.next_event()
                if isinstance(event, Error) and event.fatal:
                    fatal = event
                self._dispatch(link, event)
        except ConnectionLost as exc:
            reason = str(exc)
        except OSError as exc:
            reason = f"connection error: {exc}"
        except ProtocolError as exc:
            reason = f"the server broke the protocol: {exc.message}"
        except Exception as exc:  # a bug here: end this connection, not the thread's cleanup
            log.exception("failed to handle an event")
            reason = f"client error: {exc!r}"
        if fatal is not None:
            reason = f"{fatal.code}: {fatal.message}"
        return reason, fatal

    def _dispatch(self, link: Link, event: Event) -> None:
        ref = getattr(event, "ref", None)
        if ref is not None:
            with self._lock:
                pending = self._pending.pop(ref, None)
            if pending is None:
                log.debug("a reply to a forgotten request: %r", event)
                return
            self._settle(pending, event)
        elif isinstance(event, ServerPing):
            self._pong(link, event)
        elif not isinstance(event, RoomMessage) or self._tracker.fresh(event):
            self._emit(event)

    def _settle(self, pending: _Pending, reply: Event) -> None:
        """Learn from a reply (rooms, nick, last ids seen), then hand it to its future."""
        command = pending.command
        if isinstance(reply, Error):
            _fail(pending.future, ChatError.from_event(reply))
            return
        if isinstance(reply, Joined):
            self._tracker.joined(reply)
            with self._lock:
                self._rooms.add(reply.room)
        elif isinstance(reply, Ok) and isinstance(command, Part):
            self._tracker.forget(command.room)
            with self._lock:
                self._rooms.discard(command.room)
        elif isinstance(reply, Ok) and isinstance(command, Register):
            # Reconnections must now prove the nick is ours.
            self._hello = self._hello.model_copy(update={"password": command.password})
        elif isinstance(reply, RoomMessage):
            self._tracker.fresh(reply)
        elif isinstance(reply, Renamed):
            if isinstance(command, Nick) and reply.old.lower() != reply.new.lower():
                # Another nick: its password (or none) is the one to reconnect with.
                self._hello = self._hello.model_copy(update={"password": command.password})
            self._nick = reply.new
        with contextlib.suppress(InvalidStateError):
            pending.future.set_result(reply)

    def _emit(self, event: ClientEvent) -> None:
        if self._on_event is not None:
            try:
                self._on_event(event)
            except Exception:
                log.exception("the on_event callback failed on %r", event)
        if self._inbox is not None:
            self._inbox.put(event)

    # -- handshake and reconnection (receive thread, or connect()) -----------------------

    def _exchange(self, link: Link, command: Command, deadline: float) -> Event:
        """Send `command` and read until its reply, setting other events aside."""
        if self._pacer is not None:
            delay = self._pacer.reserve()
            if delay > 0 and self._closing.wait(delay):
                raise ClientClosed("the client was closed")
        rid = self._transmit(link, command, None)
        while True:
            event = link.next_event(deadline)
            if getattr(event, "ref", None) == rid:
                if isinstance(event, Error):
                    raise ChatError.from_event(event)
                return event
            if isinstance(event, ServerPing):
                self._pong(link, event)
            elif isinstance(event, Error) and event.fatal:
                raise ChatError.from_event(event)
            else:
                link.held.append(event)

    def _greet(self, link: Link, deadline: float) -> Welcome:
        hello = self._hello.model_copy(update={"nick": self._nick})
        welcome = self._exchange(link, hello, deadline)
        assert isinstance(welcome, Welcome)  # ClientConnection checks the reply's type
        self._welcome = welcome
        self._nick = welcome.nick
        if self._pacer is not None:
            self._pacer.configure(welcome.limits.rate, welcome.limits.burst)
        return welcome

    def _rejoin(self, link: Link, deadline: float) -> tuple[list[Joined], list[RoomMessage]]:
        """Join every room again and fetch what each missed, oldest first per room."""

        def fetch(command: History) -> HistoryPage:
            page = self._exchange(link, command, deadline)
            assert isinstance(page, HistoryPage)
            return page

        replies: list[Joined] = []
        recovered: list[RoomMessage] = []
        for room in sorted(self.joined_rooms):
            joined = self._exchange(link, Join(room=room), deadline)
            assert isinstance(joined, Joined)
            replies.append(joined)
            recovered.extend(missed(room, self._tracker.resume_point(room), joined, fetch))
        return replies, recovered

    def _open_any(self, timeout: float) -> Link:
        """Connect to the current server, else to each fallback in turn; the one
        that answers becomes current."""
        start = self._addresses.index((self.host, self.port))
        failure: OSError | TimeoutError | None = None
        for i in range(len(self._addresses)):
            host, port = self._addresses[(start + i) % len(self._addresses)]
            try:
                link = Link.open(host, port, timeout, self._closing, self._tls_context)
            except TlsError:
                raise
            except (OSError, TimeoutError) as exc:
                failure = exc
                continue
            self.host, self.port = host, port
            return link
        assert failure is not None
        raise failure

    def _reconnect(self, policy: ReconnectPolicy) -> Link | None:
        """Connect again until it works, the policy gives up, or the client is closed."""
        error: str | None = None
        for attempt, delay in enumerate(policy.delays(), start=1):
            if policy.attempts is not None and attempt > policy.attempts:
                self._emit(Disconnected(f"gave up after {policy.attempts} attempts: {error}"))
                return None
            self._emit(Reconnecting(attempt, delay, error))
            if self._closing.wait(delay):
                return None
            link: Link | None = None
            try:
                deadline = time.monotonic() + policy.timeout
                link = self._open_any(policy.timeout)
                with self._lock:
                    self._setup_link = link
                if self._closing.is_set():
                    return None
                welcome = self._greet(link, deadline)
                rooms, recovered = self._rejoin(link, deadline)
            except ChatError as exc:
                error = f"{exc.code}: {exc.message}"
                if exc.code in _HOPELESS:
                    self._emit(Disconnected(f"cannot reconnect: {error}"))
                    return None
            except (ClientError, OSError, ProtocolError) as exc:
                error = str(exc) or type(exc).__name__
            else:
                with self._lock:
                    self._setup_link = None
                    if not self._closing.is_set():
                        self._link, self._state = link, _State.CONNECTED
                if self._closing.is_set():
                    link.close()
                    return None
                self._emit(Reconnected(welcome, attempt, tuple(rooms), len(recovered)))
                for message in recovered:
                    if self._tracker.fresh(message):
                        self._emit(message)
                return link
            finally:
                if link is not None and self._link is not link:
                    with self._lock:
                        self._setup_link = None
                    link.close()
            if self._closing.is_set():
                return None
        return None  # pragma: no cover - delays() never ends
