"""Hypothesis strategies for every message model in `chatproto.messages`.

The strategies are derived from the models themselves: each field's annotation
and constraints (`pattern`, `min_length`/`max_length`, `ge`/`gt`/`le`/`lt`,
`Literal`, enums, optional and union types, lists and nested models) become a
strategy, so a new field or a tightened rule is picked up without editing this
file. Only cross-field rules (a `model_validator`) need a word here.
"""

from __future__ import annotations

import itertools
import re
import types
import typing
from collections.abc import Callable, Iterable
from enum import Enum
from typing import Any, cast

import annotated_types
from hypothesis import strategies as st
from pydantic import BaseModel, StringConstraints
from pydantic.fields import FieldInfo

from chatproto import messages
from chatproto.messages import Command, Event

__all__ = [
    "COMMAND_CLASSES",
    "COMMAND_STRATEGIES",
    "EVENT_CLASSES",
    "EVENT_STRATEGIES",
    "MAX_JSON_INT",
    "MESSAGE_CLASSES",
    "MODEL_STRATEGIES",
    "chunked",
    "commands",
    "events",
    "field_strategy",
    "messages_any",
    "split",
]

# Integers without an upper bound are kept within JSON's exactly representable
# range, which is what every peer can read back.
MAX_JSON_INT = 2**53 - 1
# Every character that UTF-8 can carry (no lone surrogates).
ANY_CHAR = st.characters(codec="utf-8")
LIST_MAX = 3

# A pattern that is one character class repeated, such as ^[^\x00-\x1f]+$:
# its strings are built character by character, so that their length can
# reach the field's max_length.
_REPEATED_CLASS = re.compile(r"^\^(\[(?:\\.|[^\]])+\])([+*])\$$")
_CATEGORY = re.compile(r"\\p\{(\w\w)\}")


def _union_members(annotation: Any) -> tuple[Any, ...] | None:
    origin = typing.get_origin(annotation)
    if origin is typing.Union or origin is types.UnionType:
        return typing.get_args(annotation)
    return None


def _flatten(metadata: Iterable[Any]) -> list[Any]:
    flat: list[Any] = []
    for item in metadata:
        if isinstance(item, FieldInfo):
            flat.extend(_flatten(item.metadata))
        else:
            flat.append(item)
    return flat


def _string_strategy(constraints: list[Any]) -> st.SearchStrategy[str]:
    pattern: str | None = None
    min_length = 0
    max_length: int | None = None
    for item in constraints:
        if isinstance(item, StringConstraints):
            pattern = item.pattern if isinstance(item.pattern, str) else pattern
            min_length = item.min_length if item.min_length is not None else min_length
            max_length = item.max_length if item.max_length is not None else max_length
        elif isinstance(item, annotated_types.MinLen):
            min_length = item.min_length
        elif isinstance(item, annotated_types.MaxLen):
            max_length = item.max_length
    if pattern is None:
        return st.text(ANY_CHAR, min_size=min_length, max_size=max_length)
    repeated = _REPEATED_CLASS.match(pattern)
    if repeated is None:
        base = st.from_regex(pattern, fullmatch=True, alphabet=ANY_CHAR)
        return base.filter(
            lambda s: len(s) >= min_length and (max_length is None or len(s) <= max_length)
        )
    char_class, repeat = repeated.groups()
    categories = _CATEGORY.findall(char_class)
    if categories and char_class.startswith("[^"):
        # Python's re has no \p{..}: exclude the Unicode categories directly.
        chars = st.characters(codec="utf-8", exclude_categories=(*categories, "Cs"))
    else:
        chars = st.from_regex(char_class, fullmatch=True, alphabet=ANY_CHAR)
    least = max(min_length, 1 if repeat == "+" else 0)
    strategy = st.text(chars, min_size=least, max_size=max_length)
    if max_length is not None and max_length > 8:
        # The longest string the field allows, which random sizes rarely reach.
        longest = max_length
        strategy |= chars.map(lambda c: c * longest)
    return strategy


def _number_strategy(kind: type, constraints: list[Any]) -> st.SearchStrategy[Any]:
    low: float | None = None
    high: float | None = None
    exclude_low = exclude_high = False
    for item in constraints:
        if isinstance(item, annotated_types.Ge):
            low = cast(float, item.ge)
        elif isinstance(item, annotated_types.Gt):
            low, exclude_low = cast(float, item.gt), True
        elif isinstance(item, annotated_types.Le):
            high = cast(float, item.le)
        elif isinstance(item, annotated_types.Lt):
            high, exclude_high = cast(float, item.lt), True
    if kind is int:
        int_low = None if low is None else int(low) + (1 if exclude_low else 0)
        int_high = MAX_JSON_INT if high is None else int(high) - (1 if exclude_high else 0)
        return st.integers(min_value=int_low, max_value=int_high)
    return st.floats(
        min_value=low,
        max_value=high,
        exclude_min=exclude_low,
        exclude_max=exclude_high,
        allow_nan=False,
        allow_infinity=False,
    )


