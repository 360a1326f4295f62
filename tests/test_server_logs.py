"""A failure inside the server costs the client one error and the log one line:
no traceback reaches either unless the operator asks for DEBUG."""

from __future__ import annotations

import logging

import pytest

from chatserver.session import Session
from tests.support import login, running


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
