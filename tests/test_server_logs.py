"""A failure inside the server costs the client one error and the log one line:
no traceback reaches either unless the operator asks for DEBUG."""

from __future__ import annotations

import logging
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chatserver.logs import escape
from chatserver.session import Session
from tests.support import Wire, login, running


def _broken(session: Session, command: object) -> bool:
    raise RuntimeError("secret detail of alice's session")


@pytest.mark.parametrize("level", [logging.INFO, logging.DEBUG])
def test_an_internal_failure_is_one_line_and_one_error(
    level: int, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(level, logger="chatserver")
    with running() as server:
        server.handler._commands["ping"] = _broken
        wire = login(server, "alice")
        reply = wire.request(type="ping")
        assert (reply["code"], reply["fatal"]) == ("internal_error", False)
        assert "secret" not in reply["message"] and "Traceback" not in reply["message"]
        assert wire.request(type="rooms")["type"] == "rooms"  # the session goes on
    failures = [r for r in caplog.records if "failed to handle" in r.getMessage()]
    assert len(failures) == 1
    assert "secret" not in failures[0].getMessage()
    assert bool(failures[0].exc_info) == (level == logging.DEBUG)


def _serve_and_log(tmp_path: Path, act: Callable[[tuple[str, int]], None]) -> str:
    """Run `chat-server` at INFO, let `act` use it, stop it; its whole log."""
    log = tmp_path / "server.log"
    with log.open("w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "chatserver", "--port", "0", "--store", "memory"],
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
        )
        try:
            assert proc.stdout is not None
            match = re.search(r"listening on ([\d.]+):(\d+)", proc.stdout.readline())
            assert match
            act((match.group(1), int(match.group(2))))
        finally:
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(10) == 0
            if proc.stdout is not None:
                proc.stdout.close()
    return log.read_text(encoding="utf-8")


def test_peer_supplied_text_is_escaped_in_the_log(tmp_path: Path) -> None:
    label = "evil\u202etxt.exe\u2028INFO forged line\u00ad\u200f"

    def act(address: tuple[str, int]) -> None:
        wire = Wire(address)
        assert wire.hello("spoofer", client=label)["type"] == "welcome"
        assert wire.request(type="bye")["type"] == "ok"
        wire.closed()

    text = _serve_and_log(tmp_path, act)
    for ch in "\u202e\u2028\u00ad\u200f":
        assert ch not in text
    assert "evil\\u202etxt.exe\\u2028INFO forged line\\xad\\u200f" in text
    assert all(re.match(r"\d{4}-\d\d-\d\d ", line) for line in text.splitlines())


def test_connections_log_plainly(tmp_path: Path) -> None:
    def act(address: tuple[str, int]) -> None:
        first = Wire(address)
        assert first.hello("taken")["type"] == "welcome"
        second = Wire(address)
        assert second.hello("taken")["code"] == "nick_in_use"
        second.closed()

    text = _serve_and_log(tmp_path, act)
    assert "(None)" not in text
    assert "()" not in text
    assert re.search(r"disconnect - 127\.0\.0\.1:\d+: kicked \(refused\)", text), text


def test_a_slow_consumer_drop_logs_nothing_under_the_hub_lock() -> None:
    """Issue 11 item 10: a blocked log must not stall the server; every record is
    emitted with the hub lock free."""
    with running(hard_limit=64 * 1024, soft_limit=32 * 1024, rate=1e4, burst=10_000) as server:
        held: list[str] = []

        class _Probe(logging.Handler):
            def emit(self, record: logging.LogRecord) -> None:
                if not server.hub.lock.acquire(timeout=2):
                    held.append(record.getMessage())
                else:
                    server.hub.lock.release()

        probe = _Probe(logging.DEBUG)
        logger = logging.getLogger("chatserver")
        logger.addHandler(probe)
        old_level = logger.level
        logger.setLevel(logging.DEBUG)
        try:
            lazy = Wire(server.address, rcvbuf=4096)
            assert lazy.hello("lazy")["type"] == "welcome"
            assert lazy.request(type="join", room="lobby")["type"] == "joined"
            sender = login(server, "sender", "lobby")
            text = "x" * 3000
            for n in range(2000):
                reply = sender.request(type="say", room="lobby", text=text)
                assert reply["type"] == "message", (n, reply)
                if "lazy" not in sender.request(type="members", room="lobby")["members"]:
                    break
            else:
                raise AssertionError("the slow consumer was never dropped")
        finally:
            logger.removeHandler(probe)
            logger.setLevel(old_level)
        assert held == []


@given(st.text())
def test_an_escaped_text_is_one_printable_line_that_keeps_what_was_printable(text: str) -> None:
    safe = escape(text)
    assert safe.isprintable()
    assert len(safe.splitlines()) <= 1
    if text.isprintable():
        assert safe == text


def test_the_log_budget_bounds_lines_and_says_what_it_left_out(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    with log.open("w") as err:
        proc = subprocess.Popen(
            [
                *(sys.executable, "-m", "chatserver", "--port", "0", "--store", "memory"),
                *("--log-rate", "2", "--log-burst", "5"),
            ],
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
        )
    try:
        assert proc.stdout is not None
        match = re.search(r"listening on ([\d.]+):(\d+)", proc.stdout.readline())
        assert match
        address = (match.group(1), int(match.group(2)))
        started = time.monotonic()
        for n in range(40):  # 3 or 4 lines each
            wire = Wire(address)
            assert wire.hello(f"c{n}")["type"] == "welcome"
            assert wire.request(type="bye")["type"] == "ok"
            wire.closed()
        time.sleep(0.6)  # a token comes back (2 a second): the next line passes
        Wire(address).hello("last")
        elapsed = time.monotonic() - started
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
        if proc.stdout is not None:
            proc.stdout.close()
    lines = log.read_text().splitlines()
    assert len(lines) <= 5 + 2 * (elapsed + 1) + 1, lines
    assert any("lines left out before this one" in line for line in lines)
