"""PROTOCOL.md cannot drift from the code: its examples and tables are checked here."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from chatproto import (
    COMMAND_TYPES,
    EVENT_TYPES,
    PROTOCOL_VERSION,
    ErrorCode,
    Limits,
    parse_command,
    parse_event,
)

SPEC = (Path(__file__).resolve().parent.parent / "PROTOCOL.md").read_text(encoding="utf-8")
BLOCKS = re.findall(r"^```json (client|server)\n(.*?)^```$", SPEC, flags=re.M | re.S)
EXAMPLES = [(side, line) for side, body in BLOCKS for line in body.splitlines() if line.strip()]


def test_spec_has_examples_of_both_directions() -> None:
    sides = {side for side, _ in EXAMPLES}
    assert sides == {"client", "server"}
    assert "```json\n" not in SPEC, "every json example must say which side sends it"


@pytest.mark.parametrize(("side", "line"), EXAMPLES)
def test_example_is_a_valid_frame(side: str, line: str) -> None:
    frame = line.encode()
    message = parse_command(frame) if side == "client" else parse_event(frame)
    assert message.type == line.split('"type":"', 1)[1].split('"', 1)[0]


def test_every_message_type_has_an_example() -> None:
    shown = {(side, line.split('"type":"', 1)[1].split('"', 1)[0]) for side, line in EXAMPLES}
    assert {t for side, t in shown if side == "client"} == COMMAND_TYPES
    assert {t for side, t in shown if side == "server"} == EVENT_TYPES


def test_error_table_lists_every_code() -> None:
    table = set(re.findall(r"^\| `([a-z0-9_]+)` \| (?:yes|no|before|at|when)", SPEC, flags=re.M))
    assert table == {code.value for code in ErrorCode}


def test_title_names_the_version_of_the_code() -> None:
    assert SPEC.startswith(f"# Chat protocol, version {PROTOCOL_VERSION}\n")
    assert f"- **{PROTOCOL_VERSION}**:" in SPEC, "section 15 lists this version's changes"


def test_limits_table_lists_every_limit_with_a_default() -> None:
    rows = re.findall(r"^\| `([a-z_]+)` \| [^|]+ \| [^|]+ \| ([0-9.]+) \|$", SPEC, flags=re.M)
    assert {name for name, _ in rows} == set(Limits.model_fields)


def _command_sections() -> list[tuple[str, str]]:
    parts = re.split(r"^### 6\.\d+ ", SPEC.split("## 7. Events")[0], flags=re.M)[1:]
    return [(part.split("`", 2)[1], part) for part in parts]


@pytest.mark.parametrize(
    ("name", "section"), _command_sections(), ids=[name for name, _ in _command_sections()]
)
def test_each_command_has_a_table_of_exactly_its_fields(name: str, section: str) -> None:
    frame = re.search(r"^```json client\n(.*?)\n", section, flags=re.M)
    assert frame is not None
    command = type(parse_command(frame[1].encode()))
    fields = set(command.model_fields) - {"type", "id"}
    tables = re.findall(
        r"^\| field \| type \| \|\n\| --- \| --- \| --- \|\n((?:\|.*\n)+)", section, flags=re.M
    )
    if not fields:
        assert not tables or not tables[0].startswith("| `"), name
        return
    assert tables, f"6: {name} has no field table"
    listed = set(re.findall(r"^\| `([a-z_]+)` \|", tables[0], flags=re.M))
    assert listed == fields, name
