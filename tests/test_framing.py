"""FrameDecoder and decode_object: bytes in any chunking to frames, frames to JSON objects."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chatproto import (
    DEFAULT_MAX_FRAME,
    FrameDecoder,
    FrameTooLarge,
    InvalidJson,
    InvalidUtf8,
    NotAnObject,
    RemoteProtocolError,
    decode_object,
)
from chatproto.framing import is_blank
from tests.strategies import chunked, split


def feed_all(decoder: FrameDecoder, chunks: list[bytes]) -> list[bytes]:
    """Feed every chunk, checking the buffer bound after each, and collect the frames."""
    frames: list[bytes] = []
    for chunk in chunks:
        frames += decoder.feed(chunk)
        assert decoder.buffered <= decoder.max_frame + 1
    return frames


@st.composite
def framed_streams(draw: st.DrawFn) -> tuple[int, list[bytes], bytes]:
    """A limit, frames within it and their wire form with LF or CRLF line ends."""
    max_frame = draw(st.integers(1, 48))
    frame = st.binary(max_size=max_frame).map(lambda b: b.replace(b"\n", b""))
    frames = draw(st.lists(frame, max_size=12))
    wire = b""
    for body in frames:
        # A frame that ends in CR keeps it only if a CR LF follows: LF alone
        # would make that CR the dropped one.
        crlf = body.endswith(b"\r") or draw(st.booleans())
        wire += body + (b"\r\n" if crlf else b"\n")
    return max_frame, frames, wire


@given(framed_streams(), st.data())
def test_any_chunking_yields_exactly_the_frames(
    stream: tuple[int, list[bytes], bytes], data: st.DataObject
) -> None:
    max_frame, frames, wire = stream
    decoder = FrameDecoder(max_frame)
    chunks = data.draw(chunked(wire))
    assert b"".join(chunks) == wire
    assert feed_all(decoder, chunks) == frames
    assert decoder.buffered == 0


@given(st.lists(st.binary(max_size=40).map(lambda b: b.replace(b"\n", b"")), max_size=8))
def test_one_byte_at_a_time_and_all_at_once_agree(frames: list[bytes]) -> None:
    wire = b"".join(f + b"\r\n" for f in frames)
    bytewise = feed_all(FrameDecoder(64), [wire[i : i + 1] for i in range(len(wire))])
    whole = FrameDecoder(64).feed(wire)
    assert bytewise == whole == frames


def test_unfinished_frame_is_held_back() -> None:
    decoder = FrameDecoder()
    assert decoder.feed(b'{"a":1}\n{"b"') == [b'{"a":1}']
    assert decoder.buffered == 4
    assert decoder.feed(b":2}") == []
    assert decoder.feed(b"\n") == [b'{"b":2}']
    assert decoder.buffered == 0


def test_crlf_handling() -> None:
    decoder = FrameDecoder()
    # CR LF and LF both end a frame; only the one CR right before the LF is dropped.
    assert decoder.feed(b"a\r\nb\nc\r\r\nd\re\n") == [b"a", b"b", b"c\r", b"d\re"]
    # A CR split from its LF across two chunks is still dropped.
    assert decoder.feed(b"x\r") == []
    assert decoder.feed(b"\n") == [b"x"]
    # The decoder does not judge content: blank lines come out, for the
    # connection to drop (is_blank).
    assert decoder.feed(b"\n\r\n") == [b"", b""]


@pytest.mark.parametrize(
    ("line", "blank"),
    [
        (b"", True),
        (b" ", True),
        (b"\t \r", True),
        (b"\r", True),
        (b" \x0b", False),
        (b"\x00", False),
        (b" {}", False),
        (b"\xc2\xa0", False),
    ],
)
def test_is_blank_means_only_json_whitespace(line: bytes, blank: bool) -> None:
    assert is_blank(line) is blank


@pytest.mark.parametrize("ending", [b"\n", b"\r\n"])
@pytest.mark.parametrize("bytewise", [False, True])
def test_frame_of_exactly_max_frame_is_accepted(ending: bytes, bytewise: bool) -> None:
    max_frame = 32
    body = bytes(range(65, 65 + max_frame))
    wire = body + ending + body + ending
    decoder = FrameDecoder(max_frame)
    chunks = [wire[i : i + 1] for i in range(len(wire))] if bytewise else [wire]
    assert feed_all(decoder, chunks) == [body, body]


def test_default_limit_is_64_kib() -> None:
    assert DEFAULT_MAX_FRAME == 64 * 1024
    decoder = FrameDecoder()
    assert decoder.feed(b"x" * DEFAULT_MAX_FRAME + b"\n") == [b"x" * DEFAULT_MAX_FRAME]
    with pytest.raises(FrameTooLarge):
        decoder.feed(b"x" * (DEFAULT_MAX_FRAME + 1) + b"\n")


@pytest.mark.parametrize("max_frame", [0, -1])
def test_limit_must_be_positive(max_frame: int) -> None:
    with pytest.raises(ValueError, match="positive"):
        FrameDecoder(max_frame)


@given(
    max_frame=st.integers(1, 64),
    before=st.lists(st.binary(max_size=64).map(lambda b: b.replace(b"\n", b"")), max_size=4),
    excess=st.integers(1, 200),
    terminated=st.booleans(),
    data=st.data(),
)
def test_oversized_frame_is_rejected_as_soon_as_it_passes_the_limit(
    max_frame: int,
    before: list[bytes],
    excess: int,
    terminated: bool,
    data: st.DataObject,
) -> None:
    before = [f[:max_frame] for f in before]
    prefix = b"".join(f + b"\r\n" for f in before)
    oversized = b"y" * (max_frame + excess) + (b"\n" if terminated else b"")
    wire = prefix + oversized
    chunks = data.draw(chunked(wire))
    decoder = FrameDecoder(max_frame)
    returned: list[bytes] = []
    fed = 0
    with pytest.raises(FrameTooLarge) as info:
        for chunk in chunks:
            returned += decoder.feed(chunk)
            fed += len(chunk)
            assert decoder.buffered <= max_frame + 1
    # Raised no later than the chunk holding the limit's first excess byte.
    assert fed < len(prefix) + max_frame + 1
    assert returned + info.value.frames == before
    err = info.value
    assert isinstance(err, RemoteProtocolError)
    assert err.code == "frame_too_large"
    assert err.fatal is True


def test_oversized_frame_raises_on_the_byte_that_passes_the_limit() -> None:
    decoder = FrameDecoder(8)
    for _ in range(8):
        assert decoder.feed(b"z") == []
    assert decoder.buffered == 8
    with pytest.raises(FrameTooLarge) as info:
        decoder.feed(b"z")
    assert info.value.frames == []


def test_cr_gets_one_byte_of_slack_but_no_more() -> None:
    decoder = FrameDecoder(4)
    decoder.feed(b"abcd\r")  # a full frame whose LF has not arrived yet
    assert decoder.buffered == 5
    assert decoder.feed(b"\n") == [b"abcd"]
    decoder.feed(b"abcd\r")
    with pytest.raises(FrameTooLarge):
        decoder.feed(b"e")  # the CR was content after all: 6 bytes


def test_blank_lines_still_count_against_the_limit() -> None:
    decoder = FrameDecoder(4)
    assert decoder.feed(b"    \r\n") == [b"    "]
    with pytest.raises(FrameTooLarge):
        decoder.feed(b"     \n")


def test_oversized_frame_after_complete_frames_in_one_chunk() -> None:
    decoder = FrameDecoder(4)
    with pytest.raises(FrameTooLarge) as info:
        decoder.feed(b"ab\ncd\r\ntoolong\nef\n")
    assert info.value.frames == [b"ab", b"cd"]


def test_oversized_completion_of_a_held_back_frame() -> None:
    decoder = FrameDecoder(4)
    assert decoder.feed(b"ok\nabc") == [b"ok"]
    with pytest.raises(FrameTooLarge) as info:
        decoder.feed(b"de\nfine\n")
    assert info.value.frames == []


# --- decode_object -------------------------------------------------------------


def test_decode_object_returns_the_object() -> None:
    assert decode_object(b'{"type": "ping", "n": [1, 2.5, null], "s": "\\u00e9"}') == {
        "type": "ping",
        "n": [1, 2.5, None],
        "s": "\u00e9",
    }
    assert decode_object('{"é": "ü"}'.encode()) == {"é": "ü"}


@pytest.mark.parametrize(
    ("frame", "error", "code"),
    [
        (b"\xff", InvalidUtf8, "invalid_utf8"),
        (b'{"a": "\xc3"}', InvalidUtf8, "invalid_utf8"),
        (b'{"a": "\xed\xa0\x80"}', InvalidUtf8, "invalid_utf8"),  # an encoded surrogate
        (b"", InvalidJson, "invalid_json"),
        (b"{", InvalidJson, "invalid_json"),
        (b"{'a': 1}", InvalidJson, "invalid_json"),
        (b'{"a": 1} x', InvalidJson, "invalid_json"),
        (b"[" * 100_000, InvalidJson, "invalid_json"),  # nested past any recursion limit
        (b"[]", NotAnObject, "not_an_object"),
        (b"[{}]", NotAnObject, "not_an_object"),
        (b'"type"', NotAnObject, "not_an_object"),
        (b"42", NotAnObject, "not_an_object"),
        (b"null", NotAnObject, "not_an_object"),
        (b"true", NotAnObject, "not_an_object"),
        # Settled in 1.3 (PROTOCOL.md section 2): not JSON, wherever they appear.
        (b'{"a": NaN}', InvalidJson, "invalid_json"),
        (b'{"a": [Infinity]}', InvalidJson, "invalid_json"),
        (b'{"a": -Infinity}', InvalidJson, "invalid_json"),
        (b'\xef\xbb\xbf{"a": 1}', InvalidJson, "invalid_json"),  # a byte order mark
        (b'{"a": "\\ud800"}', InvalidJson, "invalid_json"),  # a lone surrogate escape
        (b'{"a": "\\udc00x"}', InvalidJson, "invalid_json"),
        (b'{"\\ud800": 1}', InvalidJson, "invalid_json"),  # in a key too
        (b'{"a": 1' + b"0" * 5000 + b"}", InvalidJson, "invalid_json"),  # beyond the parser
    ],
)
def test_decode_object_errors(frame: bytes, error: type[RemoteProtocolError], code: str) -> None:
    with pytest.raises(error) as info:
        decode_object(frame)
    assert info.value.code == code
    assert info.value.fatal is False
    assert isinstance(info.value, RemoteProtocolError)


def test_decode_object_settled_points() -> None:
    # Duplicate keys: the last wins. -0 is the integer 0; a surrogate pair is one character.
    assert decode_object(b'{"a": 1, "a": 2}') == {"a": 2}
    assert decode_object(b'{"a": -0}') == {"a": 0}
    assert decode_object(b'{"a": "\\ud83d\\ude00"}') == {"a": "\U0001f600"}
    # NaN inside a string is text.
    assert decode_object(b'{"a": "NaN Infinity"}') == {"a": "NaN Infinity"}


@pytest.mark.parametrize(
    "frame",
    [b"\xff" * 70_000, b'{"a": "' + b"\xff" * 1000 + b'"}', b"{" + b"x" * 65_000, b"[" * 70_000],
)
def test_decode_object_messages_are_fixed_texts(frame: bytes) -> None:
    with pytest.raises(RemoteProtocolError) as info:
        decode_object(frame)
    assert len(info.value.message) < 60
    assert "xx" not in info.value.message


@given(st.binary(max_size=200))
def test_decode_object_raises_only_protocol_errors(frame: bytes) -> None:
    try:
        result = decode_object(frame)
    except (InvalidUtf8, InvalidJson, NotAnObject):
        return
    assert isinstance(result, dict)


def test_split_helper_keeps_every_byte() -> None:
    assert split(b"abcdef", [4, 2, 2, 0, 6]) == [b"ab", b"cd", b"ef"]
    assert split(b"", []) == []
