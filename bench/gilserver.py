"""Our server with another GIL switch interval: `python bench/gilserver.py SECONDS ARGS...`.

CPython hands the GIL from a running thread to a waiting one only every
`sys.getswitchinterval()` seconds (`chatserver.cli.SWITCH_INTERVAL` in the
server), unless the running thread blocks first: a reader or the writer
woken by its socket may wait that long behind a busy thread. This runs
`chatserver.cli.main(ARGS)` with the interval given, to measure what it
costs (bench/fanout.py `--switch-interval`, bench/large_room.py).
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.getcwd())  # the checkout whose server runs (bench/servers.py sets it)

from chatserver import cli

if __name__ == "__main__":
    cli.SWITCH_INTERVAL = float(sys.argv[1])
    raise SystemExit(cli.main(sys.argv[2:]))
