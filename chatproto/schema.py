"""The JSON Schema of every message, generated from the models."""

from __future__ import annotations

import json
from typing import Any

from pydantic import TypeAdapter

from chatproto.messages import PROTOCOL_VERSION, Command, Event

__all__ = ["json_schema", "schema_text"]


def json_schema() -> dict[str, Any]:
    """One schema document: `Command` for client frames, `Event` for server frames."""
    tops, defs = TypeAdapter.json_schemas(
        [
            ("Command", "validation", TypeAdapter(Command)),
            ("Event", "validation", TypeAdapter(Event)),
        ],
        title=f"chatproto {PROTOCOL_VERSION}",
        ref_template="#/$defs/{model}",
    )
    for (name, _), schema in tops.items():
        defs["$defs"][name] = schema
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": defs["title"],
        "oneOf": [{"$ref": "#/$defs/Command"}, {"$ref": "#/$defs/Event"}],
        "$defs": defs["$defs"],
    }


def schema_text() -> str:
    """The schema as the committed file holds it."""
    return json.dumps(json_schema(), indent=2, sort_keys=True) + "\n"
