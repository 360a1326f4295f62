"""`chat-server` as people start it: every bad flag value is one line naming the
flag and its rule, exit status 2; `--help` shows every default; the single server
needs no Redis client; the startup line is printed once."""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from chatproto import PROTOCOL_VERSION
from chatserver.config import MIN_MAX_FRAME
from tests.support import Wire


def _run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "chatserver", "--port", "0", *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        cwd=cwd,
    )


def _bad_values(tmp: Path) -> list[tuple[list[str], str]]:
    (tmp / "adir").mkdir()
    (tmp / "junk.db").write_bytes(b"this is not a database, it is text\n" * 100)
    return [
        (["--port", "-1"], "--port: must be between 0 and 65535"),
        (["--port", "70000"], "--port: must be between 0 and 65535"),
        (["--db", str(tmp / "missing" / "chat.db")], "--db: the directory"),
        (["--db", str(tmp / "adir")], "is a directory"),
        (["--db", str(tmp / "junk.db")], "--db:"),
        (["--db", ""], "--db: must name a file"),
        (["--rate", "-5"], "--rate: must be positive"),
        (["--history", "-1"], "--history: must not be negative"),
        (["--ping-interval", "0"], "--ping-interval: must be positive"),
        (["--max-frame", "10"], f"--max-frame: must be at least {MIN_MAX_FRAME}"),
        (["--handshake-timeout", "0"], "--handshake-timeout: must be positive"),
        (["--max-handshaking", "0"], "--max-handshaking: must be positive"),
        (["--burst", "0"], "--burst: must be positive"),
        (["--soft-limit", "10", "--hard-limit", "5"], "--soft-limit:"),
        (["--port", "x"], "--port: invalid int value"),
        (
            ["--tls-cert", str(tmp / "nothere.pem"), "--tls-key", str(tmp / "junk.db")],
            f"--tls-cert: no such file: {tmp / 'nothere.pem'}",
        ),
    ]


def test_every_bad_value_is_one_line_naming_the_flag_and_exit_2(tmp_path: Path) -> None:
    for args, says in _bad_values(tmp_path):
        done = _run("--store", "sqlite", *args, cwd=tmp_path)
        assert done.returncode == 2, (args, done.stderr)
        lines = done.stderr.splitlines()
        assert len(lines) == 1, (args, done.stderr)
        assert lines[0].startswith("chat-server: "), lines
        assert says in lines[0], (args, lines[0])
        assert done.stdout == ""
    # The file that is not a database is left as it was.
    assert (tmp_path / "junk.db").read_bytes().startswith(b"this is not")


def test_the_smallest_max_frame_carries_the_longest_text(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "chatserver", "--port", "0", "--store", "memory"),
            *("--max-frame", str(MIN_MAX_FRAME), "--log-level", "WARNING"),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        match = re.search(r"listening on ([\d.]+):(\d+)", proc.stdout.readline())
        assert match
        wire = Wire((match.group(1), int(match.group(2))))
        assert wire.hello("big", client="x" * 64)["type"] == "welcome"
        wire.request(type="join", room="r" * 32)
        text = "\U0001f600" * 4000
        say = {"type": "say", "id": "i" * 64, "room": "r" * 32, "text": text, "key": "k" * 64}
        # As UTF-8, not escaped: the frame is the size the floor is computed for.
        wire.raw(json.dumps(say, ensure_ascii=False, separators=(",", ":")).encode() + b"\n")
        echo = wire.until(lambda f: f.get("ref") == "i" * 64)
        assert echo["text"] == text
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
        if proc.stdout is not None:
            proc.stdout.close()


def test_help_names_the_protocol_and_every_default() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "chatserver", "--help"],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "CHAT_SERVER_PASSWORD": "do-not-show"},
    ).stdout
    assert f"PROTOCOL.md {PROTOCOL_VERSION}" in out
    assert "v1" not in out
    assert "do-not-show" not in out
    entries = re.split(r"\n(?=  -)", out[out.index("options:") :])[1:]
    assert len(entries) > 30
    for entry in entries:
        if entry.lstrip().startswith(("-h", "--password")):
            continue
        assert "(default: " in " ".join(entry.split()), entry


def test_the_single_server_runs_without_the_redis_client(tmp_path: Path) -> None:
    # `redis` cannot be imported in this process; `--redis` is not given.
    code = (
        "import sys; sys.modules['redis'] = None\n"
        "from chatserver.cli import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code, "--port", "0", "--store", "memory"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        match = re.search(r"listening on ([\d.]+):(\d+)", line)
        assert match, line
        wire = Wire((match.group(1), int(match.group(2))))
        assert wire.hello("alone")["type"] == "welcome"
        proc.send_signal(signal.SIGINT)
        assert proc.wait(10) == 0
        assert proc.stderr is not None
        errors = proc.stderr.read()
        assert "redis" not in errors.lower()
        # And the startup line was printed once, not logged again.
        assert "listening" not in errors
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


def test_redis_is_imported_only_for_a_cluster_node() -> None:
    code = (
        "import sys\n"
        "import chatserver.cli, chatserver.server\n"
        "print('redis' in sys.modules, 'chatserver.cluster' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.split() == ["False", "False"]


@pytest.mark.parametrize("store", ["memory", "sqlite"])
def test_a_good_start_is_one_line_on_stdout(tmp_path: Path, store: str) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "chatserver", "--port", "0", "--store", store],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )
    assert proc.stdout is not None and proc.stderr is not None
    line = proc.stdout.readline()
    assert line.startswith("chat-server listening on 127.0.0.1:")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(10) == 0
    assert proc.stdout.read() == ""
    assert "listening" not in proc.stderr.read()
    proc.stdout.close()
    proc.stderr.close()
    if store == "sqlite":
        sqlite3.connect(tmp_path / "chat.db").close()
