"""`chat-server`'s web flags, in a real process."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.support import Wire, listening_process
from tests.web.wsclient import Refused, WsClient, http_get


def test_the_server_prints_the_url_of_its_page_and_serves_it() -> None:
    with listening_process("--store", "memory", "--web-origin", "https://chat.example.org") as (
        _,
        line,
        address,
    ):
        # The one line the server prints says where it listens and names its page.
        assert line.rstrip().endswith(
            f"; open http://{address[0]}:{address[1]}/ in a browser to chat"
        )

        status, _, body = http_get(address, "/")
        assert status == 200 and b"app.js" in body
        ws = WsClient(address, origin="https://chat.example.org")
        assert ws.hello("listed")["type"] == "welcome"
        with pytest.raises(Refused):
            WsClient(address, origin="https://elsewhere.example.org")


def test_no_web_turns_the_page_off() -> None:
    with listening_process("--store", "memory", "--no-web") as (_, _, address):
        wire = Wire(address)
        wire.raw(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert wire.recv()["code"] == "invalid_json"  # type: ignore[index]


@pytest.mark.parametrize(
    ("flag", "value"),
    [
        ("--web-origin", "chat.example.org"),
        ("--web-origin", "ftp://chat.example.org"),
        ("--web-origin", "https://chat.example.org/path"),
        ("--trusted-proxy", "10.0.0"),
        ("--trusted-proxy", "proxy.example.org"),
    ],
)
def test_bad_web_flags_exit_2_naming_the_flag(flag: str, value: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "chatserver", flag, value],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 2
    assert f"argument {flag}: " in done.stderr.splitlines()[-1]
