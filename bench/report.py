"""Tables and the plot from bench/fanout.py's `--json` results.

    .venv/bin/python bench/report.py docs/fanout-results.jsonl --plot docs/fanout.png

Prints, as Markdown: the fan-out rows side by side (ours, ngircd, ours/ngircd
for each figure), the slow-receiver rows and the connection rows. When a
workload was run more than once, the last run counts. The plot (matplotlib,
from the `bench` extra) shows deliveries per second, server CPU per delivery
and p99 latency against the number of clients, for both servers.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

OURS, THEIRS = "threadchat", "ngircd"
Record = dict[str, Any]


def load(path: Path) -> list[Record]:
    """The single-server runs of a results file (cluster runs, `--nodes`, have
    their own table in docs/BENCHMARKS.md, printed by bench/fanout.py)."""
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [r for r in records if not r.get("nodes")]


def _rate(r: Record) -> str:
    return "full" if not r["rate"] else f"{r['rate']:g}/s {r['phase']}"


def _key(r: Record) -> tuple[Any, ...]:
    return (r["clients"], r["senders"], r["rate"], r.get("phase", "-"), r.get("slow", 0))


def pairs(records: Iterable[Record], slow: bool) -> list[tuple[Record | None, Record | None]]:
    """(ours, ngircd) per fan-out workload, in the order first seen; the last run counts."""
    found: dict[tuple[Any, ...], dict[str, Record]] = {}
    for r in records:
        if r.get("mode") == "fanout" and bool(r.get("slow", 0)) == slow:
            found.setdefault(_key(r), {})[r["server"]] = r
    return [(both.get(OURS), both.get(THEIRS)) for both in found.values()]


def _ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.2f}" if a is not None and b else "-"


def _get(r: Record | None, field: str) -> float | None:
    return None if r is None else float(r[field])


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def fanout_table(records: list[Record]) -> str:
    lines = [
        "| clients | rate | deliveries/s ours | ngircd | ratio | complete ours / ngircd "
        "| µs/delivery ours | ngircd | ratio | p50 ms ours / ngircd | p99 ms ours | ngircd "
        "| ratio | max ms ours / ngircd | generator CPU s ours / ngircd | bound ours; ngircd "
        "| peak RSS MiB ours / ngircd | join s ours / ngircd | dups + reorders ours / ngircd |",
        "|" + "---|" * 19,
    ]
    for ours, theirs in pairs(records, slow=False):
        any_ = ours or theirs
        assert any_ is not None

        def both(field: str, spec: str, o: Record | None = ours, t: Record | None = theirs) -> str:
            return f"{_fmt(_get(o, field), spec)} / {_fmt(_get(t, field), spec)}"

        lines.append(
            f"| {any_['clients']} | {_rate(any_)} "
            f"| {_fmt(_get(ours, 'per_s'), ',.0f')} | {_fmt(_get(theirs, 'per_s'), ',.0f')} "
            f"| {_ratio(_get(ours, 'per_s'), _get(theirs, 'per_s'))} "
            f"| {_pct(ours)} / {_pct(theirs)} "
            f"| {_fmt(_get(ours, 'cpu_us'), '.2f')} | {_fmt(_get(theirs, 'cpu_us'), '.2f')} "
            f"| {_ratio(_get(ours, 'cpu_us'), _get(theirs, 'cpu_us'))} "
            f"| {both('p50_ms', '.1f')} "
            f"| {_fmt(_get(ours, 'p99_ms'), '.1f')} | {_fmt(_get(theirs, 'p99_ms'), '.1f')} "
            f"| {_ratio(_get(ours, 'p99_ms'), _get(theirs, 'p99_ms'))} "
            f"| {both('max_ms', '.1f')} | {both('gen_cpu_s', '.2f')} "
            f"| {ours['bound'] if ours else '-'}; {theirs['bound'] if theirs else '-'} "
            f"| {both('peak_rss_mib', '.0f')} | {both('join_s', '.2f')} "
            f"| {_faults(ours)} / {_faults(theirs)} |"
        )
    return "\n".join(lines)


def _faults(r: Record | None) -> str:
    return "-" if r is None else str(r["duplicates"] + r["reorders"])


def _pct(r: Record | None) -> str:
    return "-" if r is None else f"{r['complete']:.2%}"


def slow_table(records: list[Record]) -> str:
    """Each slow run beside the run of the same workload with nobody slow."""
    base = {
        (*_key(r)[:4], r["server"]): r
        for r in records
        if r.get("mode") == "fanout" and not r.get("slow")
    }
    lines = [
        "| server | clients | rate | slow receivers | healthy complete | healthy p50 ms "
        "| healthy p99 ms | p99 nobody slow ms | p99 ratio | slow ones dropped "
        "| drops the server logged as too slow | read the reason | server µs/delivery "
        "| generator CPU s |",
        "|" + "---|" * 14,
    ]
    for ours, theirs in pairs(records, slow=True):
        for r in (ours, theirs):
            if r is None:
                continue
            calm = base.get((*_key(r)[:4], r["server"]))
            calm_p99 = None if calm is None else float(calm["p99_ms"])
            lines.append(
                f"| {r['server']} | {r['clients']} | {_rate(r)} "
                f"| {r['slow']} stop reading {r['pause_s']:g} s | {r['complete']:.2%} "
                f"| {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | {_fmt(calm_p99, '.1f')} "
                f"| {_ratio(r['p99_ms'], calm_p99)} | {r['slow_dropped']}/{r['slow']} "
                f"| {r.get('slow_logged', '-')} "
                f"| {r['slow_told']}/{r['slow_dropped']} | {r['cpu_us']:.2f} "
                f"| {r['gen_cpu_s']:.2f} |"
            )
    return "\n".join(lines)


def connections_table(records: list[Record]) -> str:
    found: dict[tuple[Any, ...], Record] = {}
    for r in records:
        if r.get("mode") == "connections":
            found[(r["clients"], r["rooms"], r["server"])] = r
    lines = [
        "| server | clients | rooms | joined | connect + join s | server CPU s "
        "| generator CPU s | server RSS MiB | RSS per connection KiB | server threads |",
        "|" + "---|" * 10,
    ]
    for r in found.values():
        lines.append(
            f"| {r['server']} | {r['clients']:,} | {r['rooms']} | {r['joined']:,} "
            f"| {r['connect_and_join_s']:.2f} | {r['server_cpu_s']:.2f} | {r['gen_cpu_s']:.2f} "
            f"| {r['server_rss_mib']:.1f} "
            f"| {r['rss_per_connection_kib']:.1f} | {r['server_threads']} |"
        )
    return "\n".join(lines)


def plot(records: list[Record], out: Path) -> None:
    import matplotlib  # noqa: PLC0415 - a bench-only dependency

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    sizes: dict[str, set[int]] = {}
    for r in records:
        if r.get("mode") == "fanout" and not r.get("slow"):
            sizes.setdefault(_rate(r), set()).add(r["clients"])
    rates = [rate for rate, clients in sizes.items() if len(clients) > 1]
    figures = (
        ("per_s", "deliveries/s"),
        ("cpu_us", "server CPU µs per delivery"),
        ("p99_ms", "p99 latency, ms"),
    )
    fig, axes = plt.subplots(
        len(rates), len(figures), figsize=(13, 3.4 * len(rates)), squeeze=False
    )
    for row, rate in enumerate(rates):
        for col, (field, label) in enumerate(figures):
            ax = axes[row][col]
            for server, style in ((OURS, "o-"), (THEIRS, "s--")):
                points = sorted(
                    (r["clients"], r[field])
                    for ours, theirs in pairs(records, slow=False)
                    for r in (ours, theirs)
                    if r is not None and r["server"] == server and _rate(r) == rate
                )
                if points:
                    xs, ys = zip(*points, strict=True)
                    ax.plot(xs, ys, style, label=server)
            ax.set_xscale("log")
            ax.set_xlabel("clients in the room (10 senders)")
            ax.set_title(f"{label} ({rate})", fontsize=10)
            ax.grid(True, which="both", alpha=0.3)
            ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path, help="JSON lines from bench/fanout.py --json")
    parser.add_argument("--plot", type=Path, help="write the PNG here")
    args = parser.parse_args()
    records = load(args.results)
    print(fanout_table(records), end="\n\n")
    if any(r.get("slow") for r in records):
        print(slow_table(records), end="\n\n")
    if any(r.get("mode") == "connections" for r in records):
        print(connections_table(records))
    if args.plot:
        plot(records, args.plot)
        print(f"\nplot: {args.plot}")


if __name__ == "__main__":
    main()
