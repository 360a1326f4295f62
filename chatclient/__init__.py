"""chatclient: a client library for the chat protocol, and a terminal client.

    from chatclient import Client

    with Client("bot", host="127.0.0.1", port=7878) as client:
        client.join("lobby")
        client.say("lobby", "hello")
        for event in client.events():
            ...

PROTOCOL.md is the protocol; `chatproto` holds its messages, which the
request methods return and the event stream carries.
"""

from chatclient.client import CLIENT_NAME, Client
from chatclient.errors import (
    ChatError,
    ClientClosed,
    ClientError,
    ConnectionLost,
    InvalidRequest,
    RequestTimeout,
    TlsCertificateError,
    TlsError,
)
from chatclient.events import (
    ClientEvent,
    Disconnected,
    EventsDropped,
    LibraryEvent,
    Reconnected,
    Reconnecting,
    RejoinFailed,
)
from chatclient.policy import ReconnectPolicy

__all__ = [
    "CLIENT_NAME",
    "ChatError",
    "Client",
    "ClientClosed",
    "ClientError",
    "ClientEvent",
    "ConnectionLost",
    "Disconnected",
    "EventsDropped",
    "InvalidRequest",
    "LibraryEvent",
    "ReconnectPolicy",
    "Reconnected",
    "Reconnecting",
    "RejoinFailed",
    "RequestTimeout",
    "TlsCertificateError",
    "TlsError",
]
