"""Ten seconds of the adversarial soak (bench/soak.py) in every test run.

A server subprocess with SQLite, 60 library clients joining, parting,
renaming, saying and sending direct messages in 5 rooms, 6 sockets that never
read, 3 threads of clients that vanish with a TCP reset, and a SIGKILL and
restart of the server halfway. The checks are the soak's own: acknowledged
messages stored exactly once, every reader's rooms in stored order without
gaps or duplicates across the restart, slow consumers dropped without slowing
anyone, and the server's threads and descriptors back at their baseline.
"""

from __future__ import annotations

import pytest

from bench.soak import SoakConfig, run_soak


@pytest.mark.timeout(120)
def test_ten_second_soak_passes_every_check() -> None:
    config = SoakConfig(seconds=10, clients=60, observers=4, slow=6, vanishers=3, interval=0.5)
    report = run_soak(config)
    print(report.summary)  # for the record, with -s or on failure
    failed = [check.name for check in report.checks if not check.passed]
    assert not failed, report.summary
    assert len(report.checks) == 5
