"""JSON payloads: what goes in comes back, and what no database keeps is refused first.

How deep a payload may nest is the dialect's declaration (``max_json_depth``):
each backend is held to its own.
"""

from __future__ import annotations

from typing import Any

import pytest

from sidequest_sql import JobData, NewJobData
from sidequest_sql.base import SQLBackend
from sidequest_sql.testing.documents import SHAPES, Shape, nested
from sidequest_sql.testing.fixtures import backend  # noqa: F401  (the suite's fixture)

JSON_FIELDS = ("args", "constructor_args", "result", "errors", "uniqueness_config")

VALUES: dict[str, Any] = {
    "nested": {"a": [1, {"b": [None, True, False, {"c": "deep"}]}], "z": {}, "y": []},
    "list-of-everything": [None, True, False, 0, -1, 2.5, "", "text", [], {}],
    "unicode": {"日本語": "こんにちは", "emoji": "🎉👩‍👩‍👧", "é": "e\u0301", "rtl": "שלום", "sep": "\u2028\u2029"},
    "escapes": ["quote \" backslash \\ slash / tab \t newline \n cr \r", "\u0001\u001f\u007f"],
    "keys": {"": "empty key", " ": "space", "a.b": 1, "$x": 2, "1": "digit key"},
    "big-ints": [2**53 - 1, -(2**53 - 1), 2**31, -(2**31) - 1, 0],
    "floats": [0.1, -2.5, 1e-10, 123456.789, 0.30000000000000004, 4503599627370496.5, -1e15 - 0.5],
    "scalar-str": "just a string",
    "scalar-int": 42,
    "scalar-float": 3.25,
    # Bare numbers a database may take for numbers rather than documents
    # (SQLite, by the affinity of a column declared JSON), and change: its
    # text-to-double conversion is not correctly rounded.
    "scalar-int-12": 12,
    "scalar-float-misrounded": 3.313808515801691e-303,
    "scalar-float-misrounded-negative": -2.2606631148481385e-299,
    "scalar-float-misrounded-2": 1.829402849984213e-298,
    "scalar-bool": True,
    "deep": [[[[[[[[[[{"k": [[["v"]]]}]]]]]]]]]],
    "wide": {f"key{i}": i for i in range(300)},
}

BARE_NUMBERS = [VALUES[key] for key in VALUES if key.startswith(("scalar-int", "scalar-float"))]


def new_job(**fields: Any) -> NewJobData:
    return NewJobData(queue="default", script="jobs.js", job_class="Echo", **fields)


def assert_json_equal(out: Any, given: Any) -> None:
    """Equal as JSON: same types (an integral float may come back an int), same contents."""
    if isinstance(given, bool) or given is None or isinstance(given, str):
        assert type(out) is type(given), (out, given)
        assert out == given
    elif isinstance(given, float):
        assert isinstance(out, (int, float)) and not isinstance(out, bool), (out, given)
        assert out == given
        if not given.is_integer():
            assert isinstance(out, float)
    elif isinstance(given, int):
        assert type(out) is int, (out, given)
        assert out == given
    elif isinstance(given, list):
        assert isinstance(out, list) and len(out) == len(given), (out, given)
        for o, g in zip(out, given, strict=True):
            assert_json_equal(o, g)
    else:
        assert isinstance(out, dict) and set(out) == set(given), (out, given)
        for key in given:
            assert_json_equal(out[key], given[key])


