"""Issue 11, "done when": 64 clients that reconnect as soon as they are dropped send
100,000 frames of each kind (valid commands, pong, {}, bad JSON, bad UTF-8) as
fast as they can, while a bystander pings every 10 ms. The flooders are cut off,
the bystander's p99 round trip stays under 50 ms, and the log grows by less
than 100 KB. The flood is bounded in time (40 s); the figures are printed."""

from __future__ import annotations

import json
import re
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.support import Wire

EACH = 100_000
CLIENTS = 64
FLOOD_SECONDS = 40.0
# The bystander pings 100 times a second: the rate limit must allow it (the
# burst stays at its default, 40).
SERVER_FLAGS = ("--store", "memory", "--rate", "150")


class _Bystander(threading.Thread):
    def __init__(self, wire: Wire) -> None:
        super().__init__(daemon=True)
        self.wire = wire
        self.rtts: list[float] = []
        self.stop = threading.Event()
        self.failure: BaseException | None = None

    def run(self) -> None:
        n = 0
        try:
            while not self.stop.wait(0.01):
                n += 1
                started = time.perf_counter()
                reply = self.wire.request(type="ping", token=str(n))
                self.rtts.append(time.perf_counter() - started)
                assert reply["type"] == "pong", reply
        except BaseException as exc:  # reported by the test
            self.failure = exc


@pytest.mark.timeout(120)
def test_a_flood_of_every_kind_of_frame_is_cut_off_and_costs_others_nothing(
    tmp_path: Path,
) -> None:
    log = tmp_path / "server.log"
    with log.open("w") as err:
        server = subprocess.Popen(
            [sys.executable, "-m", "chatserver", "--port", "0", *SERVER_FLAGS],
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
        )
    try:
        assert server.stdout is not None
        match = re.search(r"listening on ([\d.]+):(\d+)", server.stdout.readline())
        assert match
        host, port = match.group(1), int(match.group(2))
        bystander_wire = Wire((host, port))
        assert bystander_wire.hello("bystander")["type"] == "welcome"
        bystander = _Bystander(bystander_wire)
        log_before = log.stat().st_size
        bystander.start()
        flood = subprocess.run(
            [
                *(sys.executable, "-m", "tests.flooder", host, str(port)),
                *("--clients", str(CLIENTS), "--each", str(EACH)),
                *("--seconds", str(FLOOD_SECONDS)),
            ],
            capture_output=True,
            text=True,
            timeout=FLOOD_SECONDS + 30,
            check=True,
        )
        bystander.stop.set()
        bystander.join(10)
        log_growth = log.stat().st_size - log_before
    finally:
        server.send_signal(signal.SIGTERM)
        code = server.wait(10)
        if server.stdout is not None:
            server.stdout.close()
    assert code == 0
    assert bystander.failure is None, bystander.failure
    report = json.loads(flood.stdout)
    rtts = sorted(bystander.rtts)
    p99 = rtts[int(len(rtts) * 0.99) - 1]
    print(
        f"\nflood: {report}\nbystander: {len(rtts)} pings, median "
        f"{statistics.median(rtts) * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms, "
        f"max {rtts[-1] * 1000:.1f} ms; log grew by {log_growth} bytes"
    )
    sent, endings = report["sent"], report["endings"]
    assert set(sent) == {"command", "pong", "empty", "bad_json", "bad_utf8"}
    assert all(count > 0 for count in sent.values())
    # Every flooding connection was cut off (or refused) with a typed error.
    cut = {"rate_limited", "too_many_errors", "too_many_connections", "server_full"}
    assert (
        sum(n for ending, n in endings.items() if ending in cut) >= 0.9 * report["connections"]
    ), endings
    assert len(rtts) >= 50
    assert p99 < 0.050
    assert log_growth < 100_000
