"""The index of idempotency keys: what it keeps, and that its memory is bounded."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from chatserver.keys import ENTRY_COST, RecentKeys
from chatserver.local import LocalBackend
from chatserver.sqlite_store import SQLiteStore
from tests.support import login, running

TTL, KEEP = 10.0, 3
# (nick, key, cost, seconds since the previous put)
PUTS = st.lists(
    st.tuples(
        st.sampled_from("abc"),
        st.text("xyz", min_size=1, max_size=3),
        st.integers(0, 500),
        st.floats(0, 4),
    ),
    max_size=60,
)


@given(PUTS, st.integers(ENTRY_COST * 2, ENTRY_COST * 20))
def test_keys_are_kept_as_promised_within_the_budget(
    puts: list[tuple[str, str, int, float]], budget: int
) -> None:
    keys: RecentKeys[int] = RecentKeys(ttl=TTL, keep=KEEP, budget=budget)
    now = 0.0
    log: list[tuple[str, str, float, int]] = []  # every put, in order
    spent = False  # whether the budget was ever exceeded (the oldest then went)
    for n, (nick, key, cost, gap) in enumerate(puts):
        now += gap
        keys.put(nick, key, n, cost, now)
        log = [e for e in log if (e[0], e[1]) != (nick, key)] + [(nick, key, now, n)]
        total = sum(ENTRY_COST + len(e[0]) + len(e[1]) + puts[e[3]][2] for e in log)
        assert keys.cost <= budget, "never over the budget"
        spent = spent or total > budget
        if not spent:
            # Within budget: every key younger than the ttl, and each nick's
            # last KEEP keys, are still there with their values.
            for i, (n_nick, n_key, at, value) in enumerate(log):
                later = sum(1 for e in log[i + 1 :] if e[0] == n_nick)
                if now - at < TTL or later < KEEP:
                    assert keys.get(n_nick, n_key) == value
    assert len(keys) <= len({(nick, key) for nick, key, _, _ in puts})


def test_the_oldest_key_goes_first_when_the_budget_is_spent() -> None:
    keys: RecentKeys[str] = RecentKeys(ttl=600, keep=1000, budget=3 * (ENTRY_COST + 2))
    for n in range(4):
        keys.put("a", str(n), f"v{n}", 0, now=float(n))
    assert keys.get("a", "0") is None
    assert [keys.get("a", str(n)) for n in (1, 2, 3)] == ["v1", "v2", "v3"]
    assert keys.cost == 3 * (ENTRY_COST + 2)


def test_the_index_says_when_young_keys_were_pushed_out() -> None:
    keys: RecentKeys[int] = RecentKeys(ttl=10, keep=1000, budget=2 * (ENTRY_COST + 2))
    keys.put("a", "1", 1, 0, now=0.0)
    keys.put("a", "2", 2, 0, now=1.0)
    assert keys.complete(now=1.0)
    keys.put("a", "3", 3, 0, now=2.0)  # pushes out "1", 2 s old
    assert not keys.complete(now=2.0)
    assert not keys.complete(now=9.9)
    assert keys.complete(now=10.0), "once the pushed-out key would have expired anyway"


def test_a_key_pushed_out_of_memory_is_found_in_sqlite(tmp_path: Path) -> None:
    with running(SQLiteStore(tmp_path / "chat.db")) as server:
        assert isinstance(server.backend, LocalBackend)
        # A budget for three keys: a flood of keyed says pushes the first out.
        server.backend.sequencer.keys = RecentKeys(budget=3 * (ENTRY_COST + 40))
        wire = login(server, "alice", "lobby")
        first = wire.request(type="say", room="lobby", text="first", key="k0")
        for n in range(1, 20):
            wire.request(type="say", room="lobby", text=f"m{n}", key=f"k{n}")
        assert not server.backend.sequencer.keys.complete()
        retry = wire.request(type="say", room="lobby", text="first", key="k0")
        assert {k: v for k, v in retry.items() if k != "ref"} == {
            k: v for k, v in first.items() if k != "ref"
        }
        history = wire.request(type="history", room="lobby", limit=100)
        assert len(history["messages"]) == 20
