"""The edges of what a JSON payload may hold: its depth, each dialect's own, and its largest int."""

from __future__ import annotations

import sys
from typing import Any

import pytest

from sidequest_sql.dialects.mysql import MySQLBackend
from sidequest_sql.dialects.postgres import PostgresBackend
from sidequest_sql.dialects.sqlite import SQLiteBackend
from sidequest_sql.hooks import DialectHooks
from sidequest_sql.jsonvalues import check_json, check_storable_text, dumps, loads
from sidequest_sql.testing.documents import SHAPES, Shape, nested
from sidequest_sql.testing.model import json_equal

LARGEST = int(sys.float_info.max)
# Frames a caller's own stack may already hold while a document as deep as the
# library's bound is written and read (measured: some 480 on Python 3.11, from
# a script; pytest's own frames take a few dozen of them).
CALLERS_FRAMES = 300


def test_each_dialect_declares_the_depth_its_database_takes() -> None:
    # MariaDB's JSON_VALID refuses 32 nested arrays and objects; Postgres and
    # SQLite take far more than the library's own bound, which they declare.
    assert MySQLBackend.max_json_depth == 31
    assert PostgresBackend.max_json_depth == SQLiteBackend.max_json_depth == DialectHooks.max_json_depth == 256


@pytest.mark.parametrize("limit", [1, 31, 256])
@pytest.mark.parametrize("leaf", [None, 1, "text"])
def test_as_deep_as_allowed_and_one_deeper(limit: int, leaf: Any) -> None:
    check_json(nested(limit, "mixed", leaf), "args", limit)
    check_json([nested(limit - 1, "objects", leaf)], "args", limit)
    with pytest.raises(ValueError, match=f"^args is nested more than {limit} levels deep$"):
        check_json(nested(limit + 1, "mixed", leaf), "args", limit)
    with pytest.raises(ValueError, match=f"^result is nested more than {limit} levels deep$"):
        check_json({"wrapped": nested(limit, "arrays", leaf)}, "result", limit)


def test_a_document_far_too_deep_is_refused_without_recursion() -> None:
    with pytest.raises(ValueError, match="args is nested more than 256 levels deep"):
        check_json(nested(100_000), "args", 256)


def at_depth(frames: int, work: Any) -> Any:
    """``work()`` called with ``frames`` more frames on the stack."""
    return work() if frames <= 0 else at_depth(frames - 1, work)


@pytest.mark.parametrize("shape", SHAPES)
def test_the_librarys_bound_leaves_a_caller_hundreds_of_frames(shape: Shape) -> None:
    # Writing (dumps) and reading (the json module's parser) a document as deep
    # as the default bound, and comparing it as the suite's model does, work
    # under the default recursion limit with CALLERS_FRAMES already on the stack.
    document = nested(DialectHooks.max_json_depth, shape)

    def write_read_compare() -> bool:
        return json_equal(loads(dumps(document)), document)

    assert sys.getrecursionlimit() == 1000
    assert at_depth(CALLERS_FRAMES, write_read_compare)


def test_ints_up_to_the_largest_double_are_accepted_and_written_exactly() -> None:
    for value in (LARGEST, -LARGEST, 2**1023, [LARGEST]):
        check_json(value, "args", 1)
        assert loads(dumps(value)) == value


@pytest.mark.parametrize(
    ("value", "where"),
    [(LARGEST + 1, "args"), (-LARGEST - 1, "args"), ([1, 10**400], "args[1]"), ({"n": 2**1024}, "args['n']")],
)
def test_an_int_beyond_a_double_is_refused_naming_where(value: Any, where: str) -> None:
    with pytest.raises(ValueError) as info:
        check_json(value, "args", 31)
    assert str(info.value) == f"{where} is an int beyond the range of a double (about 1.8e308)"


@pytest.mark.parametrize("text", ["plain", "", "x" * 10_000, "é", "日本", "🎉"])
def test_storable_text(text: str) -> None:
    check_storable_text(text, "name")


@pytest.mark.parametrize("text", ["\x00", "ascii\x00", "é\x00", "\ud800", "ascii\udfff", "🎉\udc00"])
def test_text_no_database_stores(text: str) -> None:
    with pytest.raises(ValueError, match="^name contains"):
        check_storable_text(text, "name")
