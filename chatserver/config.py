"""Every tunable of the server, with the defaults PROTOCOL.md describes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields

from chatproto import DEFAULT_MAX_FRAME, MAX_TEXT, DirectMessage, Dm, RoomMessage, Say, encode

__all__ = ["DEPLOYMENT_RULES", "MIN_MAX_FRAME", "RULES", "ConfigError", "ServerConfig"]


def _longest_text_frame() -> int:
    """The longest frame that carries a valid `text`: 4000 four-byte characters in a
    `say`, `dm` or their echo, every other field at its longest (LF excluded)."""
    text = "\U0001f600" * MAX_TEXT
    ref = "r" * 64
    big = 2**53 - 1
    nick, room = "n" * 24, "r" * 32
    frames = (
        Say(id=ref, room=room, text=text, key="k" * 64),
        Dm(id=ref, to=nick, text=text, key="k" * 64),
        RoomMessage(ref=ref, id=big, room=room, nick=nick, text=text, ts=big),
        DirectMessage(ref=ref, id=big, nick=nick, to=nick, text=text, ts=big),
    )
    return max(len(encode(frame)) - 1 for frame in frames)


MIN_MAX_FRAME = _longest_text_frame()


class ConfigError(ValueError):
    """A setting breaks its rule: `field` names it, `rule` says what it must be."""

    def __init__(self, field: str, rule: str) -> None:
        super().__init__(f"{field} {rule}")
        self.field = field
        self.rule = rule


@dataclass(frozen=True, slots=True)
class _Rule:
    field: str
    ok: Callable[[ServerConfig], bool]
    rule: str


def _positive(field: str) -> _Rule:
    return _Rule(field, lambda c: getattr(c, field) > 0, "must be positive")


def _not_negative(field: str) -> _Rule:
    return _Rule(field, lambda c: getattr(c, field) >= 0, "must not be negative")


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
    max_handshaking: int = 256  # connections yet to say hello, in all
    max_handshaking_per_address: int = 32
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
    # The process's log (set by the command line): lines below ERROR per second
    # (0: no limit), and at once.
    log_rate: float = 10.0
    log_burst: int = 100

    def __post_init__(self) -> None:
        self.check(RULES)

    def check(self, rules: tuple[_Rule, ...]) -> None:
        """Raise `ConfigError` for the first of `rules` this configuration breaks."""
        for rule in rules:
            if not rule.ok(self):
                raise ConfigError(rule.field, rule.rule)


# Every setting's rule, checked in this order; the first broken one is reported.
# A new setting adds its rule here.
RULES: tuple[_Rule, ...] = (
    _Rule("port", lambda c: 0 <= c.port <= 65535, "must be between 0 and 65535"),
    _positive("max_frame"),
    _Rule("max_text", lambda c: 1 <= c.max_text <= MAX_TEXT, f"must be between 1 and {MAX_TEXT}"),
    _positive("rate"),
    _positive("burst"),
    _not_negative("history"),
    _positive("handshake_timeout"),
    _positive("ping_interval"),
    _positive("ping_timeout"),
    _positive("soft_limit"),
    _positive("soft_seconds"),
    _positive("hard_limit"),
    _Rule(
        "soft_limit",
        lambda c: c.soft_limit <= c.hard_limit,
        "(the soft send-queue limit) must not exceed the hard one",
    ),
    _positive("shutdown_grace"),
    _positive("recv_size"),
    _positive("max_clients"),
    _positive("max_per_address"),
    _positive("max_handshaking"),
    _positive("max_handshaking_per_address"),
    _positive("max_rooms"),
    _positive("max_members"),
    _positive("large_room"),
    _positive("auth_failures"),
    _positive("auth_window"),
    _not_negative("log_rate"),
    _positive("log_burst"),
    _positive("redis_history"),
    _positive("node_ttl"),
    _Rule(
        "tls_key",
        lambda c: (c.tls_cert is None) == (c.tls_key is None),
        "TLS needs both a certificate and a key",
    ),
)

# What a server people use needs besides (tests may run smaller ones).
DEPLOYMENT_RULES: tuple[_Rule, ...] = (
    _Rule(
        "max_frame",
        lambda c: c.max_frame >= MIN_MAX_FRAME,
        f"must be at least {MIN_MAX_FRAME} (bytes of the longest valid text frame)",
    ),
)

assert {r.field for r in RULES + DEPLOYMENT_RULES} <= {f.name for f in fields(ServerConfig)}
