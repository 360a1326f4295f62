"""A cluster node's liveness: it says it is alive, and cleans up after dead nodes.

Every `ttl / 3` seconds the node renews a key that expires after `ttl`, and
releases the nicks and memberships of any node whose key has expired (a node
killed with SIGKILL): their rooms hear `member_left` with reason `lost`. A
node that finds it was itself taken for dead (Redis was out of its reach for
longer than `ttl`) drops its clients with `unavailable`, so that they log in
again and the cluster learns of them anew; so does a node that finds Redis
lost the cluster's data (restarted without persistence). Releases that
failed while Redis was unreachable are retried here until they succeed.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

from chatproto import ErrorCode, LeaveReason
from chatserver.housekeeping import kick
from chatserver.hub import Hub
from chatserver.logs import log_failure
from chatserver.redis_client import OUTAGES, OutageLog

__all__ = ["Heartbeat"]

log = logging.getLogger(__name__)


class Heartbeat(threading.Thread):
    def __init__(
        self,
        hub: Hub,
        client: Any,
        *,
        scripts: dict[str, Any],
        node: str,
        cap: str,
        ttl: float,
        on_data_lost: Callable[[], None],
    ) -> None:
        super().__init__(name="chat-heartbeat", daemon=True)
        self._hub = hub
        self._redis = client
        self._scripts = scripts
        self._node = node
        self._cap = cap
        self._ttl_ms = max(1, round(ttl * 1000))
        self.every = ttl / 3
        self._halt = threading.Event()
        self._releases: deque[tuple[str, str, str]] = deque()
        self._on_data_lost = on_data_lost
        self._epoch = ""
        self._outage = OutageLog(log, "heartbeat")

    def retry_later(self, release: tuple[str, str, str]) -> None:
        """Keep a failed release (folded nick, session key, reason) for the next beat."""
        self._releases.append(release)

    def beat_once(self) -> None:
        """Announce this node; raises if Redis cannot be reached."""
        _, self._epoch = self._renew()

    def _renew(self) -> tuple[int, str]:
        reaped, epoch = self._scripts["HEARTBEAT"](
            args=[self._cap, self._node, self._ttl_ms, secrets.token_hex(8)]
        )
        return int(reaped), str(epoch)

    def stop(self) -> None:
        self._halt.set()

    def leave(self) -> None:
        """Say this node is gone, at a clean shutdown. Its clients were released;
        should any release have failed, the next node to reap it finishes the job."""
        with contextlib.suppress(*OUTAGES):
            self._redis.delete(f"chat:alive:{self._node}", f"chat:inbox:{self._node}")

    def run(self) -> None:
        while not self._halt.wait(self.every):
            try:
                self._beat()
            except OUTAGES as exc:
                self._outage.down(exc)
                continue
            except Exception:
                log_failure(log, "heartbeat failed")
                continue
            self._outage.up()

    def _beat(self) -> None:
        run = self._scripts
        reaped, epoch = self._renew()
        if epoch != self._epoch:
            log.error(
                "Redis lost the cluster's data (restarted without persistence?); message "
                "ids start again from 1; dropping every client so that they log in anew"
            )
            self._epoch = epoch
            self._drop_everyone()
            self._on_data_lost()
        elif reaped:
            log.warning("this node was taken for dead while Redis was unreachable")
            self._drop_everyone()
        while self._releases:
            run["RELEASE"](args=[self._cap, *self._releases[0]])
            self._releases.popleft()
        for node in self._redis.smembers("chat:nodes"):
            dead = node != self._node and not self._redis.exists(f"chat:alive:{node}")
            released = run["REAP"](args=[self._cap, node]) if dead else 0
            if released:
                log.warning("cluster node %s stopped answering; released %d nicks", node, released)

    def _drop_everyone(self) -> None:
        self._releases.clear()
        hub = self._hub
        with hub.lock:
            sessions = list(hub.sessions)
        for session in sessions:
            kick(
                hub,
                session,
                ErrorCode.UNAVAILABLE,
                "this server lost touch with its cluster; please reconnect",
                LeaveReason.LOST,
            )
