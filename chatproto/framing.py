"""Newline-delimited framing: bytes in any chunking in, complete frames out.

A frame is the bytes of one JSON object followed by LF; a CR before the LF is
dropped. The decoder never holds more than `max_frame` bytes of an unfinished
frame: the moment a frame passes the limit it raises, so a peer cannot make
it buffer an endless line.
"""

from __future__ import annotations

import json
from typing import Any

from chatproto.errors import FrameTooLarge, InvalidJson, InvalidUtf8, NotAnObject

__all__ = ["DEFAULT_MAX_FRAME", "FrameDecoder", "decode_object"]

DEFAULT_MAX_FRAME = 64 * 1024


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
                    f"frame of {len(line)} bytes exceeds the maximum of {limit}",
                    frames=lines[:index],
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
    """Parse one frame into a JSON object, raising the protocol's typed errors."""
    try:
        text = frame.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidUtf8(f"frame is not valid UTF-8: {exc.reason} at byte {exc.start}") from None
    try:
        value = json.loads(text)
    except (ValueError, RecursionError) as exc:  # RecursionError: nested too deeply
        raise InvalidJson(f"frame is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise NotAnObject(f"frame is a JSON {type(value).__name__}, not an object")
    return value
