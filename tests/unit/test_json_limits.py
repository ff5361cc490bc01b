"""The edges of what a JSON payload may hold: its depth and its largest int."""

from __future__ import annotations

import sys
from typing import Any

import pytest

from sidequest_sql.jsonvalues import MAX_DEPTH, check_json, check_storable_text, dumps, loads

LARGEST = int(sys.float_info.max)


def deep(levels: int, leaf: Any = None) -> Any:
    """``levels`` arrays and objects, each holding the next."""
    value: Any = [] if leaf is None else leaf
    for level in range(levels - (leaf is None)):
        value = {"k": value} if level % 2 else [value]
    return value


def test_the_depth_is_what_mariadb_json_valid_takes() -> None:
    # MariaDB's JSON columns refuse 32 nested arrays and objects.
    assert MAX_DEPTH == 31


@pytest.mark.parametrize("leaf", [None, 1, "text"])
def test_as_deep_as_allowed_and_one_deeper(leaf: Any) -> None:
    check_json(deep(MAX_DEPTH, leaf), "args")
    check_json({"wrapped": deep(MAX_DEPTH - 1, leaf)}, "args")
    with pytest.raises(ValueError, match="args is nested more than 31 levels deep"):
        check_json(deep(MAX_DEPTH + 1, leaf), "args")
    with pytest.raises(ValueError, match="result is nested"):
        check_json({"wrapped": deep(MAX_DEPTH, leaf)}, "result")


def test_ints_up_to_the_largest_double_are_accepted_and_written_exactly() -> None:
    for value in (LARGEST, -LARGEST, 2**1023, [LARGEST]):
        check_json(value, "args")
        assert loads(dumps(value)) == value


@pytest.mark.parametrize(
    ("value", "where"),
    [(LARGEST + 1, "args"), (-LARGEST - 1, "args"), ([1, 10**400], "args[1]"), ({"n": 2**1024}, "args['n']")],
)
def test_an_int_beyond_a_double_is_refused_naming_where(value: Any, where: str) -> None:
    with pytest.raises(ValueError) as info:
        check_json(value, "args")
    assert str(info.value) == f"{where} is an int beyond the range of a double (about 1.8e308)"


@pytest.mark.parametrize("text", ["plain", "", "x" * 10_000, "é", "日本", "🎉"])
def test_storable_text(text: str) -> None:
    check_storable_text(text, "name")


@pytest.mark.parametrize("text", ["\x00", "ascii\x00", "é\x00", "\ud800", "ascii\udfff", "🎉\udc00"])
def test_text_no_database_stores(text: str) -> None:
    with pytest.raises(ValueError, match="^name contains"):
        check_storable_text(text, "name")
