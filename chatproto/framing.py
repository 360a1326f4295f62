"""Newline-delimited framing: bytes in any chunking in, complete frames out.

A frame is the bytes of one JSON object followed by LF; a CR before the LF is
dropped. The decoder returns every line, blank ones too: a line of nothing but
JSON whitespace is no frame (PROTOCOL.md section 2), but telling so costs a
look at every line, so the connections do it only for lines that fail to
parse (`is_blank`). The decoder never holds more than `max_frame` bytes of an
unfinished line: the moment one passes the limit it raises, so a peer cannot
make it buffer an endless line.
"""

from __future__ import annotations

from typing import Any

from pydantic_core import from_json

from chatproto.errors import FrameTooLarge, InvalidJson, InvalidUtf8, NotAnObject

__all__ = ["DEFAULT_MAX_FRAME", "FrameDecoder", "decode_object", "is_blank"]

DEFAULT_MAX_FRAME = 64 * 1024
# JSON's whitespace besides LF (RFC 8259 section 2): a line of only these is blank.
_BLANK = b" \t\r"


def is_blank(line: bytes) -> bool:
    """Whether `line` is empty or only JSON whitespace: not a frame, never answered."""
    return not line.strip(_BLANK)


class FrameDecoder:
    """Splits a byte stream into frames of at most `max_frame` bytes (LF excluded)."""

    def __init__(self, max_frame: int = DEFAULT_MAX_FRAME) -> None:
        if max_frame < 1:
            raise ValueError("max_frame must be positive")
        self.max_frame = max_frame
        self._partial = bytearray()

    @property
    def buffered(self) -> int:
        """Bytes of an unfinished frame held back for the next call."""
        return len(self._partial)

    def feed(self, data: bytes) -> list[bytes]:
        """Return the frames that `data` completes, without their line ends.

        Raises `FrameTooLarge` once a frame passes the limit; the frames that
        were complete before it are on the exception's `frames`.
        """
        if self._partial:
            end = data.find(b"\n")
            if end < 0:
                self._partial += data
                self._check_partial([])
                return []
            self._partial += data[:end]
            head = bytes(self._partial)
            self._partial.clear()
            lines = [head, *data[end + 1 :].split(b"\n")]
        else:
            lines = data.split(b"\n")
        rest = lines.pop()
        limit = self.max_frame
        for index, raw in enumerate(lines):
            line = raw[:-1] if raw.endswith(b"\r") else raw
            lines[index] = line
            if len(line) > limit:
                raise FrameTooLarge(
                    f"frame exceeds the maximum of {limit} bytes", frames=lines[:index]
                )
        self._partial += rest
        self._check_partial(lines)
        return lines

    def _check_partial(self, complete: list[bytes]) -> None:
        # One byte of slack: a CR at the end of a full-size frame may still be
        # waiting for its LF.
        slack = 1 if self._partial.endswith(b"\r") else 0
        if len(self._partial) > self.max_frame + slack:
            self._partial.clear()
            raise FrameTooLarge(
                f"frame exceeds the maximum of {self.max_frame} bytes", frames=complete
            )


def decode_object(frame: bytes) -> dict[str, Any]:
    """Parse one frame into a JSON object, raising the protocol's typed errors.

    The parser is the one the models validate with, so both agree on what is
    JSON: no `NaN` or `Infinity`, no byte order mark, no lone surrogate
    escape; of duplicate keys the last wins. Messages are fixed texts: they
    never quote the frame.
    """
    try:
        value = from_json(frame, allow_inf_nan=False)
    except ValueError:
        try:
            frame.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidUtf8("the frame is not valid UTF-8") from None
        raise InvalidJson("the frame is not valid JSON") from None
    if not isinstance(value, dict):
        raise NotAnObject("the frame is JSON but not an object")
    return value
