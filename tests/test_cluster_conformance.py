"""The conformance suite, run against a cluster node: a node is a server by PROTOCOL.md."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.redis_support import redis_server
from tests.support import server_process

ROOT = Path(__file__).resolve().parent.parent
_NOT_YET = ("test_resume.py", "test_idempotency.py")


@pytest.mark.timeout(240)
def test_a_cluster_node_passes_the_conformance_suite(tmp_path: Path) -> None:
    with (
        redis_server(tmp_path) as redis,
        server_process("--redis", redis.url) as (_, (host, port)),
    ):
        suite = subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                "-p",
                "no:cacheprovider",
                "tests/conformance",
                # Not in a cluster yet (PROTOCOL.md 1.3 lets a server ignore a
                # token; the cluster does not deduplicate keys yet).
                *(f"--ignore=tests/conformance/{name}" for name in _NOT_YET),
            ],
            cwd=ROOT,
            env={**os.environ, "CHAT_SERVER": f"{host}:{port}"},
            capture_output=True,
            text=True,
            timeout=220,
            check=False,
        )
    summary = suite.stdout.strip().splitlines()[-1] if suite.stdout.strip() else suite.stderr
    assert suite.returncode == 0, suite.stdout[-3000:]
    passed = re.search(r"(\d+) passed", summary)
    assert passed is not None and int(passed.group(1)) >= 300, summary
