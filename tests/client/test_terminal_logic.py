"""The terminal client's pure parts: parsing typed lines, rendering events."""

from __future__ import annotations

from typing import NoReturn, cast

import pytest

from chatclient import Client, ConnectionLost, Disconnected, Reconnected, RejoinFailed
from chatclient.cli import sanitize_nick
from chatclient.commands import (
    ChangeNick,
    Help,
    Invalid,
    JoinRoom,
    ListRooms,
    PartRoom,
    PrivateMessage,
    Quit,
    Reconnect,
    RegisterNick,
    SayText,
    ShowHistory,
    Switch,
    Topic,
    Who,
    is_secret,
    parse_line,
)
from chatclient.controller import MAX_UNSENT, Controller, problem
from chatclient.output import TextOutput
from chatclient.render import (
    event_lines,
    nick_style,
    reply_lines,
    to_ansi,
    to_json,
    to_plain,
)
from chatproto import (
    DirectMessage,
    Error,
    Joined,
    LeaveReason,
    Limits,
    MemberCount,
    MemberJoined,
    MemberLeft,
    MemberList,
    Part,
    Renamed,
    RoomMessage,
    TopicChanged,
    Welcome,
    parse_event,
)

NOON = 1_764_072_000.0  # any fixed moment


@pytest.mark.parametrize(
    ("line", "action"),
    [
        ("hello", SayText("hello")),
        ("  spaced  ", SayText("  spaced  ")),
        ("//not a command", SayText("/not a command")),
        ("/join Dev", JoinRoom("dev")),
        ("/join #dev", JoinRoom("dev")),
        ("/part", PartRoom(None)),
        ("/part dev", PartRoom("dev")),
        ("/msg bob are you there?", PrivateMessage("bob", "are you there?")),
        ("/nick alice_away", ChangeNick("alice_away")),
        # A name is the rest of the line: a mistyped one is refused whole, never cut.
        ("/nick bad nick!", ChangeNick("bad nick!")),
        ("/join bad room!", JoinRoom("bad room!")),
        ("/register correct horse", RegisterNick("correct horse")),
        ("/nick", Invalid("usage: /nick NEW")),
        ("/say exit", SayText("exit")),
        ("/say  /not a command ", SayText(" /not a command ")),
        ("/say", Invalid("usage: /say TEXT")),
        ("/reconnect", Reconnect()),
        ("/register", Invalid("usage: /register PASSWORD")),
        ("/who", Who(None)),
        ("/who lobby", Who("lobby")),
        ("/rooms", ListRooms()),
        ("/topic", Topic(None)),
        ("/topic Release day", Topic("Release day")),
        ("/history", ShowHistory(20)),
        ("/history 5", ShowHistory(5)),
        ("/switch dev", Switch("dev")),
        ("/quit", Quit()),
        ("exit", Quit()),
        ("/help", Help()),
        ("/join", Invalid("usage: /join ROOM")),
        ("/msg bob", Invalid("usage: /msg NICK TEXT")),
        ("/history 500", Invalid("usage: /history [N], N from 1 to 100")),
        ("/frobnicate", Invalid("unknown command /frobnicate; /help lists the commands")),
    ],
)
def test_parse_line(line: str, action: object) -> None:
    assert parse_line(line + "\n") == action


def test_passwords_stay_out_of_reprs() -> None:
    assert "hunter22" not in repr(parse_line("/register hunter22"))
    assert is_secret("/register hunter22") and is_secret("  /REGISTER x")
    assert not is_secret("/nick bob") and not is_secret("register me")


def test_blank_lines_do_nothing() -> None:
    assert parse_line("\n") is None and parse_line("   ") is None


def test_problems_are_explained_before_sending() -> None:
    assert problem(SayText("fine")) is None
    assert "invalid room name" in (problem(JoinRoom("no spaces")) or "")
    assert "invalid room name 'bad room!'" in (problem(JoinRoom("bad room!")) or "")
    assert "invalid nick" in (problem(ChangeNick("9lives")) or "")
    assert "invalid nick 'bad nick!'" in (problem(ChangeNick("bad nick!")) or "")
    assert "too long" in (problem(SayText("x" * 4001)) or "")
    assert "control" in (problem(SayText("bell\x07")) or "")


def test_sanitize_nick() -> None:
    assert sanitize_nick("alice") == "alice"
    assert sanitize_nick("jean.dupont") == "jean_dupont"
    assert sanitize_nick("1st") == "_1st"
    assert sanitize_nick("x" * 40) == "x" * 24
    assert sanitize_nick("") == "guest"


def plain(lines: list[tuple[tuple[str, str], ...]]) -> list[str]:
    return [to_plain(line) for line in lines]


def hhmm(ts_ms: int) -> str:
    import time  # noqa: PLC0415 - only this helper needs local time

    return time.strftime("%H:%M", time.localtime(ts_ms / 1000))


def test_message_line_has_time_room_nick_text() -> None:
    msg = RoomMessage(id=1, room="lobby", nick="bob", text="hi\nthere", ts=1_764_072_000_000)
    first, second = plain(event_lines(msg, NOON))
    assert first == f"{hhmm(msg.ts)} #lobby <bob> hi"
    assert second == " " * len(f"{hhmm(msg.ts)} #lobby <bob> ") + "there"


