"""`python -m chatproto schema` and the committed JSON Schema."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from chatproto import COMMAND_TYPES, EVENT_TYPES
from chatproto.schema import json_schema, schema_text

ROOT = Path(__file__).resolve().parent.parent
COMMITTED = ROOT / "docs" / "chatproto.schema.json"


def run_module(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "chatproto", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


@pytest.fixture(scope="module")
def printed() -> str:
    result = run_module("schema")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    return result.stdout


def test_printed_schema_is_the_committed_file(printed: str) -> None:
    committed = COMMITTED.read_text(encoding="utf-8")
    assert json.loads(printed) == json.loads(committed)
    assert printed == committed, "regenerate with: python -m chatproto schema > " + str(
        COMMITTED.relative_to(ROOT)
    )


def test_printed_schema_is_the_models_schema(printed: str) -> None:
    assert json.loads(printed) == json_schema()
    assert printed == schema_text()


def _mapping(schema: dict[str, Any], union: str) -> dict[str, str]:
    mapping = schema["$defs"][union]["discriminator"]["mapping"]
    assert isinstance(mapping, dict)
    return mapping


def test_schema_names_every_type() -> None:
    schema = json.loads(COMMITTED.read_text(encoding="utf-8"))
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["oneOf"] == [{"$ref": "#/$defs/Command"}, {"$ref": "#/$defs/Event"}]
    for union, names in (("Command", COMMAND_TYPES), ("Event", EVENT_TYPES)):
        mapping = _mapping(schema, union)
        assert set(mapping) == set(names)
        for name, ref in mapping.items():
            definition = schema["$defs"][ref.removeprefix("#/$defs/")]
            assert definition["properties"]["type"]["const"] == name
    text = COMMITTED.read_text(encoding="utf-8")
    for name in COMMAND_TYPES | EVENT_TYPES:
        assert f'"{name}"' in text


def test_schema_keeps_the_field_rules() -> None:
    defs = json_schema()["$defs"]
    assert defs["Hello"]["properties"]["nick"]["pattern"] == r"^[A-Za-z_][A-Za-z0-9_-]{0,23}$"
    assert defs["Join"]["properties"]["room"]["pattern"] == r"^[a-z0-9][a-z0-9_-]{0,31}$"
    assert defs["Say"]["properties"]["text"]["maxLength"] == 4000
    assert "nick" in defs["Hello"]["required"]


@pytest.mark.parametrize("args", [(), ("schemas",), ("schema", "extra")])
def test_bad_usage_exits_2(args: tuple[str, ...]) -> None:
    result = run_module(*args)
    assert result.returncode == 2
    assert result.stdout == ""
    assert "usage" in result.stderr


def _accepts_null(prop: dict[str, Any]) -> bool:
    return prop.get("type") == "null" or any(
        alt.get("type") == "null" for alt in prop.get("anyOf", [])
    )


def test_every_optional_field_is_nullable_and_every_required_one_is_not() -> None:
    # PROTOCOL.md section 2: null is an absent optional field.
    defs = json_schema()["$defs"]
    for name, definition in defs.items():
        if "properties" not in definition:
            continue
        required = set(definition.get("required", []))
        for field, prop in definition["properties"].items():
            if field == "type":
                continue
            assert _accepts_null(prop) is (field not in required), (name, field)


def test_integers_are_integers_and_lengths_are_characters() -> None:
    # JSON Schema's "integer" is a number without fraction; maxLength counts
    # characters (code points), as PROTOCOL.md section 3 does.
    defs = json_schema()["$defs"]
    limit = defs["History"]["properties"]["limit"]["anyOf"][0]
    assert (limit["type"], limit["minimum"], limit["maximum"]) == ("integer", 1, 100)
    rid = defs["Ping"]["properties"]["id"]["anyOf"]
    assert {"maxLength": 64, "minLength": 1, "type": "string"} in rid
    assert {"maximum": 2**53 - 1, "minimum": 0, "type": "integer"} in rid
    assert defs["Hello"]["properties"]["version"]["anyOf"][0]["pattern"] == (
        r"^[0-9]{1,4}\.[0-9]{1,4}$"
    )
