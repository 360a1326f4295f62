"""How a cluster node talks to Redis: the client it uses, and what an outage raises.

redis-py annotates replies as bytes or text alike; this client always
decodes to text (`decode_responses`), so it is handed around as `Any` and its
replies are read as the text they are.
"""

from __future__ import annotations

import logging
from typing import Any

import redis
import redis.exceptions

from chatproto import RoomMessage

__all__ = ["OUTAGES", "Entry", "OutageLog", "connect", "entry_number", "message_of"]

# What a lost, restarting or loading Redis raises; anything else is a fault of ours.
OUTAGES = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    redis.exceptions.BusyLoadingError,
)

Entry = tuple[str, dict[str, str]]  # a stream entry: its id and its fields


def connect(url: str, *, timeout: float = 5.0, connections: int = 32) -> Any:
    """A client for `url` that answers in text and gives up after `timeout` seconds.

    Its threads share at most `connections` connections: a thread waits (up to
    `timeout`) for one to be free rather than open another, so a burst of
    logins does not become a burst of connections to Redis."""
    pool = redis.BlockingConnectionPool.from_url(
        url,
        max_connections=connections,
        timeout=timeout,
        decode_responses=True,
        protocol=2,
        socket_timeout=timeout,
        socket_connect_timeout=min(timeout, 2.0),
    )
    return redis.Redis(connection_pool=pool)


def entry_number(entry_id: str) -> int:
    """The number of a stream entry id `<n>-0`: for a room message, its id."""
    return int(entry_id.partition("-")[0])


def message_of(room: str, entry_id: str, fields: dict[str, str]) -> RoomMessage:
    """The room message a stream entry of kind `m` holds (validated when it was sent)."""
    return RoomMessage.model_construct(
        id=entry_number(entry_id),
        room=room,
        nick=fields["nick"],
        text=fields["text"],
        ts=int(fields["ts"]),
    )


class OutageLog:
    """Says once that Redis went out of reach for a thread, and once that it came back."""

    def __init__(self, log: logging.Logger, who: str) -> None:
        self._log = log
        self._who = who
        self._down = False

    def down(self, exc: Exception) -> None:
        if not self._down:
            self._log.warning("Redis unreachable; %s retrying: %s", self._who, exc)
            self._down = True

    def up(self) -> None:
        if self._down:
            self._log.info("Redis reachable again; %s resumed", self._who)
            self._down = False