def test_system_lines() -> None:
    stamp = hhmm(int(NOON * 1000))
    assert plain(event_lines(MemberJoined(room="lobby", nick="carol"), NOON)) == [
        f"{stamp} #lobby * carol joined"
    ]
    left = MemberLeft(room="lobby", nick="carol", reason=LeaveReason.TIMEOUT)
    assert plain(event_lines(left, NOON)) == [f"{stamp} #lobby * carol timed out"]
    assert plain(event_lines(Renamed(old="carol", new="caro"), NOON)) == [
        f"{stamp} * carol is now caro"
    ]
    topic = TopicChanged(room="lobby", topic="", nick="bob")
    assert plain(event_lines(topic, NOON)) == [f"{stamp} #lobby * bob cleared the topic"]
    error = Error(code="shutdown", message="bye", fatal=True)
    assert plain(event_lines(error, NOON)) == [f"{stamp} ! shutdown: bye"]
    lost = Disconnected("shutdown: bye", None, reconnecting=True)
    assert plain(event_lines(lost, NOON)) == [
        f"{stamp} ! connection lost (shutdown: bye); reconnecting"
    ]


def test_direct_messages_stand_out() -> None:
    dm = DirectMessage(id=1, nick="bob", to="alice", text="psst", ts=1_764_072_000_000)
    (line,) = event_lines(dm, NOON)
    assert to_plain(line) == f"{hhmm(dm.ts)} [dm] bob -> alice psst"
    assert ("dm", "psst") in line and "\x1b[1;35m" in to_ansi(line)


def test_replies() -> None:
    stamp = hhmm(int(NOON * 1000))
    msg = RoomMessage(id=1, room="lobby", nick="bob", text="earlier", ts=1_764_072_000_000)
    joined = Joined(room="lobby", topic="Welcome!", members=["bob", "alice"], history=[msg])
    # "You joined" first, then what the room replays.
    assert plain(reply_lines(Part(room="lobby"), joined, NOON)) == [
        f"{stamp} #lobby * you joined #lobby; 2 here: bob, alice; topic: Welcome!",
        f"{hhmm(msg.ts)} #lobby <bob> earlier",
    ]
    assert plain(reply_lines(Part(room="lobby"), joined, NOON, backlog=False)) == [
        f"{stamp} #lobby * you joined #lobby; 2 here: bob, alice; topic: Welcome!",
    ]
    members = MemberList(room="lobby", members=["bob"])
    assert plain(reply_lines(Part(room="lobby"), members, NOON)) == [
        f"{stamp} #lobby * 1 member: bob"
    ]


def test_large_rooms_show_counts_not_pages() -> None:
    stamp = hhmm(int(NOON * 1000))
    big = Joined(room="big", topic="", members=["a", "b"], history=[], count=5000)
    assert plain(reply_lines(Part(room="big"), big, NOON)) == [
        f"{stamp} #big * you joined #big; 5000 here (/who lists them)"
    ]
    page = MemberList(room="big", members=["a", "b"], count=5000, more=True)
    assert plain(reply_lines(Part(room="big"), page, NOON)) == [
        f"{stamp} #big * 5000 members; the first 2: a, b"
    ]
    assert plain(event_lines(MemberCount(room="big", count=5500), NOON)) == [
        f"{stamp} #big * 5500 members now"
    ]


def test_rejoin_failed_and_epoch_lines() -> None:
    stamp = hhmm(int(NOON * 1000))
    assert plain(event_lines(RejoinFailed("dev", "room_full", "full"), NOON)) == [
        f"{stamp} ! could not rejoin #dev: room_full"
    ]


def test_reconnected_line() -> None:
    welcome = Welcome(
        session="s1",
        nick="alice",
        server="t",
        version="1.0",
        limits=Limits(
            max_frame=1,
            max_text=1,
            rate=1.0,
            burst=1,
            history=1,
            ping_interval=1.0,
            ping_timeout=1.0,
        ),
    )
    lines = plain(event_lines(Reconnected(welcome, 2, (), 3), NOON))
    assert lines[0].endswith("* reconnected as alice; 3 missed messages")
    lines = plain(event_lines(Reconnected(welcome, 2, (), 1, epoch_changed=True), NOON))
    assert lines[0].endswith("1 missed message; the server lost its stored messages")


def test_nick_colours_are_stable_and_case_insensitive() -> None:
    assert nick_style("Alice") == nick_style("alice")
    styles = {nick_style(f"user{i}") for i in range(50)}
    assert len(styles) > 6  # spread over the palette


def test_text_never_reaches_the_terminal_raw() -> None:
    # The models refuse control characters; rendering masks them anyway.
    msg = RoomMessage.model_construct(id=1, room="lobby", nick="eve", text="\x1b[2Jboo", ts=0)
    (line,) = event_lines(msg, NOON)
    assert "\x1b[2J" not in to_ansi(line)
    assert to_plain(line).endswith("<eve> \ufffd[2Jboo")


def test_json_is_the_protocol_frame() -> None:
    frame = '{"type":"member_joined","room":"lobby","nick":"carol"}'
    assert to_json(parse_event(frame.encode())) == frame


class _Offline:
    """A client whose connection is down and being re-established."""

    connected = False
    nickname = "alice"

    def submit(self, command: object, callback: object = None) -> NoReturn:
        raise ConnectionLost("not connected; reconnecting")

    def reconnect_now(self) -> bool:
        return True


def test_messages_kept_while_disconnected_are_bounded(capsys: pytest.CaptureFixture[str]) -> None:
    controller = Controller(TextOutput(ansi=False), keep_unsent=True)
    controller.client = cast(Client, _Offline())
    controller.current, controller.rooms = "lobby", ["lobby"]
    for i in range(MAX_UNSENT + 1):
        controller.handle(f"line {i}")
    out = capsys.readouterr()
    assert out.out.count("not connected: this will be sent") == MAX_UNSENT
    assert out.err.count("say failed: not connected; reconnecting") == 1
    assert controller.failures == 1
    assert not controller.wait(0.01)  # kept lines are still owed
    controller.handle("")
    assert "reconnecting now" in capsys.readouterr().out
