"""Calls the suite must not wait for: run in a thread, given up on after a bound."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import TypeVar

import pytest

_T = TypeVar("_T")


def started(call: Callable[[], _T]) -> Future[_T]:
    """``call()`` running in a thread of its own, so that the caller can give up waiting for it."""
    pool = ThreadPoolExecutor(1)
    try:
        return pool.submit(call)
    finally:
        pool.shutdown(wait=False)


def promptly(future: Future[_T], what: str, *, seconds: float) -> _T:
    """The result of ``future``; the test fails if it takes more than ``seconds``."""
    try:
        return future.result(timeout=seconds)
    except FutureTimeout:
        pytest.fail(f"{what} waited for a transaction elsewhere ({seconds} s and counting)")
