"""Every fan-out, connection and cluster run of docs/BENCHMARKS.md, then its
tables and plot: one command.

    .venv/bin/python bench/suite.py                     # about 10 minutes on 2 cores
    .venv/bin/python bench/suite.py --only fanout slow  # a part of it

Each step is one bench/fanout.py command line (printed before it runs), with
`--json` to the results file (docs/fanout-results.jsonl, emptied first unless
--keep); bench/report.py then prints the Markdown tables and writes the plot
(docs/fanout.png).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FANOUT = "bench/fanout.py"

# Flags that make our server drop a receiver that stops reading for 5 s at
# this rate (the defaults, 256 KiB held 10 s or 1 MiB, would let it catch up).
SLOW_LIMITS = [
    "--server-arg=--hard-limit=262144",
    "--server-arg=--soft-limit=65536",
    "--server-arg=--soft-seconds=1",
]

STEPS: dict[str, list[list[str]]] = {
    # Messages per sender chosen so that sending lasts a few seconds on each server.
    "fanout": [
        ["--clients", "10", "--messages", "15000"],
        ["--clients", "100", "--messages", "4000"],
        ["--clients", "500", "--messages", "1500"],
        [
            "--clients",
            "10",
            "100",
            "500",
            "--messages",
            "250",
            "--rate",
            "50",
            "--phase",
            "together",
        ],
        ["--clients", "10", "100", "500", "--messages", "250", "--rate", "50", "--phase", "spread"],
    ],
    "slow": [
        [
            *("--clients", "20", "--slow", "2", "--rate", "200", "--phase", "together"),
            *("--messages", "2400", *SLOW_LIMITS),
        ],
    ],
    "connections": [
        ["--mode", "connections", "--clients", "10000", "--rooms", "100"],
        ["--mode", "connections", "--clients", "2000", "--rooms", "1"],
    ],
    # Our server as 1, 2 and 3 cluster nodes on one redis-server, beside itself alone.
    "cluster": [
        ["--server", "ours", "--clients", "100", "500", "--messages", "2000"],
        ["--nodes", "1", "2", "3", "--clients", "100", "500", "--messages", "2000"],
        ["--server", "ours", "--clients", "100", "--messages", "250", "--rate", "50"],
        ["--nodes", "1", "2", "3", "--clients", "100", "--messages", "250", "--rate", "50"],
    ],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", choices=list(STEPS), default=list(STEPS))
    parser.add_argument("--results", type=Path, default=ROOT / "docs" / "fanout-results.jsonl")
    parser.add_argument("--plot", type=Path, default=ROOT / "docs" / "fanout.png")
    parser.add_argument("--keep", action="store_true", help="append to the results file")
    parser.add_argument(
        "--extra", nargs=argparse.REMAINDER, default=[], help="more flags for every step"
    )
    args = parser.parse_args()
    if not args.keep:
        args.results.write_text("")
    for part in args.only:
        for step in STEPS[part]:
            results = args.results.resolve()
            shown = results.relative_to(ROOT) if results.is_relative_to(ROOT) else results
            cmd = [sys.executable, FANOUT, *step, "--json", str(shown), *args.extra]
            print("$", " ".join(cmd[1:]), flush=True)
            subprocess.run(cmd, cwd=ROOT, check=True, timeout=1800)
    subprocess.run(
        [sys.executable, "bench/report.py", str(args.results), "--plot", str(args.plot)],
        cwd=ROOT,
        check=True,
    )


if __name__ == "__main__":
    main()
