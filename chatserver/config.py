"""Every tunable of the server, with the defaults PROTOCOL.md describes."""

from __future__ import annotations

from dataclasses import dataclass

from chatproto import DEFAULT_MAX_FRAME, MAX_TEXT

__all__ = ["ServerConfig"]


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """Limits and timings; one instance is shared, read-only, by every thread."""

    host: str = "127.0.0.1"
    port: int = 7878
    name: str = "threadchat"
    motd: str | None = None
    max_clients: int = 1000
    history: int = 20
    max_frame: int = DEFAULT_MAX_FRAME
    max_text: int = MAX_TEXT
    rate: float = 20.0
    burst: int = 40
    handshake_timeout: float = 10.0
    ping_interval: float = 30.0
    ping_timeout: float = 30.0
    soft_limit: int = 256 * 1024
    soft_seconds: float = 10.0
    hard_limit: int = 1024 * 1024
    shutdown_grace: float = 1.5
    recv_size: int = 4096
    server_password: str | None = None
    max_per_address: int = 64
    max_rooms: int = 50
    max_members: int = 10_000
    large_room: int = 250  # a room with more members is large (PROTOCOL.md 1.3)
    auth_failures: int = 5
    auth_window: float = 60.0
    tls_cert: str | None = None
    tls_key: str | None = None
    redis_url: str | None = None  # set: a node of a cluster sharing this Redis
    redis_history: int = 10_000  # entries kept per room stream in Redis
    node_ttl: float = 10.0  # a cluster node silent this long is taken for dead
    web: bool = True  # serve the web client and WebSockets on the same port
    web_origins: tuple[str, ...] = ()  # page origins allowed besides the server's own
    trusted_proxies: tuple[str, ...] = ()  # addresses or networks whose X-Forwarded-For counts

    def __post_init__(self) -> None:
        if not 1 <= self.max_text <= MAX_TEXT:
            raise ValueError(f"max_text must be between 1 and {MAX_TEXT}")
        if self.soft_limit > self.hard_limit:
            raise ValueError("the soft send-queue limit must not exceed the hard one")
        for name in (
            "max_clients",
            "burst",
            "max_frame",
            "recv_size",
            "max_per_address",
            "max_rooms",
            "max_members",
            "large_room",
            "auth_failures",
            "redis_history",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be positive")
        if self.node_ttl <= 0:
            raise ValueError("node_ttl must be positive")
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("TLS needs both a certificate and a key")
