"""``greenlets.run``: sync code awaiting on the loop, in greenlets that serve one call after another."""

from __future__ import annotations

import asyncio
import contextvars

import pytest
from sqlalchemy.util.concurrency import await_

from sidequest_sql import greenlets

_where: contextvars.ContextVar[str] = contextvars.ContextVar("where", default="nowhere")


async def _later(value: object, delay: float = 0) -> object:
    await asyncio.sleep(delay)
    return value


def _awaiting(*values: object) -> list[object]:
    return [await_(_later(value)) for value in values]


def test_sync_code_awaits_and_returns() -> None:
    assert asyncio.run(greenlets.run(_awaiting, 1, 2, 3)) == [1, 2, 3]


def test_a_greenlet_serves_the_next_call() -> None:
    def which() -> object:
        await_(_later(None))
        from greenlet import getcurrent

        return getcurrent()

    async def twice() -> tuple[object, object]:
        return await greenlets.run(which), await greenlets.run(which)

    first, second = asyncio.run(twice())
    assert first is second


def test_calls_awaiting_at_once_each_have_their_own() -> None:
    async def many() -> list[list[object]]:
        return await asyncio.gather(*(greenlets.run(_awaiting, i, i + 1) for i in range(20)))

    assert asyncio.run(many()) == [[i, i + 1] for i in range(20)]


def test_each_call_runs_in_its_task_context() -> None:
    def read() -> str:
        await_(_later(None))
        return _where.get()

    async def in_task(name: str) -> str:
        _where.set(name)
        return await greenlets.run(read)

    async def both() -> list[str]:
        return await asyncio.gather(in_task("a"), in_task("b"))

    assert asyncio.run(both()) == ["a", "b"]


def test_errors_come_out_and_the_greenlet_serves_again() -> None:
    def fails() -> None:
        await_(_later(None))
        raise KeyError("boom")

    async def fail_then_work() -> list[object]:
        with pytest.raises(KeyError, match="boom"):
            await greenlets.run(fails)
        return await greenlets.run(_awaiting, "again")

    assert asyncio.run(fail_then_work()) == ["again"]


def test_an_awaitables_error_is_raised_where_the_sync_code_awaits() -> None:
    async def broken() -> None:
        raise ValueError("from the driver")

    def catches() -> str:
        try:
            await_(broken())
        except ValueError as exc:
            return str(exc)
        return "not raised"

    assert asyncio.run(greenlets.run(catches)) == "from the driver"


def test_cancelling_the_task_raises_in_the_sync_code() -> None:
    seen: list[str] = []

    def sleeps() -> None:
        try:
            await_(_later(None, 10))
        finally:
            seen.append("finally")

    async def cancel() -> list[object]:
        task = asyncio.ensure_future(greenlets.run(sleeps))
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return await greenlets.run(_awaiting, "after")

    assert asyncio.run(cancel()) == ["after"]
    assert seen == ["finally"]
