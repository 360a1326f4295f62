"""Accounts in the terminal client: `/register`, `/nick NEW`, and passwords from the
environment (CHAT_PASSWORD, CHAT_SERVER_PASSWORD) or flags. (The hidden password
prompt of a terminal is in test_cli_terminal.py.)"""

from __future__ import annotations

import re

from chatproto import MemberLeft
from chatserver.server import ChatServer
from tests.client.conftest import ClientFactory, ServerFactory, next_of
from tests.client.procs import run_client

PASSWORD = "correct horse battery"
STAMP = r"\d\d:\d\d"


def errors(stderr: str) -> list[str]:
    return [line.split(" ! ", 1)[1] for line in stderr.splitlines() if " ! " in line]


def test_register_in_a_pipe_then_connect_with_the_password(
    server: ChatServer, make_client: ClientFactory
) -> None:
    port = server.address[1]
    watcher = make_client("watcher")
    watcher.join("lobby")
    done = run_client(port, "--nick", "alice", stdin=f"/register {PASSWORD}\n")
    assert done.returncode == 0, done.stderr
    assert re.fullmatch(
        rf"{STAMP} \* your nick is registered: from now on it needs this password",
        done.stdout.splitlines()[-1],
    )
    assert PASSWORD not in done.stdout + done.stderr
    next_of(watcher, MemberLeft, nick="alice")  # the nick is free, but now protected

    refused = run_client(port, "--nick", "alice", stdin="hi\n")
    assert refused.returncode == 1
    assert refused.stdout == ""
    assert refused.stderr == (
        "chat-client: nick 'alice' is registered: the password is wrong or missing "
        "(passwords: CHAT_PASSWORD or --password for the nick, "
        "CHAT_SERVER_PASSWORD or --server-password for the server)\n"
    )
    wrong = run_client(port, "--nick", "alice", "--password", "guessing", stdin="hi\n")
    assert wrong.returncode == 1 and len(wrong.stderr.splitlines()) == 1

    from_env = run_client(
        port, "--nick", "alice", stdin="from env\n", extra_env={"CHAT_PASSWORD": PASSWORD}
    )
    assert from_env.returncode == 0, from_env.stderr
    assert from_env.stdout.splitlines()[-1].endswith("#lobby <alice> from env")
    next_of(watcher, MemberLeft, nick="alice")
    from_flag = run_client(port, "--nick", "alice", "--password", PASSWORD, stdin="from flag\n")
    assert from_flag.returncode == 0, from_flag.stderr
    assert from_flag.stdout.splitlines()[-1].endswith("#lobby <alice> from flag")


def test_nick_in_a_pipe_is_one_word_and_asks_no_password(
    server: ChatServer, make_client: ClientFactory
) -> None:
    watcher = make_client("watcher")
    watcher.join("lobby")
    bob = make_client("bob")
    bob.join("lobby")
    bob.register(PASSWORD)
    bob.close()
    next_of(watcher, MemberLeft, nick="bob")
    script = f"/nick bad nick!\n/nick bob\n/nick bob {PASSWORD}\n/nick carla\nit is me\n"
    done = run_client(server.address[1], "--nick", "carol", stdin=script)
    assert done.returncode == 1  # three lines were refused
    assert errors(done.stderr) == [
        "invalid nick 'bad nick!': 1-24 letters, digits, '_' or '-', starting with a letter or '_'",
        "auth_failed: nick 'bob' is registered: the password is wrong or missing",
        f"invalid nick 'bob {PASSWORD}': 1-24 letters, digits, '_' or '-', "
        "starting with a letter or '_'",
    ]
    lines = done.stdout.splitlines()
    assert re.fullmatch(rf"{STAMP} \* you are now carla", lines[-2])
    assert lines[-1].endswith("#lobby <carla> it is me")
    assert PASSWORD not in done.stdout


def test_server_password_from_the_environment(make_server: ServerFactory) -> None:
    port = make_server(server_password="let me in").address[1]
    done = run_client(port, "--nick", "alice", stdin="hi\n")
    assert done.returncode == 1
    assert done.stderr.startswith("chat-client: wrong server password")
    assert len(done.stderr.splitlines()) == 1
    secret = {"CHAT_SERVER_PASSWORD": "let me in"}
    done = run_client(port, "--nick", "alice", stdin="hi\n", extra_env=secret)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1].endswith("#lobby <alice> hi")
    done = run_client(port, "--nick", "bob", "--server-password", "let me in", stdin="")
    assert done.returncode == 0, done.stderr


def test_help_and_local_checks(server: ChatServer) -> None:
    script = "/help\n/register short\n/register\n/nick\n"
    done = run_client(server.address[1], "--nick", "alice", stdin=script)
    assert done.returncode == 1  # refused by the client itself: failures all the same
    out = done.stdout
    assert "/register PASSWORD" in out and "/nick NEW " in out
    assert "/say TEXT" in out and "the word exit" in out and "/reconnect" in out
    assert " ! " not in out
    assert errors(done.stderr) == [
        "a password must have 8 to 256 characters",
        "usage: /register PASSWORD",
        "usage: /nick NEW",
    ]
