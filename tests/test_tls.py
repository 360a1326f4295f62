"""TLS end to end: the server's `--tls-cert/--tls-key`, the client's `tls`, `ca` and
`insecure`, and what happens when the two ends disagree.

Certificates are made at test time with the `openssl` command (tests/tls_support.py).
"""

from __future__ import annotations

import logging
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from chatclient import (
    ChatError,
    Client,
    ConnectionLost,
    Reconnected,
    Reconnecting,
    ReconnectPolicy,
    TlsCertificateError,
    TlsError,
)
from chatclient.cli import INSECURE_WARNING
from chatclient.link import Link
from chatclient.tls import client_context
from chatproto import Hello, Ping, PongReply, RoomMessage, Welcome
from chatserver.server import ChatServer
from chatserver.sqlite_store import SQLiteStore
from tests.client.conftest import Recorder, next_of, start_on_port, start_server
from tests.client.procs import ROOT, env, run_client
from tests.support import WAIT, Wire, listening_process, running
from tests.tls_support import OPENSSL, Pki, TlsWire, make_pki, tls_settings

pytestmark = pytest.mark.skipif(OPENSSL is None, reason="needs the openssl command")

FAST: dict[str, Any] = {"shutdown_grace": 0.5, "rate": 1000.0, "burst": 1000}
# Long enough that a failure which waited for a timeout could not pass for a fast one.
SLOW_HANDSHAKE = 30.0
FAST_FAILURE = 5.0
RETRY = ReconnectPolicy(initial=0.02, maximum=0.2, timeout=5.0)


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@contextmanager
def tls_server(pki: Pki, **settings: Any) -> Iterator[ChatServer]:
    with running(**{**FAST, **tls_settings(pki), **settings}) as server:
        yield server


@contextmanager
def clients(*made: Client) -> Iterator[None]:
    try:
        for client in made:
            client.connect()
        yield
    finally:
        for client in made:
            client.close()


def tls_client(nick: str, server: ChatServer, pki: Pki, **options: Any) -> Client:
    options.setdefault("host", "127.0.0.1")
    options.setdefault("timeout", 5.0)
    return Client(nick, port=server.address[1], tls=True, ca=str(pki.ca), **options)


# -- a conversation over TLS -------------------------------------------------------


def test_two_library_clients_talk_over_tls(pki: Pki) -> None:
    with tls_server(pki) as server:
        # One checks the certificate's IP address, the other its DNS name.
        alice = tls_client("alice", server, pki)
        bob = tls_client("bob", server, pki, host="localhost")
        with clients(alice, bob):
            assert alice.tls and bob.tls
            alice.join("lobby")
            bob.join("lobby")
            sent = alice.say("lobby", "hello over TLS")
            assert next_of(bob, RoomMessage, id=sent.id).text == "hello over TLS"
            assert bob.dm("alice", "psst").text == "psst"
            # A frame of three TLS records or more (a record holds 16 KiB) arrives whole.
            big = "\U0001f512" * 4000  # 16,000 bytes of UTF-8
            for _ in range(3):
                alice.say("lobby", big)
            page = bob.history("lobby", limit=4)
            assert [m.text for m in page.messages] == ["hello over TLS", big, big, big]


def test_concurrent_senders_keep_records_in_order(pki: Pki) -> None:
    """Frames sent at once from many threads reach the server as valid TLS records
    (a record out of order would end the connection), each thread's in order."""
    threads, each = 8, 25
    with tls_server(pki) as server:
        alice = tls_client("alice", server, pki)
        bob = tls_client("bob", server, pki)
        with clients(alice, bob):
            alice.join("lobby")
            bob.join("lobby")
            start = threading.Barrier(threads)
            echoes: dict[int, list[int]] = {}

            def talk(n: int) -> None:
                start.wait(WAIT)
                echoes[n] = [alice.say("lobby", f"{n}:{i}").id for i in range(each)]

            workers = [threading.Thread(target=talk, args=(n,)) for n in range(threads)]
            for worker in workers:
                worker.start()
            for worker in workers:
                worker.join(30)
            assert sorted(echoes) == list(range(threads))
            for ids in echoes.values():
                assert ids == sorted(ids)
            received = [next_of(bob, RoomMessage) for _ in range(threads * each)]
            assert sorted(m.id for m in received) == sorted(
                i for ids in echoes.values() for i in ids
            )
            assert alice.connected and alice.ping().type == "pong"


