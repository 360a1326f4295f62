"""The WebSocket transport and the HTTP side of the chat port, against a real
server on a real socket (PROTOCOL.md section 17, README "In the browser")."""

from __future__ import annotations

import json
import socket
import ssl
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from wsproto import ConnectionType
from wsproto.connection import Connection
from wsproto.events import BytesMessage, CloseConnection, Ping, Pong, TextMessage

from bench.fanout import _unframe
from chatserver.http import CSP
from chatserver.websocket import frame_messages
from tests.support import WAIT, Collector, Wire, login, running
from tests.tls_support import OPENSSL, make_pki
from tests.web.wsclient import Refused, WsClient, http_get


def origin(address: tuple[str, int]) -> str:
    return f"http://{address[0]}:{address[1]}"


# -- the page and its files ------------------------------------------------


def test_page_and_files_are_served_with_a_strict_policy() -> None:
    with running() as server:
        status, headers, body = http_get(server.address, "/")
        assert status == 200
        assert headers["content-type"] == "text/html; charset=utf-8"
        assert headers["content-security-policy"] == CSP
        assert "script-src 'self'" in CSP and "unsafe-inline" not in CSP
        assert headers["x-content-type-options"] == "nosniff"
        assert b'<script src="app.js" defer></script>' in body
        assert b"<script>" not in body  # no inline script: the policy would block it
        for name, kind in (("app.js", "text/javascript"), ("app.css", "text/css")):
            status, headers, body = http_get(server.address, f"/{name}")
            assert status == 200 and headers["content-type"].startswith(kind) and body


def test_the_client_never_turns_wire_text_into_html() -> None:
    """The page builds its DOM with textContent and createElement only."""
    static = Path(__file__).resolve().parents[2] / "chatserver" / "static"
    script = (static / "app.js").read_text(encoding="utf-8")
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
        assert sink not in script
    assert "style=" not in (static / "index.html").read_text(encoding="utf-8")


@pytest.mark.parametrize(
    "target",
    [
        "/../pyproject.toml",
        "/../http.py",
        "/%2e%2e/http.py",
        "/%2E%2E%2Fhttp.py",
        "/static/../http.py",
        "/.%2e/.%2e/pyproject.toml",
        "/etc/passwd",
        "//etc/passwd",
        "/%2Fetc%2Fpasswd",
        "http://localhost/etc/passwd",
        "/app.js/../../http.py",
        "/app.js%00.html",
        "/http.py",
        "/__init__.py",
    ],
)
def test_nothing_outside_the_static_files_is_served(target: str) -> None:
    with running() as server:
        status, _, body = http_get(server.address, target)
        assert status in (400, 404)
        assert b"import" not in body and b"root:" not in body


def test_only_get_is_served_and_a_bad_request_is_answered() -> None:
    with running() as server, socket.create_connection(server.address, timeout=WAIT) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\nPOST / HTTP/1.1\r\nHost: x\r\n\r\n")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
        assert data.startswith(b"HTTP/1.1 200 ")
        assert b"HTTP/1.1 405 " in data  # the second request, on the kept-alive connection
    with running() as server, socket.create_connection(server.address, timeout=WAIT) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\n" + b"X: " + b"y" * 10000 + b"\r\n\r\n")
        assert sock.recv(100).startswith(b"HTTP/1.1 400 ")  # a head over 8 KiB


def test_tcp_clients_are_unaffected_by_the_web_side() -> None:
    with running() as server:
        wire = Wire(server.address)
        assert wire.hello("tcpuser")["type"] == "welcome"
        wire.raw(b"GET / HTTP/1.1\r\n\r\n")  # not the first bytes: a bad frame, no page
        assert wire.recv()["code"] == "invalid_json"  # type: ignore[index]


# -- chatting over a WebSocket -------------------------------------------