class TestJsonRoundTrip:
    @pytest.mark.parametrize("value", list(VALUES.values()), ids=list(VALUES))
    def test_every_json_field_gives_back_what_went_in(self, backend: SQLBackend, value: Any) -> None:
        job = backend.create_new_job(new_job(args=value, constructor_args=value, uniqueness_config=value))
        job = backend.update_job(job.id, result=value, errors=value)
        for read in (job, backend.get_job(job.id), *backend.list_jobs()):
            assert isinstance(read, JobData)
            for field in JSON_FIELDS:
                assert_json_equal(getattr(read, field), value)

    def test_round_trip_through_a_batch_and_a_claim(self, backend: SQLBackend) -> None:
        values = list(VALUES.values())
        created = backend.create_new_jobs([new_job(args=value) for value in values])
        for job, value in zip(created, values, strict=True):
            assert_json_equal(job.args, value)
        claimed = {job.id: job for job in backend.claim_pending_job("default", quantity=len(values))}
        for job, value in zip(created, values, strict=True):
            assert_json_equal(claimed[job.id].args, value)

    @pytest.mark.parametrize("value", BARE_NUMBERS, ids=[repr(value) for value in BARE_NUMBERS])
    def test_a_bare_number_is_found_by_args_and_comes_back_exact(self, backend: SQLBackend, value: Any) -> None:
        job = backend.create_new_job(new_job(args=value, constructor_args=value, uniqueness_config=value))
        backend.create_new_job(new_job(args=[value]))
        job = backend.update_job(job.id, result=value, errors=value)
        assert backend.list_jobs(args=value) == [job]
        read = backend.get_job(job.id)
        assert read is not None
        for field in JSON_FIELDS:
            assert repr(getattr(read, field)) == repr(value)

    def test_an_integral_float_comes_back_equal(self, backend: SQLBackend) -> None:
        job = backend.create_new_job(new_job(args=[1.0, -0.0, 2.0**52, {"n": 7.0}]))
        assert job.args == [1, 0, 2**52, {"n": 7}]
        assert backend.get_job(job.id).args == [1.0, 0.0, 2.0**52, {"n": 7.0}]  # type: ignore[union-attr]

    def test_bools_stay_bools(self, backend: SQLBackend) -> None:
        job = backend.create_new_job(new_job(args=[True, 1, False, 0]))
        stored = backend.get_job(job.id).args  # type: ignore[union-attr]
        assert [type(item) for item in stored] == [bool, int, bool, int]

    def test_key_order_is_not_significant(self, backend: SQLBackend) -> None:
        job = backend.create_new_job(new_job(args={"b": 1, "a": 2}))
        assert backend.get_job(job.id).args == {"a": 2, "b": 1}  # type: ignore[union-attr]

    def test_none_in_a_nullable_field_is_none(self, backend: SQLBackend) -> None:
        job = backend.create_new_job(new_job(uniqueness_config=None))
        job = backend.update_job(job.id, result=None, errors=None)
        assert (job.result, job.errors, job.uniqueness_config) == (None, None, None)
        with_null_inside = backend.update_job(job.id, result=[None], errors={"e": None})
        assert (with_null_inside.result, with_null_inside.errors) == ([None], {"e": None})

    def test_a_json_string_that_looks_like_json_stays_a_string(self, backend: SQLBackend) -> None:
        job = backend.create_new_job(new_job(args="[1, 2]", constructor_args="null"))
        assert (job.args, job.constructor_args) == ("[1, 2]", "null")
        job = backend.update_job(job.id, result="null")
        assert backend.get_job(job.id).result == "null"  # type: ignore[union-attr]


