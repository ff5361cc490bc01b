"""JSON payloads: what is accepted, and the one canonical way they are written.

Every dialect stores JSON documents written by ``dumps``: keys sorted, no
spaces, and floats with an integral value below 2**53 written as integers, as
Postgres jsonb normalises them. A database without a JSON equality of its own
can then compare documents as text.

How deep a document may nest is the dialect's to say
(``hooks.DialectHooks.max_json_depth``); the checks here take it as an
argument.
"""

from __future__ import annotations

import json
import math
import re
import sys
from typing import Any

_EXACT_FLOAT_LIMIT = 2**53
_SURROGATE = re.compile(r"[\ud800-\udfff]")
# An int beyond a double's range is refused: Node's JSON.parse, which reads
# these documents too, takes it for infinity (and SQLite, before revision
# 0008, kept a document that is one number as a double).
_LARGEST_INT = int(sys.float_info.max)


def check_json(value: Any, argument: str, max_depth: int) -> None:
    """Raise TypeError/ValueError naming ``argument`` unless ``value`` is a
    JSON value every dialect stores faithfully, nested at most ``max_depth``
    arrays and objects deep (``[[1]]`` is 2 deep)."""
    if not plain_json(value):
        check_json_fully(value, argument, max_depth)


def check_json_fully(value: Any, argument: str, max_depth: int) -> None:
    """``check_json`` without its quick yes: every item looked at, without recursion."""
    stack: list[tuple[Any, str, int]] = [(value, argument, 0)]
    while stack:
        item, where, depth = stack.pop()
        if item is None or isinstance(item, bool):
            continue
        if isinstance(item, int):
            if abs(item) > _LARGEST_INT:
                raise ValueError(f"{where} is an int beyond the range of a double (about 1.8e308)")
            continue
        if isinstance(item, (list, dict)) and depth >= max_depth:
            raise ValueError(f"{argument} is nested more than {max_depth} levels deep")
        if isinstance(item, float):
            if not math.isfinite(item):
                raise ValueError(f"{where} must be a finite number, not {item!r}")
        elif isinstance(item, str):
            check_storable_text(item, where)
        elif isinstance(item, list):
            stack.extend((element, f"{where}[{i}]", depth + 1) for i, element in enumerate(item))
        elif isinstance(item, dict):
            for key, element in item.items():
                if not isinstance(key, str):
                    raise TypeError(f"{where} has a key {key!r} that is not a str")
                check_storable_text(key, f"a key of {where}")
                stack.append((element, f"{where}[{key!r}]", depth + 1))
        else:
            raise TypeError(
                f"{where} must hold only JSON values (dict, list, str, int, float, "
                f"bool, None), not {type(item).__name__}"
            )


def check_storable_text(text: str, where: str) -> None:
    """Refuse text no database stores: NUL characters and lone surrogates."""
    if "\x00" in text:
        raise ValueError(f"{where} contains a NUL character, which databases cannot store")
    if not text.isascii() and _SURROGATE.search(text):
        raise ValueError(f"{where} contains a lone surrogate, which is not text a database can store")


def plain_json(value: Any) -> bool:
    """A quick yes for the common case, a flat list of plain scalars such as
    ``[1, "x"]`` (``_plainly_fine``), empty lists and dicts included: one level
    deep, which every dialect takes."""
    kind = type(value)
    if kind is list:
        return all(map(_plainly_fine, value))
    return kind is dict and not value


def _plainly_fine(item: Any) -> bool:
    """A quick yes for a scalar of a plain type that is fine (ASCII text
    without NUL, an int in a double's range); anything else takes the full
    walk, which says what is wrong."""
    kind = type(item)
    if kind is str:
        return item.isascii() and "\x00" not in item
    if kind is int:
        return abs(item) <= _LARGEST_INT
    return item is None or kind is bool


_PLAIN_SCALARS = frozenset((str, int, bool, type(None)))
# One encoder for every document: json.dumps builds a new one for each call
# given options.
_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _normalised(value: Any) -> Any:
    kind = type(value)
    if kind in _PLAIN_SCALARS:
        return value
    if kind is list and all(type(item) in _PLAIN_SCALARS for item in value):
        return value  # a flat list of plain scalars: nothing to normalise, as most args are
    if isinstance(value, float) and value.is_integer() and abs(value) < _EXACT_FLOAT_LIMIT:
        return int(value)
    if isinstance(value, list):
        return [_normalised(v) for v in value]
    if isinstance(value, dict):
        return {k: _normalised(v) for k, v in value.items()}
    return value


def dumps(value: Any) -> str:
    """The canonical text of a JSON value (see the module docstring)."""
    return _ENCODER.encode(_normalised(value))


loads = json.loads