def test_a_websocket_and_a_tcp_client_chat_one_frame_per_message() -> None:
    with running() as server:
        ws = WsClient(server.address, origin=origin(server.address))
        assert ws.accept is not None and ws.accept.extensions == []
        assert ws.hello("webby")["type"] == "welcome"
        assert ws.request(type="join", room="lobby")["type"] == "joined"
        tcp = Wire(server.address)
        tcp.hello("tcpy")
        tcp.request(type="join", room="lobby")
        ws.until(lambda f: f["type"] == "member_joined")
        tcp.request(type="say", room="lobby", text="two\nlines")
        got = ws.until(lambda f: f["type"] == "message")
        assert got["text"] == "two\nlines" and got["nick"] == "tcpy"
        # JSON whitespace, raw line feeds included, is allowed inside a message;
        # a trailing LF too.
        ws.send_text('{"type":\n"say", "id": "s1",\n"room": "lobby", "text": "from the web"}\n')
        echo = ws.until(lambda f: f.get("ref") == "s1")
        assert echo["type"] == "message"
        assert tcp.until(lambda f: f["type"] == "message")["text"] == "from the web"
        # A raw LF inside a JSON string is still invalid JSON, as on TCP.
        ws.send_text('{"type":"say","id":"s2","room":"lobby","text":"a\nb"}')
        assert ws.until(lambda f: f.get("ref") == "s2" or f["type"] == "error")["code"] == (
            "invalid_json"
        )
        ws.send_frame(type="dm", id="d1", to="tcpy", text="psst")
        assert tcp.until(lambda f: f["type"] == "dm")["text"] == "psst"


def test_a_fragmented_message_is_one_frame() -> None:
    with running() as server:
        ws = WsClient(server.address)
        ws.hello("frag")
        text = json.dumps({"type": "ping", "id": "p1", "token": "in-three-parts"})
        parts = [text[:5], text[5:20], text[20:]]
        for index, part in enumerate(parts):
            ws.send(TextMessage(data=part, message_finished=index == len(parts) - 1))
        ws.send(Ping(payload=b"between"))  # a control frame may come between fragments
        assert ws.until(lambda f: f.get("ref") == "p1")["token"] == "in-three-parts"
        assert ws.wait_pong() == b"between"


def test_a_message_of_max_frame_bytes_passes_and_one_more_byte_closes_with_1009() -> None:
    with running(max_frame=2000) as server:
        ws = WsClient(server.address)
        ws.hello("big")
        base = '{"type":"ping","id":"x","token":"t"}'
        fits = base[:-1] + " " * (2000 - len(base)) + "}"
        assert len(fits) == 2000
        ws.send_text(fits)
        assert ws.until(lambda f: f.get("ref") == "x")["type"] == "pong"
        ws.send_text(fits + "\n")  # the LF a TCP frame ends with does not count
        assert ws.until(lambda f: f.get("ref") == "x")["type"] == "pong"
        ws.send_text(base[:-1] + " " * (2001 - len(base)) + "}")
        frames = ws.closed()
        assert frames[-1]["code"] == "frame_too_large" and frames[-1]["fatal"] is True
        assert ws.close_code == 1009


def test_binary_messages_are_refused_with_1003() -> None:
    with running() as server:
        ws = WsClient(server.address)
        ws.hello("binary")
        ws.send(BytesMessage(data=b'{"type":"ping"}'))
        assert ws.closed() == []
        assert ws.close_code == 1003
        assert ws.close_reason == "binary messages are not accepted"


def test_text_that_is_not_utf8_closes_with_1007() -> None:
    with running() as server:
        ws = WsClient(server.address)
        ws.hello("utf")
        # A masked text frame holding the bytes ff fe: not UTF-8.
        ws.send_raw(bytes([0x81, 0x82, 0, 0, 0, 0, 0xFF, 0xFE]))
        ws.closed()
        assert ws.close_code == 1007


def test_bye_closes_with_1000_and_shutdown_with_1001() -> None:
    with running() as server:
        ws = WsClient(server.address)
        ws.hello("leaving")
        ws.send_frame(type="bye", id="b")
        assert ws.closed() == [{"type": "ok", "ref": "b"}]
        assert ws.close_code == 1000
        other = WsClient(server.address)
        other.hello("staying")
        server.shutdown()
        assert other.closed()[-1]["code"] == "shutdown"
        assert other.close_code == 1001


def test_a_client_close_is_answered_and_the_member_is_gone() -> None:
    with running() as server:
        ws = WsClient(server.address)
        ws.hello("closer")
        ws.request(type="join", room="r")
        watcher = Wire(server.address)
        watcher.hello("watcher")
        watcher.request(type="join", room="r")
        ws.until(lambda f: f["type"] == "member_joined")
        ws.send(CloseConnection(code=1000, reason="bye now"))
        assert ws.closed() == []
        assert ws.close_code == 1000  # echoed, as RFC 6455 5.5.1 asks
        left = watcher.until(lambda f: f["type"] == "member_left")
        assert left["nick"] == "closer" and left["reason"] == "lost"