def test_link_sends_whole_records_from_any_thread(pki: Pki) -> None:
    """Below the client's own send lock: a TLS link's `send` encrypts and writes
    under one lock, so records from racing threads reach the server in the
    order they were made (else it fails to decrypt them and hangs up)."""
    threads, each = 8, 25
    with tls_server(pki) as server:
        context = client_context(ca=str(pki.ca))
        link = Link.open("127.0.0.1", server.address[1], WAIT, threading.Event(), context)
        try:
            link.send(Hello(id="hello", nick="alice"))
            assert isinstance(link.next_event(time.monotonic() + WAIT), Welcome)
            start = threading.Barrier(threads)

            def ping(n: int) -> None:
                start.wait(WAIT)
                for i in range(each):
                    link.send(Ping(id=f"{n}-{i}", token=f"{n}-{i}"))

            workers = [threading.Thread(target=ping, args=(n,)) for n in range(threads)]
            for worker in workers:
                worker.start()
            for worker in workers:
                worker.join(30)
            deadline = time.monotonic() + WAIT
            pongs = [link.next_event(deadline) for _ in range(threads * each)]
        finally:
            link.close()
    refs = {p.ref for p in pongs if isinstance(p, PongReply)}
    assert refs == {f"{n}-{i}" for n in range(threads) for i in range(each)}


def test_raw_wire_over_an_ssl_socket(pki: Pki) -> None:
    with tls_server(pki) as server:
        wire = TlsWire(server.address, pki.ca)
        bob = tls_client("bob", server, pki)
        with clients(bob):
            assert wire.hello("alice")["type"] == "welcome"
            assert wire.request(type="join", room="lobby")["type"] == "joined"
            bob.join("lobby")
            echo = wire.request(type="say", room="lobby", text="raw and secret")
            assert echo["type"] == "message"
            assert next_of(bob, RoomMessage, id=echo["id"]).text == "raw and secret"
            bob.say("lobby", "seen on the wire")
            frame = wire.until(lambda f: f.get("type") == "message" and f["nick"] == "bob")
            assert frame["text"] == "seen on the wire"
            assert wire.request(type="bye")["type"] == "ok"
        wire.close()


def test_first_frame_right_behind_the_handshake(pki: Pki) -> None:
    """A hello sent in the same write as the client's last handshake message is
    answered: it must not wait in the server's TLS buffers for a further read."""
    with tls_server(pki) as server:
        incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        context = ssl.create_default_context(cafile=str(pki.ca))
        tls = context.wrap_bio(incoming, outgoing, server_hostname="localhost")
        with socket.create_connection(server.address, timeout=WAIT) as sock:
            while True:
                try:
                    tls.do_handshake()
                    break
                except ssl.SSLWantReadError:
                    sock.sendall(outgoing.read())
                    incoming.write(sock.recv(65536))
            tls.write(b'{"type":"hello","id":1,"nick":"eager"}\n')
            sock.sendall(outgoing.read())  # the Finished message and the hello, at once
            plain = b""
            while b"\n" not in plain:
                data = sock.recv(65536)
                assert data, "the server closed the connection"
                incoming.write(data)
                try:
                    plain += tls.read(65536)
                except ssl.SSLWantReadError:
                    continue
        assert b'"type":"welcome"' in plain


# -- the terminal client ---------------------------------------------------------------


def test_pipe_client_with_tls_and_ca(pki: Pki) -> None:
    with tls_server(pki) as server:
        bob = tls_client("bob", server, pki)
        with clients(bob):
            bob.join("lobby")
            args = ("--host", "localhost", "--tls", "--ca", str(pki.ca), "--nick", "alice")
            done = run_client(server.address[1], *args, stdin="hello over tls\n")
            assert done.returncode == 0, done.stderr
            assert done.stderr == ""
            assert done.stdout.splitlines()[-1].endswith("#lobby <alice> hello over tls")
            assert next_of(bob, RoomMessage).text == "hello over tls"