class TestJsonRefused:
    @pytest.mark.parametrize(
        "value",
        [
            "a\x00b",
            ["ok", "bad\u0000"],
            {"key": {"nested": "\x00"}},
            {"bad\x00key": 1},
        ],
        ids=["str", "in-list", "nested", "key"],
    )
    @pytest.mark.parametrize("field", ["args", "constructor_args", "uniqueness_config"])
    def test_nul_in_a_string_is_refused_before_anything_is_written(
        self, backend: SQLBackend, field: str, value: Any
    ) -> None:
        with pytest.raises(ValueError, match=field):
            backend.create_new_job(new_job(**{field: value}))
        with pytest.raises(ValueError, match=field):
            backend.create_new_jobs([new_job(), new_job(**{field: value})])
        assert backend.list_jobs() == []

    @pytest.mark.parametrize("number", [float("nan"), float("inf"), float("-inf")], ids=["nan", "inf", "-inf"])
    @pytest.mark.parametrize("field", ["args", "constructor_args", "uniqueness_config"])
    def test_non_finite_floats_are_refused_before_anything_is_written(
        self, backend: SQLBackend, field: str, number: float
    ) -> None:
        with pytest.raises(ValueError, match=field):
            backend.create_new_job(new_job(**{field: {"x": [1, number]}}))
        with pytest.raises(ValueError, match=field):
            backend.create_new_jobs([new_job(), new_job(**{field: number})])
        assert backend.list_jobs() == []

    @pytest.mark.parametrize("field", JSON_FIELDS)
    @pytest.mark.parametrize("value", ["\x00", [float("nan")], {"k": float("inf")}], ids=["nul", "nan", "inf"])
    def test_update_refuses_them_too_and_changes_nothing(self, backend: SQLBackend, field: str, value: Any) -> None:
        job = backend.create_new_job(new_job(args=["kept"]))
        with pytest.raises(ValueError, match=field):
            backend.update_job(job.id, state="completed", **{field: value})
        assert backend.get_job(job.id) == job

    @pytest.mark.parametrize(
        "value",
        [{1, 2}, b"bytes", object(), [1, (2, 3)], {"k": {1: "non-str key"}}],
        ids=["set", "bytes", "object", "tuple", "int-key"],
    )
    def test_values_that_are_not_json_are_refused(self, backend: SQLBackend, value: Any) -> None:
        with pytest.raises(TypeError, match="args"):
            backend.create_new_job(new_job(args=value))
        assert backend.list_jobs() == []


class TestJsonDepth:
    """As deep as the dialect declares (``max_json_depth``) is stored; one level more is refused first."""

    def test_the_declared_depth_is_a_positive_int(self, backend: SQLBackend) -> None:
        assert type(backend.max_json_depth) is int and backend.max_json_depth >= 1

    @pytest.mark.parametrize("shape", SHAPES)
    def test_documents_as_deep_as_declared_come_back_equal(self, backend: SQLBackend, shape: Shape) -> None:
        document = nested(backend.max_json_depth, shape)
        job = backend.create_new_job(new_job(args=document, constructor_args=document, uniqueness_config=document))
        [batched] = backend.create_new_jobs([new_job(args=document, constructor_args=document)])
        job = backend.update_job(job.id, result=document, errors=document)

        found = backend.list_jobs(args=document)
        assert [read.id for read in found] == [batched.id, job.id]
        for read in (job, backend.get_job(job.id), found[1]):
            assert isinstance(read, JobData)
            assert [getattr(read, field) for field in JSON_FIELDS] == [document] * len(JSON_FIELDS)
        claimed = backend.claim_pending_job("default", quantity=2)
        assert [(read.args, read.constructor_args) for read in claimed] == [(document, document)] * 2

    @pytest.mark.parametrize("shape", SHAPES)
    def test_one_level_deeper_is_refused_before_anything_is_written(self, backend: SQLBackend, shape: Shape) -> None:
        limit = backend.max_json_depth
        too_deep = nested(limit + 1, shape)
        kept = backend.create_new_job(new_job(args=["kept"]))

        def refused(field: str) -> Any:
            return pytest.raises(ValueError, match=f"^{field} is nested more than {limit} levels deep$")

        for field in ("args", "constructor_args", "uniqueness_config"):
            with refused(field):
                backend.create_new_job(new_job(**{field: too_deep}))
            with refused(field):
                backend.create_new_jobs([new_job(), new_job(**{field: too_deep})])
        for field in JSON_FIELDS:
            with refused(field):
                backend.update_job(kept.id, state="completed", **{field: too_deep})
        with refused("args"):
            backend.list_jobs(args=too_deep)
        with refused("result"):
            backend.update_job(kept.id, result=[nested(limit, shape)])
        assert backend.list_jobs() == [kept]
