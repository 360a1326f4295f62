"""Every frame a client sends is charged (PROTOCOL.md 10): pongs, bad frames and
commands alike; floods end in a typed fatal error, and the log stays small."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chatserver.ratelimit import Meter, Verdict
from tests.support import login, running

BURST = 6
# Nothing refills while a test runs.
SLOW: dict[str, Any] = {"rate": 0.001, "burst": BURST}

KINDS = st.sampled_from(["ping", "say", "pong", "bye", None])


@given(st.lists(KINDS, max_size=60))
def test_the_meter_cuts_every_flood_within_two_bursts(kinds: list[str | None]) -> None:
    meter = Meter(0.0, BURST)
    verdicts = [meter.charge(kind) for kind in kinds]
    cut = next(
        (n for n, v in enumerate(verdicts) if v in (Verdict.CUT_RATE, Verdict.CUT_ERRORS)), None
    )
    passed = [k for k, v in zip(kinds, verdicts, strict=True) if v is Verdict.PASS]
    # No more than the burst passes but bye, and nothing is ever free.
    assert len([k for k in passed if k != "bye"]) <= BURST
    if cut is not None:
        assert cut < 2 * BURST + kinds[:cut].count("bye")
    # A pong is never answered when refused, a bye never refused.
    for kind, verdict in zip(kinds, verdicts, strict=True):
        if kind == "pong":
            assert verdict is not Verdict.REFUSE
        if kind == "bye":
            assert verdict is Verdict.PASS


@given(st.lists(st.sampled_from(["ping", None]), max_size=40))
def test_rejected_frames_in_a_row_are_cut_at_the_burst(kinds: list[str | None]) -> None:
    meter = Meter(1e9, BURST)  # tokens never run out
    run = 0
    for kind in kinds:
        verdict = meter.charge(kind)
        run = run + 1 if kind is None else 0
        if run >= BURST:
            assert verdict is Verdict.CUT_ERRORS
            return
        assert verdict is Verdict.PASS


def test_hello_is_free_and_a_fatal_rejection_always_passes() -> None:
    meter = Meter(0.0, 1)
    assert meter.charge("ping") is Verdict.PASS
    assert meter.charge("hello") is Verdict.PASS
    assert meter.charge(None, fatal=True) is Verdict.PASS


def test_a_pong_flood_is_charged_and_ends_in_the_fatal_rate_limited() -> None:
    with running(**SLOW) as server:
        wire = login(server, "ponger")
        wire.raw(b'{"type":"pong","token":"x"}\n' * (3 * BURST))
        frames = wire.closed()
        # Pongs are never answered; the burst-th refused one is cut.
        assert [(f["type"], f.get("code"), f.get("fatal")) for f in frames] == [
            ("error", "rate_limited", True)
        ]


def test_pong_spends_a_token() -> None:
    with running(**SLOW) as server:
        wire = login(server, "spender")
        wire.raw(b'{"type":"pong","token":"x"}\n' * (BURST - 1))
        # hello was free: the pongs took all but one token.
        assert wire.request(type="ping")["type"] == "pong"
        refused = wire.request(type="ping")
        assert (refused["code"], refused["fatal"]) == ("rate_limited", False)


def test_bye_works_on_an_empty_bucket() -> None:
    with running(**SLOW) as server:
        wire = login(server, "leaver")
        for _ in range(BURST):
            wire.request(type="ping")
        assert wire.request(type="ping")["code"] == "rate_limited"
        assert wire.request(type="bye")["type"] == "ok"
        assert wire.closed() == []


@pytest.mark.parametrize(
    "frame", [b"{}", b"not json", b'{"type":"say","room":"x"}', b"\xff\xfe{}", b'{"type":"zap"}']
)
def test_bad_frames_are_answered_then_cut_with_too_many_errors(
    frame: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="chatserver")
    secret = b"SECRET-BYTES"
    with running(rate=1e6, burst=BURST) as server:
        wire = login(server, "sloppy")
        wire.raw((frame[:-1] + secret + frame[-1:] + b"\n") * (BURST * 50))
        frames = wire.closed()
    codes = [(f["code"], f["fatal"]) for f in frames]
    assert len(codes) == BURST
    assert codes[-1] == ("too_many_errors", True)
    assert all(not fatal for _, fatal in codes[:-1])
    for f in frames:
        assert "SECRET" not in f["message"]
    lines = [r.getMessage() for r in caplog.records]
    rejected = [r for r in caplog.records if "rejected frame" in r.getMessage()]
    assert len(rejected) <= 5  # the connection's own log budget
    assert not any("SECRET" in line for line in lines)


def test_a_valid_command_between_bad_frames_resets_the_count() -> None:
    with running(rate=1e6, burst=BURST) as server:
        wire = login(server, "mixed")
        for _ in range(5):
            wire.raw(b"{}\n" * (BURST - 1))
            assert wire.request(type="ping")["type"] == "pong"
        wire.raw(b"{}\n" * BURST)
        assert wire.closed()[-1]["code"] == "too_many_errors"


def test_bad_frames_on_an_empty_bucket_are_refused_then_cut() -> None:
    with running(**SLOW) as server:
        wire = login(server, "broke")
        for _ in range(BURST):
            wire.request(type="ping")
        wire.raw(b"{}\n" * (BURST * 3))
        frames = wire.closed()
        assert [f["code"] for f in frames[:-1]] == ["rate_limited"] * (BURST - 1)
        assert (frames[-1]["code"], frames[-1]["fatal"]) == ("too_many_errors", True)
