"""The one interface between the protocol's commands and the state they change.

The handler checks a command (rate, limits, passwords) and then asks a back
end to carry it out: `LocalBackend` (one process: the hub, the sequencer and
a store) or `ClusterBackend` (several processes sharing rooms through Redis).
A back end queues its replies and events itself, so that each reaches the
client in the order the state changed.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

from chatproto import LeaveReason, RequestId, RoomInfo, RoomMessage
from chatserver.session import Session

__all__ = ["Backend", "JoinRefused", "Unavailable"]


class Unavailable(Exception):
    """The shared state cannot be reached now; the command was not carried out."""


class JoinRefused(Exception):
    """The room has as many members as it may have."""


class Backend(ABC):
    """Nicks, rooms, messages and accounts, as every connection sees them."""

    @abstractmethod
    def start(self) -> None:
        """Start the threads the back end runs on."""

    @abstractmethod
    def stop(self) -> None:
        """Finish queued work and end those threads (the store is closed by its owner)."""

    @abstractmethod
    def claim(self, session: Session, nick: str) -> bool:
        """Give `session` its first nick; False if someone has it."""

    @abstractmethod
    def resume(self, session: Session, nick: str, token: str) -> bool:
        """Let `session` take over the session the resume `token` names, if that one
        is still on and has `nick`: its nick and rooms, silently; the old
        connection gets the fatal `replaced`. False (nothing done) otherwise."""

    @abstractmethod
    def epoch(self) -> str:
        """The generation of the stored state (PROTOCOL.md 13)."""

    @abstractmethod
    def join(self, session: Session, room: str, ref: RequestId | None) -> None:
        """Add `session` to `room` (created if new) and queue its `joined`.

        Raises JoinRefused when the room is full."""

    @abstractmethod
    def part(self, session: Session, room: str) -> bool:
        """Take `session` out of `room`; False if it was not in it."""

    @abstractmethod
    def post(
        self, session: Session, room: str, text: str, ref: RequestId | None, key: str | None
    ) -> None:
        """Store and fan out a room message; the echo to the sender is its acknowledgement.
        A `key` the sender's nick used lately gets the original echo instead."""

    @abstractmethod
    def set_topic(self, session: Session, room: str, topic: str, ref: RequestId | None) -> None:
        """Store and announce a topic; returns once the sender's reply is queued."""

    @abstractmethod
    def direct(
        self, session: Session, to: str, text: str, ref: RequestId | None, key: str | None
    ) -> bool:
        """Deliver a direct message; False if nobody is connected as `to`. A `key`
        the sender's nick used lately gets the original echo instead."""

    @abstractmethod
    def rename(self, session: Session, new: str, ref: RequestId | None) -> bool:
        """Change `session`'s nick and tell who shares a room; False if taken."""

    @abstractmethod
    def room_list(self, after: str | None, limit: int) -> tuple[list[RoomInfo], bool]:
        """Up to `limit` rooms with members, named after `after`, in name order,
        and whether more follow."""

    @abstractmethod
    def members(
        self, room: str, after: str | None, limit: int
    ) -> tuple[list[str], int, bool] | None:
        """Up to `limit` nicks in `room` after `after` in folded order, how many
        members it has and whether more follow; None if it never existed."""

    @abstractmethod
    def history(
        self, room: str, *, before: int | None, after: int | None, limit: int
    ) -> tuple[list[RoomMessage], bool] | None:
        """A page of `room`'s stored messages, or None if it never existed."""

    @abstractmethod
    def account(self, nick: str) -> str | None:
        """The password hash of a registered (folded) nick, or None."""

    @abstractmethod
    def register(self, nick: str, password_hash: str) -> bool:
        """Store an account; False if it could not be stored."""

    @abstractmethod
    def remove(self, session: Session, reason: LeaveReason, *, tell: bool) -> None:
        """Forget a connection that has ended; with `tell`, its rooms hear why."""
