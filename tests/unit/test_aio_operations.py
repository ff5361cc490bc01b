"""The async backend has every operation of the sync one, with the same call, generated from it."""

from __future__ import annotations

import importlib.util
import inspect
from pathlib import Path
from typing import Any

from sidequest_sql import AsyncSQLBackend, SQLBackend

GENERATOR = Path(__file__).resolve().parents[2] / "tools" / "generate_aio.py"


def _generator() -> Any:
    spec = importlib.util.spec_from_file_location("generate_aio", GENERATOR)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _public(cls: type) -> set[str]:
    return {name for name in dir(cls) if not name.startswith("_") and inspect.isfunction(getattr(cls, name))}


def _call(function: Any) -> list[tuple[str, Any, Any]]:
    return [(p.name, p.kind, p.default) for p in inspect.signature(function).parameters.values()]


def test_the_generated_file_is_what_the_tool_writes() -> None:
    generator = _generator()
    assert generator.TARGET.read_text() == generator.generate(), "run python tools/generate_aio.py"


def test_every_operation_is_there_with_the_same_call() -> None:
    operations = _public(SQLBackend) - _public(SQLBackend.__mro__[1])  # the dialect hooks are not operations
    assert operations == _public(AsyncSQLBackend), "the two backends' public operations differ"
    for name in operations:
        sync, coroutine = getattr(SQLBackend, name), getattr(AsyncSQLBackend, name)
        assert inspect.iscoroutinefunction(coroutine), name
        assert _call(coroutine) == _call(sync), name
        assert inspect.signature(coroutine).return_annotation == inspect.signature(sync).return_annotation, name


def test_connection_is_an_async_connection_there() -> None:
    for name in _public(AsyncSQLBackend) - {"close"}:
        annotation = inspect.signature(getattr(AsyncSQLBackend, name)).parameters["connection"].annotation
        assert annotation == "AsyncConnection | None", name