def test_a_websocket_ping_is_answered_with_its_payload() -> None:
    with running() as server:
        ws = WsClient(server.address)
        ws.hello("pinger")
        ws.send(Ping(payload=b"hello?"))
        assert ws.wait_pong() == b"hello?"


@pytest.mark.parametrize("kind", ["ping", "pong", "fragment"])
def test_frames_without_a_frame_of_their_own_are_metered(kind: str) -> None:
    """Pings, pongs and fragments that never end a message each cost a token:
    a client that sends them without end is closed (1008), not served forever."""
    with running(rate=1.0, burst=5) as server:
        ws = WsClient(server.address)
        ws.hello("flood")
        for _ in range(50):
            if kind == "ping":
                ws.send(Ping(payload=b"p"))
            elif kind == "pong":
                ws.send(Pong(payload=b"p"))
            else:
                ws.send(TextMessage(data="", message_finished=False))
        frames = ws.closed()
        assert ws.close_code == 1008 and ws.close_reason == "too many WebSocket frames"
        assert all(f["type"] != "error" for f in frames)
        assert len(ws.pongs) <= 5


def test_a_slow_websocket_reader_is_dropped_like_a_tcp_one() -> None:
    with running(rate=10_000.0, burst=10_000, hard_limit=64 * 1024, soft_limit=32 * 1024) as server:
        lazy = WsClient(server.address, rcvbuf=4096)
        lazy.hello("lazy")
        lazy.request(type="join", room="flood")
        healthy = Collector(login(server, "healthy", "flood"))
        sender = login(server, "sender", "flood")
        sent = []
        for n in range(5000):
            sender.send(type="say", id=n, room="flood", text="x" * 3000)
            sent.append(sender.until(lambda f, n=n: f.get("ref") == n)["id"])  # type: ignore[misc]
            if any(f["type"] == "member_left" for f in healthy.snapshot()):
                break
        assert [f for f in healthy.snapshot() if f["type"] == "member_left"] == [
            {"type": "member_left", "room": "flood", "nick": "lazy", "reason": "kicked"}
        ]
        assert len(sent) < 5000
        frames = lazy.closed()  # reading now: the messages it took, then the reason
        assert frames[-1]["code"] == "slow_consumer"
        received = [f["id"] for f in frames if f["type"] == "message"]
        assert received == sent[: len(received)] and len(received) < len(sent)
        assert lazy.close_code == 1008


# -- the handshake's rules -----------------------------------------------


def test_a_page_from_another_origin_is_refused() -> None:
    with running() as server:
        with pytest.raises(Refused) as refused:
            WsClient(server.address, origin="https://evil.example")
        assert refused.value.status == 403
        with pytest.raises(Refused):
            WsClient(server.address, origin="null")
        with pytest.raises(Refused):  # the right host under another scheme
            WsClient(server.address, origin=origin(server.address).replace("http:", "https:"))
        # The server's own origin, and no origin at all (not a browser), are allowed.
        assert WsClient(server.address, origin=origin(server.address)).hello("own")["type"] == (
            "welcome"
        )
        assert WsClient(server.address).hello("noorigin")["type"] == "welcome"


def test_listed_origins_are_allowed() -> None:
    with running(web_origins=("https://chat.example.org",)) as server:
        ws = WsClient(server.address, origin="https://CHAT.example.org:443")
        assert ws.hello("listed")["type"] == "welcome"
        with pytest.raises(Refused):
            WsClient(server.address, origin="https://chat.example.org:8443")


def test_permessage_deflate_is_refused_and_a_compressed_frame_is_a_protocol_error() -> None:
    with running() as server:
        ws = WsClient(server.address, extensions=["permessage-deflate; client_max_window_bits"])
        assert ws.accept is not None and ws.accept.extensions == []
        ws.hello("deflate")
        # RSV1 set on a text frame (what a compressed message looks like).
        ws.send_raw(bytes([0xC1, 0x80, 0, 0, 0, 0]))
        ws.closed()
        assert ws.close_code == 1002