def test_pipe_client_refuses_an_untrusted_certificate(pki: Pki) -> None:
    with tls_server(pki) as server:
        done = run_client(server.address[1], "--tls", "--nick", "alice", stdin="never sent\n")
        assert done.returncode == 1
        assert done.stdout == ""
        assert "Traceback" not in done.stderr
        (line,) = done.stderr.splitlines()
        assert line.startswith(f"chat-client: the TLS certificate of 127.0.0.1:{server.address[1]}")
        assert "was refused" in line and "--ca FILE" in line
        assert server.wait_idle(WAIT)
        assert server.hub.members("lobby") is None  # nobody got in


def test_pipe_client_insecure_warns_and_works(pki: Pki) -> None:
    with tls_server(pki, tls_cert=str(pki.self_signed_cert), tls_key=str(pki.self_signed_key)) as s:
        done = run_client(s.address[1], "--insecure", "--nick", "carol", stdin="unverified\n")
        assert done.returncode == 0, done.stderr
        assert done.stderr == f"chat-client: {INSECURE_WARNING}\n"
        assert done.stdout.splitlines()[-1].endswith("#lobby <carol> unverified")


def test_pipe_client_bad_flags_exit_2(pki: Pki, tmp_path: Path) -> None:
    missing = tmp_path / "missing.pem"
    done = run_client(1, "--ca", str(missing), stdin="")
    assert done.returncode == 2
    assert done.stderr.startswith("chat-client: cannot load the CA file")
    assert len(done.stderr.splitlines()) == 1
    done = run_client(1, "--ca", str(pki.ca), "--insecure", stdin="")
    assert done.returncode == 2
    assert "--insecure" in done.stderr and "Traceback" not in done.stderr


def test_pipe_client_tls_against_a_plaintext_port() -> None:
    with running(**FAST) as server:
        done = run_client(server.address[1], "--tls", "--nick", "alice", stdin="x\n")
        assert done.returncode == 1
        assert done.stderr.startswith("chat-client: ")
        assert "(is it a plaintext port?)" in done.stderr
        assert len(done.stderr.splitlines()) == 1


# -- what the library says when TLS cannot be set up -------------------------------------


def test_wrong_ca_is_a_certificate_error(pki: Pki, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="chatserver.reader")
    with tls_server(pki) as server:
        for ca in (str(pki.other_ca), None):  # another authority; the system's
            client = Client("alice", port=server.address[1], tls=True, ca=ca, timeout=5.0)
            with pytest.raises(TlsCertificateError, match="was refused") as caught:
                client.connect()
            # A connection failure by type, and not the server's refusal.
            assert isinstance(caught.value, TlsError)
            assert isinstance(caught.value, ConnectionLost)
            assert isinstance(caught.value, ConnectionError)
            assert not isinstance(caught.value, ChatError)
            assert not client.connected
            client.close()
        assert server.wait_idle(WAIT)
    failed = [r for r in caplog.records if "TLS handshake failed" in r.getMessage()]
    assert len(failed) == 2


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_wrong_host_name_is_a_certificate_error(pki: Pki, host: str) -> None:
    settings = {"tls_cert": str(pki.elsewhere_cert), "tls_key": str(pki.elsewhere_key)}
    with tls_server(pki, **settings) as server:
        client = tls_client("alice", server, pki, host=host)
        with pytest.raises(TlsCertificateError, match="mismatch") as caught:
            client.connect()
        assert f"not valid for '{host}'" in str(caught.value)
        client.close()
        assert server.wait_idle(WAIT)


def test_insecure_accepts_a_self_signed_certificate(pki: Pki) -> None:
    settings = {"tls_cert": str(pki.self_signed_cert), "tls_key": str(pki.self_signed_key)}
    with tls_server(pki, **settings) as server:
        strict = tls_client("alice", server, pki)
        with pytest.raises(TlsCertificateError, match=r"self.signed"):
            strict.connect()
        strict.close()
        lax = Client("alice", port=server.address[1], tls=True, insecure=True, timeout=5.0)
        with clients(lax):
            assert lax.join("lobby").members == ["alice"]


