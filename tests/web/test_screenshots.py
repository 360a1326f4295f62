"""The README's screenshot command works (and keeps working)."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from tests.web.browser import needs_browser
from tests.web.screenshots import SIZES, main

pytestmark = [needs_browser, pytest.mark.timeout(120)]


def test_screenshots_are_written_at_desktop_and_phone_width(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([str(tmp_path)]) == 0
    for name, size in SIZES.items():
        path = tmp_path / f"web-{name}.png"
        head = path.read_bytes()[:24]
        assert head[:8] == b"\x89PNG\r\n\x1a\n"
        assert struct.unpack(">II", head[16:24]) == size
    assert capsys.readouterr().out.split() == [str(tmp_path / f"web-{n}.png") for n in SIZES]
