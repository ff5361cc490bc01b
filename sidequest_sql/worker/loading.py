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
class _Target:
    """What ``find`` found, with the signatures a call is checked against (worked out once)."""

    target: Any
    is_job_class: bool
    constructor: inspect.Signature | None
    run: inspect.Signature | None
    asynchronous: bool


@functools.lru_cache(maxsize=1024)
def _target(script: str, name: str) -> _Target:
    target = find(script, name)
    if isinstance(target, type) and issubclass(target, Job):
        run = target.run
        return _Target(target, True, _signature(target), _signature(run), inspect.iscoroutinefunction(run))
    if inspect.isfunction(target) or inspect.isbuiltin(target):
        return _Target(target, False, None, _signature(target), inspect.iscoroutinefunction(target))
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
    _check_fits(found.run, [None, *args], f"{job.job_class}.run(*args)", job, given=len(args))
    try:
        instance = found.target(*constructor_args)
    except Exception as exc:
        raise MalformedJob(f"{job.job_class}(*constructor_args) raised {type(exc).__name__}: {exc}") from exc
    instance.job = job
    run = instance.run
    return Prepared(lambda: run(*args), found.asynchronous)


def _signature(function: Any) -> inspect.Signature | None:
    try:
        return inspect.signature(function)
    except (TypeError, ValueError):
        return None  # no signature to check (some builtins): the call itself will tell


def _arguments(value: Any, field: str, job: JobData) -> list[Any]:
    if not isinstance(value, list):
        raise MalformedJob(f"job {job.id}: {field} must be a JSON array, not {type(value).__name__}")
    return value


def _check_fits(
    signature: inspect.Signature | None, args: list[Any], call: str, job: JobData, given: int | None = None
) -> None:
    if signature is None:
        return
    try:
        signature.bind(*args)
    except TypeError as exc:
        shown = args if given is None else args[len(args) - given :]
        raise MalformedJob(f"job {job.id}: {call} does not fit {len(shown)} argument(s) {shown!r}: {exc}") from exc
