"""One WebSocket (RFC 6455) carrying the chat protocol, driven by wsproto.

The protocol is the same as on a TCP connection; only the framing differs: each
WebSocket text message carries one frame, without its LF (PROTOCOL.md section
17; one LF at its end is allowed and dropped). Inbound, messages
are turned back into LF-terminated frames for the session's `ServerConnection`
(a raw LF inside a message becomes a tab: both are JSON whitespace, and both
are invalid inside a JSON string, so the frame means the same); the frame
decoder then enforces `max_frame` on each message as it arrives, without
holding more of it. Outbound, the writer thread hands `seal` the same joined
frames it would send to a TCP client, and gets them back as text messages.
Broadcasts are queued once for every member; the last buffer framed by a
writer thread is remembered, so a broadcast that reaches many WebSocket
members is framed once, not once per member.

The reader thread (`receive`) and the writer thread (`seal`) share the wsproto
connection under a small lock, like `TlsChannel`. Control frames the reader
must answer (pongs, coalesced: only the last ping is answered) wait in
`_control` until the writer's next `seal`. The close frame is sent by `seal`
once the connection is finishing and everything queued before it is framed.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from enum import IntEnum

from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Ping,
    Pong,
    RejectConnection,
    Request,
    TextMessage,
)
from wsproto.frame_protocol import FrameProtocol
from wsproto.utilities import RemoteProtocolError

__all__ = ["CloseCode", "WebSocketChannel", "frame_messages"]


class CloseCode(IntEnum):
    """The close codes this server sends (RFC 6455 section 7.4.1)."""

    NORMAL = 1000  # the session ended with `bye`, or the client closed
    GOING_AWAY = 1001  # the server is shutting down
    PROTOCOL_ERROR = 1002  # broken WebSocket framing
    UNSUPPORTED_DATA = 1003  # a binary message
    INVALID_DATA = 1007  # a text message that is not UTF-8
    POLICY_VIOLATION = 1008  # a fatal protocol error: rate limit, slow consumer, timeout...
    MESSAGE_TOO_BIG = 1009  # a message longer than max_frame
    INTERNAL_ERROR = 1011


_TOO_MANY = "too many WebSocket frames"

_local = threading.local()  # one framer and one remembered buffer per writer thread


def frame_messages(data: bytes) -> bytes:
    """LF-terminated frames as WebSocket text messages, one per frame."""
    if getattr(_local, "last_in", None) is data:
        out: bytes = _local.last_out
        return out
    framer: FrameProtocol | None = getattr(_local, "framer", None)
    if framer is None:
        framer = _local.framer = FrameProtocol(client=False, extensions=[])
    frames = data.split(b"\n")
    frames.pop()  # what follows the last LF: nothing
    out = b"".join([framer.send_data(frame.decode("utf-8")) for frame in frames])
    _local.last_in, _local.last_out = data, out
    return out


class WebSocketChannel:
    """The WebSocket layer of one connection, from its upgrade request to its close frame."""

    def __init__(self, *, charge: Callable[[], bool]) -> None:
        """`charge` spends a rate-limit token. Frames that carry no protocol frame
        of their own (pings, pongs, fragments that do not end a message) each cost
        one, so that they cannot cost the server without limit; a client that has
        none left is closed (1008)."""
        self._ws = WSConnection(ConnectionType.SERVER)
        self._lock = threading.Lock()
        self._charge = charge
        self._control = b""  # handshake response, pong: sent before the next data
        self._ping: Ping | None = None  # the last ping not yet answered
        self._close_sent = False
        self.open = False
        self.closed = False  # input has ended: the peer closed, or broke the rules
        self.close_code: int | None = None  # set when the input ended with a close code to send
        self.close_reason = ""

    # -- handshake (reader thread, before anything else uses the channel) ------

    def upgrade(
        self, headers: list[tuple[bytes, bytes]], target: str, trailing: bytes
    ) -> tuple[bool, bytes]:
        """Answer the upgrade request already read: accepted or not, and the
        bytes of the first `receive` (the frames that came right behind the request).

        Extensions are never accepted: permessage-deflate would compress each
        message for each connection, where a broadcast is now encoded once.
        """
        with self._lock:
            try:
                self._ws.initiate_upgrade_connection(headers, target)
                events = list(self._ws.events())
            except RemoteProtocolError as exc:
                hint = exc.event_hint
                reject = hint if isinstance(hint, RejectConnection) else RejectConnection()
                self._control += self._ws.send(reject)
                return False, b""
            assert len(events) == 1 and isinstance(events[0], Request)
            self._control += self._ws.send(AcceptConnection(extensions=[]))
            self.open = True
        return True, trailing

    # -- input (reader thread) ---------------------------------------------

    def receive(self, data: bytes) -> bytes:
        """Frames for the protocol decoder, from WebSocket bytes; sets `closed`
        (and the close code) when the input has ended."""
        out: list[bytes] = []
        with self._lock:
            if self.closed:
                return b""
            try:
                self._ws.receive_data(data)
                for event in self._ws.events():
                    if isinstance(event, TextMessage):
                        text = event.data
                        if event.message_finished:
                            text = text.removesuffix("\n")  # the LF a frame ends with on TCP
                        out.append(text.encode("utf-8").replace(b"\n", b"\t"))
                        if event.message_finished:
                            out.append(b"\n")
                        elif event.frame_finished and not self._charge():
                            self._end(CloseCode.POLICY_VIOLATION, _TOO_MANY)
                            break
                    elif isinstance(event, BytesMessage):
                        self._end(CloseCode.UNSUPPORTED_DATA, "binary messages are not accepted")
                        break
                    elif isinstance(event, Ping | Pong):
                        if not self._charge():
                            self._end(CloseCode.POLICY_VIOLATION, _TOO_MANY)
                            break
                        if isinstance(event, Ping):
                            self._ping = event
                    elif isinstance(event, CloseConnection):
                        self._end(event.code, "")
                        break
            except RemoteProtocolError:
                self._end(CloseCode.PROTOCOL_ERROR, "broken WebSocket framing")
        return b"".join(out)

    @property
    def has_output(self) -> bool:
        """Control frames wait for the writer."""
        return bool(self._control) or self._ping is not None

    def _end(self, code: int, reason: str) -> None:
        self.closed = True
        if self.close_code is None:
            self.close_code = code
            self.close_reason = reason

    # -- output (writer thread) --------------------------------------------

    def seal(self, data: bytes, close: int | None = None) -> bytes:
        """Bytes to send for `data` (joined frames): waiting control frames, then
        `data` as text messages; with a `close` code, the close frame (once: the
        input's own code if it ended with one), after which nothing more is sent."""
        with self._lock:
            out = self._control
            if out:
                self._control = b""
            if not self.open or self._close_sent:
                return out
            ping = self._ping
            if ping is not None:
                self._ping = None
                out += self._ws.send(ping.response())
            if data:
                out += frame_messages(data)
            if close is not None:
                self._close_sent = True
                # wsproto answers a close without a code (1005) with none.
                out += self._ws.send(
                    CloseConnection(
                        code=self.close_code if self.close_code is not None else close,
                        reason=self.close_reason or None,
                    )
                )
            return out