def test_plaintext_client_on_a_tls_port_fails_fast(
    pki: Pki, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="chatserver.reader")
    with tls_server(pki, handshake_timeout=SLOW_HANDSHAKE) as server:
        client = Client("alice", port=server.address[1], timeout=SLOW_HANDSHAKE)
        started = time.monotonic()
        with pytest.raises(ConnectionLost, match="does the server expect TLS"):
            client.connect()
        assert time.monotonic() - started < FAST_FAILURE
        client.close()
        # The bare wire sees the end of the stream, and not a byte.
        wire = Wire(server.address)
        wire.send(type="hello", id=1, nick="bob")
        started = time.monotonic()
        assert wire.sock.recv(1024) == b""
        assert time.monotonic() - started < FAST_FAILURE
        wire.close()
        assert server.wait_idle(WAIT)
        assert server.connections == 0
    failed = [
        r
        for r in caplog.records
        if r.name == "chatserver.reader"
        and "TLS handshake failed: plaintext client on a TLS port" in r.getMessage()
    ]
    assert len(failed) == 2
    assert all(r.levelno == logging.WARNING for r in failed)


def test_tls_client_on_a_plaintext_port_fails_fast(
    pki: Pki, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="chatserver.reader")
    with running(**FAST, handshake_timeout=SLOW_HANDSHAKE) as server:
        client = tls_client("alice", server, pki, timeout=SLOW_HANDSHAKE)
        started = time.monotonic()
        with pytest.raises(TlsError, match="plaintext port") as caught:
            client.connect()
        assert not isinstance(caught.value, TlsCertificateError)
        assert time.monotonic() - started < FAST_FAILURE
        client.close()
        started = time.monotonic()
        with pytest.raises(OSError):  # ssl.SSLError, or the reset
            TlsWire(server.address, pki.ca)
        assert time.monotonic() - started < FAST_FAILURE
        assert server.wait_idle(WAIT)
        assert server.connections == 0
    refused = [
        r
        for r in caplog.records
        if r.name == "chatserver.reader" and "TLS client on a plaintext port" in r.getMessage()
    ]
    assert len(refused) == 2


def test_handshake_with_a_silent_server_times_out(pki: Pki) -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:  # accepts, never answers
        client = Client(
            "alice", port=listener.getsockname()[1], tls=True, ca=str(pki.ca), timeout=0.3
        )
        started = time.monotonic()
        with pytest.raises(ConnectionLost, match=r"TLS handshake .* took too long"):
            client.connect()
        assert time.monotonic() - started < FAST_FAILURE
        client.close()


def test_tls_options_are_checked(pki: Pki, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="need tls=True"):
        Client("alice", ca=str(pki.ca))
    with pytest.raises(ValueError, match="need tls=True"):
        Client("alice", insecure=True)
    with pytest.raises(ValueError, match="would be ignored"):
        Client("alice", tls=True, ca=str(pki.ca), insecure=True)
    with pytest.raises(ValueError, match="cannot load the CA file"):
        Client("alice", tls=True, ca=str(tmp_path / "missing.pem"))
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate\n")
    with pytest.raises(ValueError, match="cannot load the CA file"):
        Client("alice", tls=True, ca=str(garbage))
    context = ssl.create_default_context(cafile=str(pki.ca))
    with pytest.raises(ValueError, match="context of your own"):
        Client("alice", tls=context, ca=str(pki.ca))
    assert Client("alice", tls=context).tls
    assert not Client("alice").tls


def test_own_ssl_context(pki: Pki) -> None:
    context = ssl.create_default_context(cafile=str(pki.ca))
    with tls_server(pki) as server:
        client = Client("alice", port=server.address[1], tls=context, timeout=5.0)
        with clients(client):
            assert client.ping().type == "pong"


# -- reconnection ------------------------------------------------------------------------


