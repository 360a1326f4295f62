"""The web client in a real, headless Chromium against a real server (README,
"In the browser"): people chat with each other and with a library client,
survive a server restart, scroll back, and see hostile text as text."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TypeVar

import pytest
from selenium.webdriver.common.keys import Keys

from chatclient import Client
from chatproto import DirectMessage, RoomMessage
from chatserver.server import ChatServer
from tests.support import running
from tests.tls_support import OPENSSL, make_pki
from tests.web.browser import WAIT, Page, chromium, needs_browser, wait_until

E = TypeVar("E", RoomMessage, DirectMessage)

pytestmark = [needs_browser, pytest.mark.timeout(120)]


def page_url(server: ChatServer, host: str | None = None) -> str:
    address, port = server.address
    return f"http://{host or address}:{port}/"


def library_client(server: ChatServer, nick: str) -> Client:
    host, port = server.address
    client = Client(nick, host=host, port=port, pace=False)
    client.connect()
    return client


def next_of(client: Client, kind: type[E]) -> E:
    """The next event of that kind the library client receives (others skipped)."""
    while True:
        event = client.next_event(timeout=WAIT)
        if isinstance(event, kind):
            return event


def test_two_pages_and_a_library_client_chat_in_a_room_and_by_dm() -> None:
    with running() as server, chromium() as one, chromium() as two:
        alice = Page(one, page_url(server))
        alice.login("alice")
        bob = Page(two, page_url(server))
        bob.login("bob")
        carol = library_client(server, "carol")
        carol.join("lobby")
        wait_until(lambda: "carol" in alice.find("#member-list").text, what="carol listed")
        assert "bob" in alice.find("#member-list").text

        alice.type("hello from alice")
        bob.wait_text("hello from alice")
        assert next_of(carol, RoomMessage).text == "hello from alice"

        carol.say("lobby", "hello from the library")
        alice.wait_text("hello from the library")
        bob.wait_text("hello from the library")
        assert alice.texts() == ["hello from alice", "hello from the library"]
        assert bob.texts() == alice.texts()
        # The page's policy let it load its files and open its socket, and nothing failed.
        assert alice.console_errors() == [] and bob.console_errors() == []
        assert [m["nick"] for m in bob.messages()] == ["alice", "carol"]

        # Direct messages: a page to a page, the library client to a page.
        bob.type("/msg alice a word in private")
        wait_until(lambda: alice.unread("dm", "bob") == 1, what="an unread DM")
        carol.dm("alice", "psst from carol")
        wait_until(lambda: alice.unread("dm", "carol") == 1, what="carol's DM")
        alice.open("dm", "bob")
        assert alice.texts() == ["a word in private"]
        assert alice.unread("dm", "bob") == 0
        alice.type("private answer")
        bob.wait_text("private answer")
        alice.open("dm", "carol")
        alice.type("hi carol")
        assert next_of(carol, DirectMessage).text == "hi carol"
        # Nothing private reached the room.
        alice.open("room", "lobby")
        assert alice.texts() == ["hello from alice", "hello from the library"]
        # Presence: carol leaves, and her entries show it.
        carol.close()
        wait_until(lambda: "carol" not in alice.find("#member-list").text, what="carol gone")
        assert alice.find("#member-count").text == "(2)"
        carol_entry = alice.find("#dm-list button[data-name='carol']")
        assert "offline" in (carol_entry.get_attribute("class") or "")


def test_unread_counts_topics_nick_change_and_multiline() -> None:
    with running() as server, chromium() as one, chromium() as two:
        alice = Page(one, page_url(server))
        alice.login("alice")
        bob = Page(two, page_url(server))
        bob.login("bob", room="dev")
        bob.type("/join lobby")
        wait_until(lambda: bob.find("#title-name").text == "lobby")
        alice.type("first line\nsecond line")
        bob.wait_text("first line\nsecond line")
        bob.find("#browse-rooms").click()
        wait_until(
            lambda: (
                sorted(b.text for b in bob.find_all("#all-rooms button"))
                == ["dev (1)", "lobby (2)"]
            ),
            what="the room list",
        )
        bob.open("room", "dev")
        alice.type("one")
        alice.type("two")
        wait_until(lambda: bob.unread("room", "lobby") == 2, what="two unread")
        assert bob.driver.title == "(2) threadchat"
        bob.open("room", "lobby")
        assert bob.unread("room", "lobby") == 0
        alice.type("/topic Quiet hours")
        wait_until(lambda: bob.find("#topic").text == "Quiet hours", what="the topic")
        bob.type("/nick robert")
        wait_until(lambda: "robert" in alice.find("#member-list").text, what="the new nick")
        assert "bob" not in alice.find("#member-list").text.split()
        assert bob.find("#me").text == "robert"


def test_errors_are_shown_in_plain_words() -> None:
    with running() as server, chromium() as one, chromium() as two:
        alice = Page(one, page_url(server))
        alice.login("alice")
        again = Page(two, page_url(server))
        again.find("#login-nick").send_keys("Alice")
        again.find("#login-button").click()
        wait_until(
            lambda: again.find("#login-error").text == "That nick is in use. Choose another one.",
            what="the nick_in_use error",
        )
        alice.type("/msg nobody-here hello?")
        wait_until(
            lambda: alice.find("#error").text == "Nobody with that nick is connected.",
            what="the no_such_nick error",
        )


def test_login_with_a_server_password_and_a_registered_nick() -> None:
    with running(server_password="letmein") as server, chromium() as driver:
        host, port = server.address
        owner = Client("vera", host=host, port=port, server_password="letmein", pace=False)
        owner.connect()
        owner.register("correct horse")
        owner.close()
        page = Page(driver, page_url(server))
        wrong = "Wrong or missing password (or too many failed attempts: wait a minute)."
        page.find("#login-nick").send_keys("vera")
        page.find("#login-button").click()
        wait_until(lambda: page.find("#login-error").text == wrong, what="no server password")
        page.find("#login-server-password").send_keys("letmein")
        page.find("#login-button").click()
        wait_until(
            lambda: page.find("#login-error").text == wrong and page.find("#login").is_displayed(),
            what="no nick password",
        )
        page.login("vera", password="correct horse")
        assert page.find("#me").text == "vera"


def test_history_scroll_back_loads_older_messages_once() -> None:
    with running(history=5, rate=1000.0, burst=1000) as server, chromium(height=500) as driver:
        carol = library_client(server, "carol")
        carol.join("lobby")
        sent = [f"old message {n:02d}" for n in range(60)]
        for text in sent:
            carol.say("lobby", text)
        page = Page(driver, page_url(server))
        page.login("alice")
        wait_until(lambda: len(page.texts()) >= 5, what="the joined history")
        shown = page.texts()
        assert shown == sent[-len(shown) :]  # the newest, in order
        for _ in range(10):
            if page.texts() == sent:
                break
            count = len(page.texts())
            page.js("document.getElementById('messages').scrollTop = 0;")
            wait_until(lambda c=count: len(page.texts()) > c, what="an older page")  # type: ignore[misc]
        assert page.texts() == sent
        wait_until(lambda: not page.find("#older").is_displayed(), what="no more to load")
        carol.close()


def test_hostile_text_is_shown_as_text() -> None:
    hostile = [
        "<script>window.pwned = 'script'</script>",
        '<img src="x" onerror="window.pwned = \'img\'">',
        "javascript:window.pwned='link'",
        '<a href="javascript:window.pwned=1">click</a>',
        "\u202eevil reversed text",
        "x" * 4000,
    ]
    with running() as server, chromium(width=900) as driver:
        page = Page(driver, page_url(server))
        page.login("alice")
        carol = library_client(server, "carol")
        carol.join("lobby")
        for text in hostile:
            carol.say("lobby", text)
        carol.topic("lobby", "<b onmouseover=alert(1)>topic</b>")
        page.wait_text(hostile[-1])
        assert page.texts() == hostile
        assert page.js("return window.pwned") is None
        messages = page.find("#messages")
        for tag in ("script", "img", "a", "b"):
            assert messages.find_elements("css selector", tag) == []
        wait_until(lambda: page.find("#topic").text == "<b onmouseover=alert(1)>topic</b>")
        # Each message's text is isolated, so a bidi override cannot turn the
        # nick or the time around; a long word wraps instead of widening the page.
        assert page.js(
            "return [...document.querySelectorAll('#messages .text')]"
            ".every(e => e.tagName === 'BDI')"
        )
        assert page.js(
            "const m = document.getElementById('messages');"
            "return m.scrollWidth <= m.clientWidth && "
            "document.documentElement.scrollWidth <= window.innerWidth"
        )
        carol.close()


def test_a_page_from_another_origin_cannot_open_the_websocket() -> None:
    """The page is loaded from 127.0.0.1; a script there that opens the socket
    under the name `localhost` (another origin, the same server) is refused,
    while the page's own origin is accepted."""
    with running() as server, chromium() as driver:
        port = server.address[1]
        page = Page(driver, page_url(server))
        probe = """
            const done = arguments[arguments.length - 1];
            const ws = new WebSocket(arguments[0]);
            ws.onopen = () => { ws.close(); done('open'); };
            ws.onerror = () => done('refused');
        """
        own = page.driver.execute_async_script(probe, f"ws://127.0.0.1:{port}/ws")
        other = page.driver.execute_async_script(probe, f"ws://localhost:{port}/ws")
        assert (own, other) == ("open", "refused")


