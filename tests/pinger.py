"""A bystander in a process of its own: logs in, pings every 10 ms until its stdin
closes, then prints every round trip (seconds) as one JSON list. Measuring from
here keeps the test runner's own pauses out of the figures.

    python -m tests.pinger HOST PORT
"""

from __future__ import annotations

import json
import sys
import threading
import time

from tests.support import Wire


def main() -> None:
    host, port = sys.argv[1], int(sys.argv[2])
    wire = Wire((host, port))
    assert wire.hello("bystander")["type"] == "welcome"
    stop = threading.Event()

    def wait_for_eof() -> None:
        sys.stdin.read()
        stop.set()

    threading.Thread(target=wait_for_eof, daemon=True).start()
    print("ready", flush=True)
    rtts: list[float] = []
    n = 0
    while not stop.wait(0.01):
        n += 1
        started = time.perf_counter()
        reply = wire.request(type="ping", token=str(n))
        rtts.append(time.perf_counter() - started)
        assert reply["type"] == "pong", reply
    print(json.dumps(rtts), flush=True)


if __name__ == "__main__":
    main()