def test_x_forwarded_for_counts_only_from_a_trusted_proxy() -> None:
    forwarded = [("X-Forwarded-For", "203.0.113.9, 10.0.0.7")]
    with running(max_per_address=2, trusted_proxies=("127.0.0.0/8", "10.0.0.0/8")) as server:
        first = WsClient(server.address, headers=forwarded)
        first.hello("viaproxy1")
        second = WsClient(server.address, headers=forwarded)
        second.hello("viaproxy2")
        with server.hub.lock:
            hosts = sorted(s.host for s in server.hub.sessions)
        assert hosts == ["203.0.113.9", "203.0.113.9"]
        third = WsClient(server.address, headers=forwarded)
        frames = third.closed()
        assert frames[0]["code"] == "too_many_connections" and frames[0]["fatal"]
        assert third.close_code == 1008
        # Another client behind the same proxy is another address.
        other = WsClient(server.address, headers=[("X-Forwarded-For", "198.51.100.4")])
        assert other.hello("otherclient")["type"] == "welcome"
    with running(max_per_address=1, trusted_proxies=("127.0.0.1",)) as server:
        # The proxy's own connections, still in their handshake, do not use up
        # its address: each is counted under the client it forwards.
        waiting = [socket.create_connection(server.address) for _ in range(3)]
        ws = WsClient(server.address, headers=[("X-Forwarded-For", "192.0.2.1")])
        assert ws.hello("behindproxy")["type"] == "welcome"
        for sock in waiting:
            sock.close()
    with running(max_per_address=64) as server:  # no trusted proxy: the header is ignored
        ws = WsClient(server.address, headers=forwarded)
        ws.hello("direct")
        with server.hub.lock:
            assert [s.host for s in server.hub.sessions] == ["127.0.0.1"]


@pytest.mark.skipif(OPENSSL is None, reason="needs the openssl command")
def test_https_and_wss_with_the_tls_certificate(tmp_path: Path) -> None:
    pki = make_pki(tmp_path)
    context = ssl.create_default_context(cafile=str(pki.ca))
    with running(tls_cert=str(pki.cert), tls_key=str(pki.key)) as server:
        host, port = server.address
        with (
            socket.create_connection(server.address, timeout=WAIT) as raw,
            context.wrap_socket(raw, server_hostname="localhost") as sock,
        ):
            sock.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            data = b""
            while chunk := sock.recv(65536):
                data += chunk
        assert data.startswith(b"HTTP/1.1 200 ") and b"app.js" in data
        ws = WsClient(server.address, tls=context, origin=f"https://{host}:{port}")
        assert ws.hello("secure")["type"] == "welcome"
        ws.request(type="join", room="tls")
        ws.send_frame(type="say", id="m", room="tls", text="over wss")
        assert ws.until(lambda f: f.get("ref") == "m")["text"] == "over wss"
        with pytest.raises(Refused):  # a plain-http page may not use the wss endpoint
            WsClient(server.address, tls=context, origin=f"http://{host}:{port}")


def test_the_web_side_can_be_turned_off() -> None:
    with running(web=False) as server:
        wire = Wire(server.address)
        wire.raw(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert wire.recv()["code"] == "invalid_json"  # type: ignore[index]


# -- framing ---------------------------------------------------------------

_texts = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\n"), max_size=300)


@given(st.lists(_texts, max_size=8), st.integers(min_value=0, max_value=70000))
def test_joined_frames_become_one_text_message_each(texts: list[str], pad: int) -> None:
    frames = [json.dumps({"type": "message", "text": t}) for t in texts]
    if pad:
        frames.append("x" * pad)  # long enough for a 16- or 64-bit length
    data = b"".join(f.encode() + b"\n" for f in frames)
    client = Connection(ConnectionType.CLIENT)
    client.receive_data(frame_messages(data))
    got: list[str] = []
    partial = ""
    for event in client.events():
        assert isinstance(event, TextMessage)
        partial += event.data
        if event.message_finished:
            got.append(partial)
            partial = ""
    assert got == frames
    assert frame_messages(data) is frame_messages(data)  # a broadcast is framed once


@given(st.lists(_texts, min_size=1, max_size=5), st.integers(min_value=0, max_value=70000))
def test_the_benchmarks_reader_cuts_server_messages_in_any_chunking(
    texts: list[str], pad: int
) -> None:
    """bench/fanout.py's WebSocket clients read the server's messages with a cutter
    of their own (wsproto costs the generator too much there): it must agree."""
    frames = [t.encode() for t in texts] + ([b"y" * pad] if pad else [])
    wire = frame_messages(b"".join(f + b"\n" for f in frames))
    for cut in {0, 1, 3, len(wire) // 2, len(wire) - 1}:
        first, rest = _unframe(wire[:cut])
        second, left = _unframe(rest + wire[cut:])
        assert first + second == frames and left == b""