@pytest.mark.skipif(OPENSSL is None, reason="needs the openssl command")
def test_the_page_over_https_chats_over_wss(tmp_path: Path) -> None:
    pki = make_pki(tmp_path)
    with (
        running(tls_cert=str(pki.cert), tls_key=str(pki.key)) as server,
        chromium(ignore_certificates=True) as driver,
    ):
        host, port = server.address
        page = Page(driver, f"https://{host}:{port}/")
        page.login("secure")
        assert page.js("return location.protocol") == "https:"
        page.type("over wss")
        page.wait_text("over wss")
        assert page.console_errors() == []


def test_keyboard_only_at_phone_width() -> None:
    with running() as server, chromium(width=390, height=844) as driver:
        page = Page(driver, page_url(server))
        body = page.find("body")
        # The nick box has focus on load; the rest is Tab and Enter.
        active = page.driver.switch_to.active_element
        assert active.get_attribute("id") == "login-nick"
        active.send_keys("thumbs", Keys.ENTER)
        wait_until(lambda: page.find("#title-name").text == "lobby", what="logged in")
        active = page.driver.switch_to.active_element
        assert active.get_attribute("id") == "composer-text"
        active.send_keys("typed", Keys.SHIFT, Keys.ENTER)  # Shift stays down to the call's end
        active.send_keys("on a phone", Keys.ENTER)
        page.wait_text("typed\non a phone")
        assert not page.find("#sidebar").is_displayed()
        page.find("#toggle-rooms").send_keys(Keys.ENTER)
        wait_until(lambda: page.find("#sidebar").is_displayed(), what="the rooms panel")
        body.send_keys(Keys.ESCAPE)
        wait_until(lambda: not page.find("#sidebar").is_displayed(), what="closed again")
        assert page.js("return document.documentElement.scrollWidth <= window.innerWidth")


