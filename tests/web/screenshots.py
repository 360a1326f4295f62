"""Screenshots of the web client for the README, at desktop and phone width.

    .venv/bin/python -m tests.web.screenshots          # writes docs/web-*.png

A server with a short conversation (two library clients and the page's own
person) is started on a free port, and headless Chromium takes the pictures.
"""

from __future__ import annotations

import sys
from pathlib import Path

from chatclient import Client
from tests.support import running
from tests.web.browser import Page, chromium, wait_until

SIZES = {"desktop": (1280, 760), "phone": (390, 780)}
NICKS = {"desktop": "ada", "phone": "grace"}
DOCS = Path(__file__).resolve().parents[2] / "docs"


def take(folder: Path) -> list[Path]:
    """Write web-desktop.png and web-phone.png into `folder`; return their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    with running(motd="Be kind.") as server:
        host, port = server.address
        bob = Client("bob", host=host, port=port, pace=False)
        carol = Client("carol", host=host, port=port, pace=False)
        for client in (bob, carol):
            client.connect()
            client.join("lobby")
        bob.topic("lobby", "Release 1.3: WebSockets and a web client")
        bob.say("lobby", "The web client is in: open the server's address in a browser.")
        carol.say("lobby", "No install, no build step. Shift+Enter for\na second line.")
        bob.join("dev")
        for name, (width, height) in SIZES.items():
            with chromium(width, height) as driver:
                page = Page(driver, f"http://{host}:{port}/")
                _scene(page, bob, NICKS[name], name)
                path = folder / f"web-{name}.png"
                driver.save_screenshot(str(path))
                written.append(path)
        bob.close()
        carol.close()
    return written


def _scene(page: Page, bob: Client, nick: str, name: str) -> None:
    """`nick` logs in, is in two rooms, speaks, and has two unread badges."""
    page.login(nick)
    page.type("/join dev")
    wait_until(lambda: page.find("#title-name").text == "dev", what="dev")
    page.open("room", "lobby")
    page.type(f"Hello from the browser at {name} width!")
    page.wait_text(f"Hello from the browser at {name} width!")
    bob.dm(nick, "Welcome aboard.")
    bob.say("dev", "Same protocol over TCP and WebSocket.")
    wait_until(lambda: len(page.find_all("#sidebar .unread")) == 2, what="badges")


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    for path in take(Path(args[0]) if args else DOCS):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