def _annotation_strategy(annotation: Any, constraints: list[Any]) -> st.SearchStrategy[Any]:
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        base, *extra = typing.get_args(annotation)
        return _annotation_strategy(base, constraints + _flatten(extra))
    members = _union_members(annotation)
    if members is not None:
        return st.one_of(*(_annotation_strategy(m, constraints) for m in members))
    if origin is typing.Literal:
        return st.sampled_from(typing.get_args(annotation))
    if origin is list:
        (item,) = typing.get_args(annotation)
        return st.lists(_annotation_strategy(item, []), max_size=LIST_MAX)
    if annotation is type(None):
        return st.none()
    if isinstance(annotation, type):
        if issubclass(annotation, BaseModel):
            return model_strategy(annotation)
        if issubclass(annotation, Enum):
            return st.sampled_from(annotation)
        if annotation is bool:
            return st.booleans()
        if annotation is str:
            return _string_strategy(constraints)
        if annotation in (int, float):
            return _number_strategy(annotation, constraints)
    raise NotImplementedError(f"no strategy for the annotation {annotation!r}")


def field_strategy(model: type[BaseModel], name: str) -> st.SearchStrategy[Any]:
    """Valid values of `model`'s field `name`, derived from its annotation and constraints."""
    info = model.model_fields[name]
    return _annotation_strategy(info.annotation, _flatten(info.metadata))


def _one_direction(fields: dict[str, Any]) -> bool:
    return fields.get("before") is None or fields.get("after") is None


# Rules that span fields (model validators), which field strategies cannot see.
_CROSS_FIELD_RULES: dict[type[BaseModel], Callable[[dict[str, Any]], bool]] = {
    messages.History: _one_direction,
}

_MODEL_CACHE: dict[type[BaseModel], st.SearchStrategy[Any]] = {}


def model_strategy(model: type[BaseModel]) -> st.SearchStrategy[Any]:
    """Valid instances of `model`, every field given explicitly."""
    if model not in _MODEL_CACHE:
        fields = st.fixed_dictionaries(
            {name: field_strategy(model, name) for name in model.model_fields}
        )
        rule = _CROSS_FIELD_RULES.get(model)
        if rule is not None:
            fields = fields.filter(rule)
        _MODEL_CACHE[model] = fields.map(lambda kwargs: model(**kwargs))
    return _MODEL_CACHE[model]


def _union_classes(union: Any) -> tuple[type[BaseModel], ...]:
    inner = typing.get_args(union)[0]  # Annotated[A | B | ..., Field(discriminator=...)]
    members = _union_members(inner)
    assert members is not None
    return tuple(members)


def _type_name(model: type[BaseModel]) -> str:
    default = model.model_fields["type"].default
    assert isinstance(default, str)
    return default


COMMAND_CLASSES = _union_classes(Command)
EVENT_CLASSES = _union_classes(Event)
# Every public model class that chatproto.messages defines, nested ones included.
MESSAGE_CLASSES = tuple(
    obj
    for name, obj in vars(messages).items()
    if isinstance(obj, type)
    and issubclass(obj, BaseModel)
    and obj.__module__ == messages.__name__
    and not name.startswith("_")
)
MODEL_STRATEGIES: dict[type[BaseModel], st.SearchStrategy[Any]] = {
    cls: model_strategy(cls) for cls in MESSAGE_CLASSES
}
COMMAND_STRATEGIES: dict[str, st.SearchStrategy[Command]] = {
    _type_name(cls): model_strategy(cls) for cls in COMMAND_CLASSES
}
EVENT_STRATEGIES: dict[str, st.SearchStrategy[Event]] = {
    _type_name(cls): model_strategy(cls) for cls in EVENT_CLASSES
}

commands: st.SearchStrategy[Command] = st.one_of(*COMMAND_STRATEGIES.values())
events: st.SearchStrategy[Event] = st.one_of(*EVENT_STRATEGIES.values())
messages_any: st.SearchStrategy[Command | Event] = st.one_of(commands, events)


def split(data: bytes, cuts: Iterable[int]) -> list[bytes]:
    """`data` cut at the given offsets (in any order, repeats allowed)."""
    points = sorted({0, len(data), *cuts})
    return [data[a:b] for a, b in itertools.pairwise(points)]


@st.composite
def chunked(draw: st.DrawFn, data: bytes, *, bytewise_limit: int = 4096) -> list[bytes]:
    """`data` in the chunks a transport might deliver: all at once, byte by byte, or cut anywhere.

    The chunks always join back into `data`; empty chunks may appear.
    """
    modes = ["whole", "cuts", "cuts", "empty_chunks"]
    if len(data) <= bytewise_limit:
        modes.append("bytewise")
    mode = draw(st.sampled_from(modes))
    if mode == "whole":
        return [data]
    if mode == "bytewise":
        return [data[i : i + 1] for i in range(len(data))]
    cuts = draw(st.lists(st.integers(0, len(data)), max_size=12))
    pieces = split(data, cuts)
    if mode == "empty_chunks":
        pieces = [b"", *(p for piece in pieces for p in (piece, b""))]
    return pieces