# -- a server restart ----------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def _server(db: Path, port: int) -> Iterator[subprocess.Popen[str]]:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "chatserver",
            "--port",
            str(port),
            "--db",
            str(db),
            "--log-level",
            "WARNING",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert "listening" in proc.stdout.readline()
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)
        if proc.stdout is not None:
            proc.stdout.close()


def test_a_page_survives_a_server_restart_and_shows_what_it_missed_once(tmp_path: Path) -> None:
    db = tmp_path / "chat.db"
    port = _free_port()
    with chromium() as driver:
        with _server(db, port) as proc:
            page = Page(driver, f"http://127.0.0.1:{port}/")
            page.login("alice")
            carol = Client("carol", port=port, pace=False)
            carol.connect()
            carol.join("lobby")
            carol.say("lobby", "before the restart")
            page.wait_text("before the restart")
            carol.close()
            proc.kill()  # SIGKILL: no goodbye to anyone
            proc.wait(10)
        wait_until(lambda: "Reconnecting" in page.find("#status").text, what="reconnecting")
        # Meanwhile the same database serves on another port, which the page does
        # not know: what is said there can reach the page only through `history`.
        other_port = _free_port()
        with _server(db, other_port) as elsewhere:
            carol = Client("carol", port=other_port, pace=False)
            carol.connect()
            carol.join("lobby")
            carol.say("lobby", "missed one")
            carol.say("lobby", "missed two")
            carol.close()
            elsewhere.terminate()
            assert elsewhere.wait(10) == 0
        assert "missed one" not in page.texts()
        with _server(db, port):
            page.wait_text("missed two", timeout=20)
            carol = Client("carol", port=port, pace=False)
            carol.connect()
            carol.join("lobby")
            carol.say("lobby", "after the reconnect")
            page.wait_text("after the reconnect")
            assert page.texts() == [
                "before the restart",
                "missed one",
                "missed two",
                "after the reconnect",
            ]
            ids = [int(m["id"]) for m in page.messages()]
            assert ids == sorted(set(ids))
            page.type("I am back")
            wait_until(lambda: "I am back" in page.texts(), what="the page can send again")
            carol.close()
