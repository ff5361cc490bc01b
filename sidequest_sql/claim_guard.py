"""A claim cancelled midway gives back what it took.

A claim hands jobs over to its caller: once its statement has been sent, the
jobs may be claimed in the database whether or not the answer arrives. An
asyncio task cancelled at that moment (``task.cancel()``, ``asyncio.timeout``)
would leave them claimed by nobody until ``stale_jobs`` noticed. So the async
backend (``aio``) runs each claim in a task of its own, under a
``ClaimGuard``: cancelled before the claim statement is sent, that task is
cancelled too, and nothing was claimed; cancelled after, it runs to its end
and the jobs it claimed are given back to ``waiting`` before the cancellation
goes on. The claim itself says when its statement is about to go
(``entering_claim``).
"""

from __future__ import annotations

from contextvars import ContextVar

_current: ContextVar[ClaimGuard | None] = ContextVar("sidequest_claim_guard", default=None)


class ClaimGuard:
    """Whether the claim it watches has sent, or is about to send, its claim statement."""

    __slots__ = ("entered",)

    def __init__(self) -> None:
        self.entered = False

    def install(self) -> object:
        """Watch the claims started in this context from now on; returns a token for ``uninstall``."""
        return _current.set(self)

    @staticmethod
    def uninstall(token: object) -> None:
        _current.reset(token)  # type: ignore[arg-type]


def entering_claim() -> None:
    """Called just before a claim sends the statement that claims rows."""
    guard = _current.get()
    if guard is not None:
        guard.entered = True
