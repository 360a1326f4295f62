"""The exceptions a `Client` raises, so callers can tell whose fault a failure was.

`ChatError` is the server saying no (it carries the protocol's error code);
`ConnectionLost` is the network failing (`TlsError` and
`TlsCertificateError` the TLS layer); `RequestTimeout` is the server not
answering in time. All derive from `ClientError`.
"""

from __future__ import annotations

from chatproto import Error, ErrorCode, RequestId

__all__ = [
    "ChatError",
    "ClientClosed",
    "ClientError",
    "ConnectionLost",
    "InvalidRequest",
    "RequestTimeout",
    "TlsCertificateError",
    "TlsError",
]


class ClientError(Exception):
    """Base of every error raised by `chatclient`."""


class ChatError(ClientError):
    """The server refused a request; `code` is the protocol's error code.

    `code` is a plain string because PROTOCOL.md requires unknown codes to be
    accepted; compare it with `chatproto.ErrorCode` members (a `StrEnum`).
    """

    def __init__(
        self, code: str, message: str, *, fatal: bool = False, ref: RequestId | None = None
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.fatal = fatal
        self.ref = ref

    @classmethod
    def from_event(cls, event: Error) -> ChatError:
        return cls(event.code, event.message, fatal=event.fatal, ref=event.ref)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, message={self.message!r})"


class InvalidRequest(ChatError):
    """A request the protocol forbids, refused locally before it was sent.

    Raised with code `invalid_fields`, the code the server would have used, so
    callers handle it like the server's own refusal.
    """

    def __init__(self, message: str) -> None:
        super().__init__(ErrorCode.INVALID_FIELDS.value, message)


class ConnectionLost(ClientError):
    """There is no connection: it broke while waiting, or is being re-established."""


class ClientClosed(ConnectionLost):
    """The client was closed with `close()`; it cannot be used again."""


class RequestTimeout(ClientError, TimeoutError):
    """No reply arrived in time. The request may still be carried out."""


class TlsError(ConnectionLost, ConnectionError):
    """The TLS connection could not be set up or broke: e.g. the port does not speak TLS."""


class TlsCertificateError(TlsError):
    """The server's certificate was refused: not signed by a trusted authority,
    expired, or not valid for the host name connected to. No chat data was sent."""
