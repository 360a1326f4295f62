"""What each command does: the protocol's semantics, one method per command."""

from __future__ import annotations

import hmac
import logging
import math
from collections.abc import Callable
from typing import Any

from chatproto import (
    PROTOCOL_VERSION,
    Bye,
    Command,
    Dm,
    Error,
    ErrorCode,
    Event,
    Hello,
    History,
    HistoryPage,
    Join,
    LeaveReason,
    Limits,
    MemberList,
    Members,
    Nick,
    Ok,
    Part,
    Ping,
    Pong,
    PongReply,
    Register,
    Renamed,
    RequestId,
    RoomList,
    Rooms,
    Say,
    SetTopic,
    Welcome,
    encode,
)
from chatserver.accounts import LoginThrottle, hash_password, verify_password
from chatserver.backend import Backend, JoinRefused, Unavailable
from chatserver.config import ServerConfig
from chatserver.hub import Hub, fold
from chatserver.logs import log_failure
from chatserver.session import Session

__all__ = ["Handler"]

log = logging.getLogger(__name__)


class Handler:
    """Carries out commands for sessions; `handle` says whether to keep reading."""

    def __init__(self, config: ServerConfig, hub: Hub, backend: Backend) -> None:
        self._config = config
        self._hub = hub
        self._backend = backend
        self._throttle = LoginThrottle(config.auth_failures, config.auth_window)
        self._limits = Limits(
            max_frame=config.max_frame,
            max_text=config.max_text,
            rate=config.rate,
            burst=config.burst,
            history=config.history,
            ping_interval=config.ping_interval,
            ping_timeout=config.ping_timeout,
            handshake_timeout=config.handshake_timeout,
            soft_limit=config.soft_limit,
            soft_seconds=config.soft_seconds,
            hard_limit=config.hard_limit,
            max_rooms=config.max_rooms,
            max_members=config.max_members,
            large_room=config.large_room,
        )
        self._commands: dict[str, Callable[[Session, Any], bool]] = {
            "hello": self._hello,
            "join": self._join,
            "part": self._part,
            "say": self._say,
            "dm": self._dm,
            "nick": self._nick,
            "register": self._register,
            "rooms": self._rooms,
            "members": self._members,
            "topic": self._topic,
            "history": self._history,
            "ping": self._ping,
            "pong": self._pong,
            "bye": self._bye,
        }

    def handle(self, session: Session, item: Command) -> bool:
        """Carry out one command that the reader has charged to the client."""
        try:
            return self._commands[item.type](session, item)
        except Unavailable as exc:
            log.warning(
                "%s: %r refused: the shared state is unreachable: %s", session.id, item.type, exc
            )
            return self._fail(
                session,
                ErrorCode.UNAVAILABLE,
                "the server cannot reach its shared state; try again soon",
                item.id,
                fatal=not session.welcomed,
            )
        except Exception:
            log_failure(log, "%s: failed to handle %r", session.id, item.type)
            self._fail(session, ErrorCode.INTERNAL_ERROR, "the server failed to do that", item.id)
            return True

    def _reply(self, session: Session, event: Event) -> bool:
        self._hub.send(session, event)
        return True

    def _fail(
        self,
        session: Session,
        code: ErrorCode,
        message: str,
        ref: RequestId | None,
        *,
        fatal: bool = False,
    ) -> bool:
        self._hub.send(session, Error(ref=ref, code=code.value, message=message, fatal=fatal))
        return not fatal

    # -- handshake -----------------------------------------------------------

    def _hello(self, session: Session, cmd: Hello) -> bool:
        # MAJOR.MINOR are decimal numbers: "01.2" is 1.2 (PROTOCOL.md section 5).
        major = int(cmd.version.split(".", 1)[0])
        if major != int(PROTOCOL_VERSION.split(".", 1)[0]):
            return self._fail(
                session,
                ErrorCode.UNSUPPORTED_VERSION,
                f"this server speaks protocol {PROTOCOL_VERSION} and every 1.x",
                cmd.id,
                fatal=True,
            )
        if not self._server_password_ok(session, cmd):
            return False
        if not self._password_ok(session, cmd.nick, cmd.password, cmd.id, fatal=True):
            return False
        # A resume token that does not take over a session is ignored (PROTOCOL.md 1.3).
        resumed = cmd.resume is not None and self._backend.resume(session, cmd.nick, cmd.resume)
        if not resumed and not self._backend.claim(session, cmd.nick):
            return self._fail(
                session, ErrorCode.NICK_IN_USE, f"nick {cmd.nick!r} is in use", cmd.id, fatal=True
            )
        nick = session.nick or cmd.nick
        how = "resumed" if resumed else "hello"
        label = f" ({cmd.client})" if cmd.client is not None else ""
        log.info("%s: %s from %s as %s%s", session.id, how, session.peer, nick, label)
        self._hub.send(
            session,
            Welcome(
                ref=cmd.id,
                session=session.id,
                nick=nick,
                server=self._config.name,
                version=PROTOCOL_VERSION,
                limits=self._limits,
                motd=self._config.motd,
                epoch=self._backend.epoch(),
                resume=self._hub.issue_token(session),
                resumed=resumed,
            ),
        )
        session.welcomed = True
        return True

    def _server_password_ok(self, session: Session, cmd: Hello) -> bool:
        expected = self._config.server_password
        if expected is None:
            return True
        if self._throttled(session, cmd.id, fatal=True):
            return False
        given = (cmd.server_password or "").encode()
        if hmac.compare_digest(given, expected.encode()):
            return True
        self._throttle.failed(session.host)
        log.warning("%s: wrong or missing server password from %s", session.id, session.peer)
        self._fail(
            session,
            ErrorCode.AUTH_FAILED,
            "wrong server password",
            cmd.id,
            fatal=True,
        )
        return False

    def _password_ok(
        self,
        session: Session,
        nick: str,
        password: str | None,
        ref: RequestId | None,
        *,
        fatal: bool,
    ) -> bool:
        """Whether `nick` may be used: it is not registered, or `password` is its own."""
        stored = self._backend.account(fold(nick))
        if stored is None:
            return True
        if self._throttled(session, ref, fatal=fatal):
            return False
        if password is not None and verify_password(password, stored):
            return True
        self._throttle.failed(session.host)
        log.warning("%s: failed login as %s from %s", session.id, nick, session.peer)
        self._fail(
            session,
            ErrorCode.AUTH_FAILED,
            f"nick {nick!r} is registered: the password is wrong or missing",
            ref,
            fatal=fatal,
        )
        return False

    def _throttled(self, session: Session, ref: RequestId | None, *, fatal: bool) -> bool:
        wait = self._throttle.wait(session.host)
        if wait <= 0:
            return False
        self._fail(
            session,
            ErrorCode.AUTH_FAILED,
            f"too many failed logins from your address; try again in {math.ceil(wait)} s",
            ref,
            fatal=fatal,
        )
        return True

    def _register(self, session: Session, cmd: Register) -> bool:
        assert session.nick is not None
        if self._backend.account(fold(session.nick)) is not None:
            return self._fail(
                session,
                ErrorCode.ALREADY_REGISTERED,
                f"nick {session.nick!r} is registered already",
                cmd.id,
            )
        if not self._backend.register(fold(session.nick), hash_password(cmd.password)):
            return self._fail(
                session, ErrorCode.INTERNAL_ERROR, "the account could not be stored", cmd.id
            )
        log.info("%s: registered nick %s", session.id, session.nick)
        return self._reply(session, Ok(ref=cmd.id))

    def _bye(self, session: Session, cmd: Bye) -> bool:
        session.end(LeaveReason.QUIT, "bye")
        self._reply(session, Ok(ref=cmd.id))
        return False

    # -- rooms -----------------------------------------------------------------

    def _join(self, session: Session, cmd: Join) -> bool:
        config = self._config
        if cmd.room not in session.rooms and len(session.rooms) >= config.max_rooms:
            return self._fail(
                session,
                ErrorCode.TOO_MANY_ROOMS,
                f"you are in {config.max_rooms} rooms, the most this server allows",
                cmd.id,
            )
        try:
            self._backend.join(session, cmd.room, cmd.id)
        except JoinRefused:
            capacity = config.max_members
            return self._fail(
                session,
                ErrorCode.ROOM_FULL,
                f"room {cmd.room!r} has {capacity} members, the most allowed",
                cmd.id,
            )
        return True

    def _part(self, session: Session, cmd: Part) -> bool:
        if not self._backend.part(session, cmd.room):
            return self._not_in(session, cmd.room, cmd.id)
        return self._reply(session, Ok(ref=cmd.id))

    def _say(self, session: Session, cmd: Say) -> bool:
        if not self._text_ok(session, cmd.text, cmd.id):
            return True
        if cmd.room not in session.rooms:
            return self._not_in(session, cmd.room, cmd.id)
        self._backend.post(session, cmd.room, cmd.text, cmd.id, cmd.key)
        return True

    def _topic(self, session: Session, cmd: SetTopic) -> bool:
        if cmd.room not in session.rooms:
            return self._not_in(session, cmd.room, cmd.id)
        # The reply to `topic` must precede the replies to later commands
        # (PROTOCOL.md section 4: only say and dm echoes may come late).
        self._backend.set_topic(session, cmd.room, cmd.topic, cmd.id)
        return True

    def _rooms(self, session: Session, cmd: Rooms) -> bool:
        rooms, more = self._backend.room_list(cmd.after, cmd.limit)
        reply = RoomList.model_construct(ref=cmd.id, rooms=rooms, more=more)
        if len(encode(reply)) - 1 > self._config.max_frame:
            # The longest prefix that fits (PROTOCOL.md 6.6): `fits` rows do, `over` do not.
            fits, over = 0, len(rooms)
            while over - fits > 1:
                mid = (fits + over) // 2
                if (
                    len(encode(RoomList.model_construct(ref=cmd.id, rooms=rooms[:mid], more=True)))
                    - 1
                    <= self._config.max_frame
                ):
                    fits = mid
                else:
                    over = mid
            reply = RoomList.model_construct(ref=cmd.id, rooms=rooms[:fits], more=True)
        return self._reply(session, reply)

    def _members(self, session: Session, cmd: Members) -> bool:
        page = self._backend.members(cmd.room, cmd.after, cmd.limit)
        if page is None:
            return self._no_room(session, cmd.room, cmd.id)
        members, count, more = page
        reply = MemberList.model_construct(
            ref=cmd.id, room=cmd.room, members=members, count=count, more=more
        )
        while len(members) > 1 and len(encode(reply)) - 1 > self._config.max_frame:
            # The first members that fit; the rest is on the next page.
            members = members[: len(members) // 2]
            reply = MemberList.model_construct(
                ref=cmd.id, room=cmd.room, members=members, count=count, more=True
            )
        return self._reply(session, reply)

    def _history(self, session: Session, cmd: History) -> bool:
        page = self._backend.history(cmd.room, before=cmd.before, after=cmd.after, limit=cmd.limit)
        if page is None:
            return self._no_room(session, cmd.room, cmd.id)
        messages, more = page
        reply = HistoryPage(ref=cmd.id, room=cmd.room, messages=messages, more=more)
        while reply.messages and len(encode(reply)) > self._config.max_frame:
            # Keep the messages nearest the point asked from.
            half = len(reply.messages) // 2
            kept = reply.messages[:half] if cmd.after is not None else reply.messages[-half:]
            reply = HistoryPage(ref=cmd.id, room=cmd.room, messages=kept if half else [], more=True)
        return self._reply(session, reply)

    # -- people ------------------------------------------------------------------

    def _dm(self, session: Session, cmd: Dm) -> bool:
        if not self._text_ok(session, cmd.text, cmd.id):
            return True
        if not self._backend.direct(session, cmd.to, cmd.text, cmd.id, cmd.key):
            return self._fail(
                session, ErrorCode.NO_SUCH_NICK, f"nobody is connected as {cmd.to!r}", cmd.id
            )
        return True

    def _nick(self, session: Session, cmd: Nick) -> bool:
        assert session.nick is not None
        if cmd.nick == session.nick:
            # Nothing changes: the renamer alone is answered (PROTOCOL.md 6.5).
            return self._reply(session, Renamed(ref=cmd.id, old=cmd.nick, new=cmd.nick))
        if fold(cmd.nick) != fold(session.nick) and not self._password_ok(
            session, cmd.nick, cmd.password, cmd.id, fatal=False
        ):
            return True
        if not self._backend.rename(session, cmd.nick, cmd.id):
            return self._fail(
                session, ErrorCode.NICK_IN_USE, f"nick {cmd.nick!r} is in use", cmd.id
            )
        return True

    # -- liveness ----------------------------------------------------------------

    def _ping(self, session: Session, cmd: Ping) -> bool:
        return self._reply(session, PongReply(ref=cmd.id, token=cmd.token))

    def _pong(self, session: Session, cmd: Pong) -> bool:
        # Any frame proves the client alive; the housekeeper sees `last_frame`.
        return True

    # -- errors ------------------------------------------------------------------

    def _text_ok(self, session: Session, text: str, ref: RequestId | None) -> bool:
        if len(text) <= self._config.max_text:
            return True
        self._fail(
            session,
            ErrorCode.INVALID_FIELDS,
            f"text is longer than this server's limit of {self._config.max_text} characters",
            ref,
        )
        return False

    def _not_in(self, session: Session, room: str, ref: RequestId | None) -> bool:
        return self._fail(session, ErrorCode.NOT_IN_ROOM, f"you are not in room {room!r}", ref)

    def _no_room(self, session: Session, room: str, ref: RequestId | None) -> bool:
        return self._fail(session, ErrorCode.NO_SUCH_ROOM, f"there is no room {room!r}", ref)
