"""From a stored job to a call: import its ``script``, find its ``job_class``, bind its args.

``script`` is a Python module path (``app.jobs``) and ``job_class`` a name in
it: a ``Job`` subclass, built with ``constructor_args`` and called as
``run(*args)``, or a plain function called with ``args``. What cannot be
found is a ``LoadError`` (a failed attempt: the next deploy may have it);
arguments that do not fit the signature are a ``MalformedJob`` (the job
fails at once: running it again cannot help).
"""

from __future__ import annotations

import functools
import importlib
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .jobs import Job

if TYPE_CHECKING:
    from sidequest_sql.records import JobData


class LoadError(Exception):
    """The job's module or name cannot be found or used."""


class MalformedJob(Exception):
    """The stored job cannot be called: args that do not fit, a constructor that refuses them."""


@dataclass(frozen=True, slots=True)
class Prepared:
    """A job ready to run: ``call()`` runs it; ``asynchronous`` says it returns a coroutine."""

    call: Callable[[], Any]
    asynchronous: bool


def find(script: str, name: str) -> Any:
    """The object ``name`` of module ``script``."""
    try:
        module = importlib.import_module(script)
    except ModuleNotFoundError as exc:
        raise LoadError(f"cannot import module {script!r} of job class {name!r}: {exc}") from exc
    except Exception as exc:
        raise LoadError(f"importing module {script!r} raised {type(exc).__name__}: {exc}") from exc
    found = getattr(module, name, None)
    if found is None:
        raise LoadError(f"module {script!r} has no job class or function named {name!r}")
    return found


@dataclass(frozen=True, slots=True)
class Arity:
    """How many positional arguments a callable takes, from its signature (worked out once:
    ``Signature.bind`` for every run cost more than the rest of a short job's overhead)."""

    least: int
    most: int | None
    """None: any number (``*args``)."""
    callable: bool = True
    """False when a keyword-only parameter has no default: no positional call fits."""

    @classmethod
    def of(cls, function: Any, skip: int = 0) -> Arity | None:
        try:
            parameters = list(inspect.signature(function).parameters.values())[skip:]
        except (TypeError, ValueError):
            return None  # no signature to check (some builtins): the call itself will tell
        positional = [p for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        least = sum(p.default is p.empty for p in positional)
        most = None if any(p.kind == p.VAR_POSITIONAL for p in parameters) else len(positional)
        keyword_only = any(p.kind == p.KEYWORD_ONLY and p.default is p.empty for p in parameters)
        return cls(least, most, not keyword_only)

    def fits(self, count: int) -> bool:
        return self.callable and self.least <= count and (self.most is None or count <= self.most)

    def describe(self) -> str:
        if not self.callable:
            return "it has keyword-only parameters without defaults"
        if self.most is None:
            return f"it takes at least {self.least}"
        if self.least == self.most:
            return f"it takes {self.least}"
        return f"it takes {self.least} to {self.most}"


@dataclass(frozen=True, slots=True)
class _Target:
    """What ``find`` found, with the arities a call is checked against."""

    target: Any
    is_job_class: bool
    constructor: Arity | None
    run: Arity | None
    asynchronous: bool


@functools.lru_cache(maxsize=1024)
def _target(script: str, name: str) -> _Target:
    target = find(script, name)
    if isinstance(target, type) and issubclass(target, Job):
        run = target.run
        return _Target(target, True, Arity.of(target), Arity.of(run, skip=1), inspect.iscoroutinefunction(run))
    if inspect.isfunction(target) or inspect.isbuiltin(target):
        return _Target(target, False, None, Arity.of(target), inspect.iscoroutinefunction(target))
    raise LoadError(
        f"{script}.{name} is neither a sidequest_sql.Job subclass nor a function (it is {type(target).__name__})"
    )


def prepare(job: JobData) -> Prepared:
    """The call that runs ``job``, with its arguments checked against the signature."""
    found = _target(job.script, job.job_class)
    args = _arguments(job.args, "args", job)
    if not found.is_job_class:
        _check_fits(found.run, args, f"{job.job_class}(*args)", job)
        function = found.target
        return Prepared(lambda: function(*args), found.asynchronous)
    constructor_args = _arguments(job.constructor_args, "constructor_args", job)
    _check_fits(found.constructor, constructor_args, f"{job.job_class}(*constructor_args)", job)
    _check_fits(found.run, args, f"{job.job_class}.run(*args)", job)
    try:
        instance = found.target(*constructor_args)
    except Exception as exc:
        raise MalformedJob(f"{job.job_class}(*constructor_args) raised {type(exc).__name__}: {exc}") from exc
    instance.job = job
    run = instance.run
    return Prepared(lambda: run(*args), found.asynchronous)


def _arguments(value: Any, field: str, job: JobData) -> list[Any]:
    if not isinstance(value, list):
        raise MalformedJob(f"job {job.id}: {field} must be a JSON array, not {type(value).__name__}")
    return value


def _check_fits(arity: Arity | None, args: list[Any], call: str, job: JobData) -> None:
    if arity is not None and not arity.fits(len(args)):
        raise MalformedJob(f"job {job.id}: {call} does not fit {len(args)} argument(s) {args!r}: {arity.describe()}")