def test_reconnection_stays_tls(pki: Pki, tmp_path: Path) -> None:
    db = tmp_path / "chat.db"
    first = start_server(SQLiteStore(db), **tls_settings(pki))
    port = first.address[1]
    recorder = Recorder()
    alice = Client(
        "alice",
        port=port,
        tls=True,
        ca=str(pki.ca),
        on_event=recorder,
        reconnect=RETRY,
        timeout=5.0,
    )
    servers = [first]
    try:
        alice.connect()
        alice.join("lobby")
        first.shutdown()
        # A plaintext server on the same port: the client does not fall back to it.
        plain = start_on_port(port, db)
        servers.append(plain)
        recorder.wait_for(
            lambda events: any(
                isinstance(e, Reconnecting) and e.error and "plaintext port" in e.error
                for e in events
            )
        )
        assert not alice.connected
        plain.shutdown()
        servers.append(start_on_port(port, db, **tls_settings(pki)))
        back = next_of(alice, Reconnected, timeout=10)
        assert [j.room for j in back.rooms] == ["lobby"]
        bob = Client("bob", port=port, tls=True, ca=str(pki.ca), timeout=5.0)
        with clients(bob):
            bob.join("lobby")
            sent = alice.say("lobby", "back, still encrypted")
            assert next_of(bob, RoomMessage, id=sent.id).nick == "alice"
    finally:
        alice.close()
        for server in servers:
            server.shutdown()


# -- the server's command line --------------------------------------------------------------


@contextmanager
def server_process(*args: str) -> Iterator[tuple[subprocess.Popen[str], str, int]]:
    """`python -m chatserver` on a free port; yields its listening line and port."""
    with listening_process("--store", "memory", *args, env=env(), cwd=ROOT) as (proc, line, at):
        yield proc, line, at[1]


def test_server_cli_serves_tls(pki: Pki) -> None:
    with server_process("--tls-cert", str(pki.cert), "--tls-key", str(pki.key)) as (_, line, port):
        assert "TLS" in line
        client = Client("alice", port=port, tls=True, ca=str(pki.ca), timeout=5.0)
        with clients(client):
            assert client.join("lobby").members == ["alice"]
            assert client.say("lobby", "served by a process").text == "served by a process"
        with pytest.raises(ConnectionLost, match="does the server expect TLS"):
            Client("bob", port=port, timeout=5.0).connect()


def test_server_cli_without_tls_says_nothing_of_it() -> None:
    with server_process() as (_, line, _port):
        assert "TLS" not in line


def run_server(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "chatserver", "--port", "0", "--store", "memory", *args],
        capture_output=True,
        text=True,
        timeout=30,
        env=env(),
        cwd=ROOT,
        check=False,
    )


@pytest.mark.parametrize("problem", ["missing key", "garbage key", "key of another cert"])
def test_server_cli_bad_key_exits_2(pki: Pki, tmp_path: Path, problem: str) -> None:
    key = {
        "missing key": tmp_path / "missing.key",
        "garbage key": tmp_path / "garbage.key",
        "key of another cert": pki.elsewhere_key,
    }[problem]
    if problem == "garbage key":
        key.write_text("-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n")
    done = run_server("--tls-cert", str(pki.cert), "--tls-key", str(key))
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    if problem == "missing key":
        assert f"--tls-key: no such file: {key}" in done.stderr
    else:
        assert "cannot load the certificate or key" in done.stderr
    assert len(done.stderr.splitlines()) == 1
    assert done.stdout == ""


def test_server_cli_cert_without_key_exits_2(pki: Pki) -> None:
    done = run_server("--tls-cert", str(pki.cert))
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert "TLS needs both a certificate and a key" in done.stderr


# -- refusals on a TLS port: sent after the handshake (issue 11 item 12) -----------------


def test_server_full_is_sent_over_tls(pki: Pki) -> None:
    with tls_server(pki, max_clients=1) as server:
        first = TlsWire(server.address, pki.ca)
        assert first.hello("first")["type"] == "welcome"
        refused = TlsWire(server.address, pki.ca)
        frames = refused.closed()
        assert [(f["code"], f["fatal"]) for f in frames] == [("server_full", True)]
        assert first.request(type="ping")["type"] == "pong"


def test_too_many_connections_is_sent_over_tls(pki: Pki) -> None:
    with tls_server(pki, max_per_address=1) as server:
        first = TlsWire(server.address, pki.ca)
        assert first.hello("first")["type"] == "welcome"
        refused = TlsWire(server.address, pki.ca)
        frames = refused.closed()
        assert [(f["code"], f["fatal"]) for f in frames] == [("too_many_connections", True)]
        first.close()
        assert server.wait_idle(WAIT)
        again = TlsWire(server.address, pki.ca)
        assert again.hello("again")["type"] == "welcome"
