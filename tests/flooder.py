"""A flood of every kind of frame, from clients that reconnect as soon as they are
dropped: run in a process of its own (so that it does not share the GIL with
the bystander that measures), it prints what it did as one JSON line.

    python -m tests.flooder HOST PORT --clients 64 --each 100000 --seconds 30
"""

from __future__ import annotations

import argparse
import contextlib
import json
import socket
import threading
import time
from collections import Counter

KINDS: dict[str, bytes] = {
    "command": b'{"type":"ping"}\n',
    "pong": b'{"type":"pong","token":"t"}\n',
    "empty": b"{}\n",
    "bad_json": b"{not json\n",
    "bad_utf8": b'{"type":"ping","x":"\xff\xfe"}\n',
}
CHUNK = 1000  # frames of one kind per connection


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("host")
    p.add_argument("port", type=int)
    p.add_argument("--source", default="127.0.0.2")
    p.add_argument("--clients", type=int, default=64)
    p.add_argument("--each", type=int, default=100_000, help="frames of each kind in all")
    p.add_argument("--seconds", type=float, default=30.0)
    args = p.parse_args()
    deadline = time.monotonic() + args.seconds
    sent: Counter[str] = Counter()
    endings: Counter[str] = Counter()
    connections = [0]
    lock = threading.Lock()
    left = dict.fromkeys(KINDS, args.each)

    def claim() -> tuple[str, int] | None:
        with lock:
            for kind, count in left.items():
                if count > 0:
                    take = min(CHUNK, count)
                    left[kind] = count - take
                    return kind, take
        return None

    def give_back(kind: str, count: int) -> None:
        with lock:
            left[kind] += count

    def worker(n: int) -> None:
        while time.monotonic() < deadline:
            job = claim()
            if job is None:
                return
            kind, count = job
            done, ending = _one_connection(args, n, kind, count, deadline)
            with lock:
                connections[0] += 1
                sent[kind] += done
                endings[ending] += 1
            if done < count:
                give_back(kind, count - done)

    started = time.monotonic()
    threads = [threading.Thread(target=worker, args=(n,)) for n in range(args.clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    print(
        json.dumps(
            {
                "sent": dict(sent),
                "endings": dict(endings),
                "connections": connections[0],
                "seconds": round(time.monotonic() - started, 2),
            }
        ),
        flush=True,
    )


def _one_connection(
    args: argparse.Namespace, n: int, kind: str, count: int, deadline: float
) -> tuple[int, str]:
    """Connect, say hello, send `count` frames of `kind` as fast as the socket takes
    them, read to the end; the frames sent and how the connection ended."""
    try:
        sock = socket.create_connection(
            (args.host, args.port), timeout=5, source_address=(args.source, 0)
        )
    except OSError:
        return 0, "connect failed"
    with sock:
        hello = b'{"type":"hello","nick":"f%d"}\n' % n
        frames = KINDS[kind] * count
        try:
            sock.sendall(hello + frames)
            done = count
        except OSError:
            done = 0  # dropped before it took them all
        ending = "closed"
        buf = b""
        with contextlib.suppress(OSError):
            sock.settimeout(max(0.1, min(5.0, deadline - time.monotonic())))
            while data := sock.recv(65536):
                buf += data
                if len(buf) > 1 << 20:
                    buf = buf[-4096:]
        for line in reversed(buf.splitlines()):
            with contextlib.suppress(ValueError):
                frame = json.loads(line)
                if frame.get("type") == "error" and frame.get("fatal"):
                    ending = frame["code"]
                break
        return done, ending


if __name__ == "__main__":
    main()
