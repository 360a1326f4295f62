"""Per-room total order: many concurrent senders, every receiver sees one order."""

from __future__ import annotations

import threading

from tests.support import Wire, assert_one_order, login, running

SENDERS = 20
RECEIVERS = 50
EACH = 15


def test_concurrent_senders_are_seen_in_one_complete_order() -> None:
    with running(rate=1000.0, burst=1000, max_per_address=1000) as server:
        receivers = [login(server, f"r{i}", "lobby") for i in range(RECEIVERS)]
        senders = [login(server, f"s{i}", "lobby") for i in range(SENDERS)]
        start = threading.Barrier(SENDERS)
        failures: list[BaseException] = []

        def send(wire: Wire, index: int) -> None:
            try:
                start.wait()
                for n in range(EACH):
                    wire.send(type="say", id=n, room="lobby", text=f"{index}:{n}")
                for n in range(EACH):
                    wire.until(lambda f, n=n: f.get("ref") == n)  # type: ignore[misc]
            except BaseException as exc:
                failures.append(exc)

        threads = [threading.Thread(target=send, args=(w, i)) for i, w in enumerate(senders)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert not failures
        total = SENDERS * EACH
        orders = []
        for wire in receivers:
            seen = [wire.until(lambda f: f["type"] == "message") for _ in range(total)]
            orders.append([(m["id"], m["nick"], m["text"]) for m in seen])
        assert_one_order(orders, SENDERS, EACH)
        for wire in receivers + senders:
            wire.close()
