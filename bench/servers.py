"""The servers under test, each started as a subprocess on a free loopback port
and ended by its PID."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "Cluster",
    "ServerProcess",
    "chat_cluster",
    "chat_command",
    "chat_server",
    "ngircd_server",
    "ngircd_version",
]

_TICK = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")
_ROOT = Path(__file__).resolve().parent.parent


@dataclass
class ServerProcess:
    name: str
    proc: subprocess.Popen[bytes]
    host: str
    port: int
    switch_interval: float | None = None  # our server's GIL switch interval, if not 5 ms
    log: Path | None = None  # where its log goes

    def log_lines(self, text: str) -> int:
        """How many lines of the server's log so far contain `text`."""
        if self.log is None or not self.log.exists():
            return 0
        with self.log.open(errors="replace") as lines:
            return sum(text in line for line in lines)

    def cpu(self) -> float:
        """CPU seconds (user + system) the server has used so far."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / _TICK

    def rss(self) -> int:
        """Resident memory now, in bytes."""
        return int(Path(f"/proc/{self.proc.pid}/statm").read_text().split()[1]) * _PAGE

    def peak_rss(self) -> int:
        status = Path(f"/proc/{self.proc.pid}/status").read_text()
        match = re.search(r"VmHWM:\s+(\d+) kB", status)
        return int(match.group(1)) * 1024 if match else 0

    def threads(self) -> int:
        return len(os.listdir(f"/proc/{self.proc.pid}/task"))

    @property
    def addresses(self) -> list[tuple[str, int]]:
        return [(self.host, self.port)]


@dataclass
class Cluster:
    """Our server as nodes of a cluster sharing one redis-server; clients are
    spread over `addresses`. Figures are the nodes' together; Redis's apart."""

    nodes: list[ServerProcess]
    redis: ServerProcess
    name: str = "threadchat"
    switch_interval: float | None = None

    @property
    def addresses(self) -> list[tuple[str, int]]:
        return [(node.host, node.port) for node in self.nodes]

    def log_lines(self, text: str) -> int:
        return sum(node.log_lines(text) for node in self.nodes)

    def cpu(self) -> float:
        return sum(node.cpu() for node in self.nodes)

    def rss(self) -> int:
        return sum(node.rss() for node in self.nodes)

    def peak_rss(self) -> int:
        return sum(node.peak_rss() for node in self.nodes)

    def threads(self) -> int:
        return sum(node.threads() for node in self.nodes)


@contextlib.contextmanager
def _process(
    name: str, cmd: list[str], host: str, port: int | None, *, log: Path, cwd: Path = _ROOT
) -> Iterator[ServerProcess]:
    # Only ours is read from a pipe (for the port it prints, once); its log
    # (stderr), and all ngircd prints in the foreground, go to a file: a pipe
    # nobody reads would stop ngircd once 64 KiB of log lines are in it.
    logfile = log.open("wb")
    out = subprocess.PIPE if port is None else logfile
    proc = subprocess.Popen(cmd, stdout=out, stderr=logfile, cwd=cwd)
    logfile.close()
    try:
        if port is None:  # ours prints where it listens
            assert proc.stdout is not None
            line = proc.stdout.readline().decode()
            match = re.search(r"listening on ([\d.]+):(\d+)", line)
            if not match:
                raise RuntimeError(f"{name} did not start: {line!r}")
            host, port = match.group(1), int(match.group(2))
        else:
            _wait_listening(host, port, proc)
        yield ServerProcess(name, proc, host, port, log=log)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


def _wait_listening(host: str, port: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with status {proc.returncode}")
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=1):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {host}:{port}")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def chat_command(host: str, port: int, db: Path, *extra: str) -> list[str]:
    """`python -m chatserver` with the limits that would cap a load test out of the way."""
    return [
        sys.executable,
        "-m",
        "chatserver",
        "--host",
        host,
        "--port",
        str(port),
        "--db",
        str(db),
        "--rate",
        "1000000",
        "--burst",
        "1000000",
        "--max-clients",
        "100000",
        "--max-per-address",
        "100000",
        "--max-handshaking",
        "100000",
        "--max-handshaking-per-address",
        "100000",
        "--log-level",
        "WARNING",
        *extra,
    ]


@contextlib.contextmanager
def chat_server(
    extra: list[str], *, switch_interval: float | None = None, root: Path | None = None
) -> Iterator[ServerProcess]:
    """Our server, SQLite store in a temporary directory, limits out of the way.

    With `switch_interval`, it runs through bench/gilserver.py with that GIL
    switch interval; with `root`, from the packages in that directory (another
    checkout, e.g. to compare two versions) instead of this one."""
    with tempfile.TemporaryDirectory() as tmp:
        cmd = chat_command(
            "127.0.0.1",
            0,
            Path(tmp) / "bench.db",
            "--max-members",
            "2000",
            "--ping-interval",
            "3600",
            "--history",
            "0",
            *extra,
        )
        if switch_interval is not None:
            script = str(_ROOT / "bench" / "gilserver.py")
            cmd[1:3] = [script, str(switch_interval)]
        log = Path(tmp) / "server.log"
        with _process("threadchat", cmd, "127.0.0.1", None, log=log, cwd=root or _ROOT) as server:
            server.switch_interval = switch_interval
            yield server


@contextlib.contextmanager
def chat_cluster(nodes: int, extra: list[str], *, fsync: str = "always") -> Iterator[Cluster]:
    """`nodes` of our server on one redis-server (append-only file, `appendfsync
    fsync`), each with the limits of `chat_server`."""
    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        port = _free_port()
        redis_cmd = [binary, "--bind", "127.0.0.1", "--port", str(port), "--dir", tmp]
        redis_cmd += ["--save", "", "--appendonly", "yes", "--appendfsync", fsync]
        redis = stack.enter_context(
            _process("redis", redis_cmd, "127.0.0.1", port, log=Path(tmp) / "redis.log")
        )
        url = f"redis://127.0.0.1:{port}/0"
        started = []
        for i in range(nodes):
            cmd = chat_command("127.0.0.1", 0, Path(tmp) / "unused.db", "--redis", url)
            cmd += ["--max-members", "2000", "--ping-interval", "3600", "--history", "0", *extra]
            log = Path(tmp) / f"node{i}.log"
            started.append(
                stack.enter_context(_process(f"node{i}", cmd, "127.0.0.1", None, log=log))
            )
        yield Cluster(started, redis)


_NGIRCD_CONF = """\
[Global]
Name = bench.irc
Info = fan-out benchmark
Listen = 127.0.0.1
Ports = {port}
ServerUID = {uid}
ServerGID = {gid}
MotdPhrase = bench
[Limits]
MaxConnections = 0
MaxConnectionsIP = 0
MaxJoins = 0
MaxPenaltyTime = 0
PingTimeout = 3600
PongTimeout = 3600
[Options]
DNS = no
Ident = no
PAM = no
"""


def ngircd_version() -> str | None:
    binary = shutil.which("ngircd") or (
        "/usr/sbin/ngircd" if Path("/usr/sbin/ngircd").exists() else None
    )
    if binary is None:
        return None
    out = subprocess.run([binary, "--version"], capture_output=True, text=True, check=False)
    return out.stdout.split("\n", 1)[0].strip() or None


@contextlib.contextmanager
def ngircd_server() -> Iterator[ServerProcess]:
    """ngircd in the foreground with a generated config: flood control off, no caps."""
    binary = shutil.which("ngircd") or "/usr/sbin/ngircd"
    with tempfile.TemporaryDirectory() as tmp:
        port = _free_port()
        conf = Path(tmp) / "ngircd.conf"
        conf.write_text(_NGIRCD_CONF.format(port=port, uid=os.getuid(), gid=os.getgid()))
        cmd = [binary, "-n", "-f", str(conf)]
        with _process("ngircd", cmd, "127.0.0.1", port, log=Path(tmp) / "ngircd.log") as server:
            yield server
