"""Which backend class serves a URL: registered dialects, built-ins, entry points.

Lookups try the URL's full driver name first (``mysql+pymysql``), then its
backend name (``mysql``). Classes are named as ``"module:Class"`` and imported
only when a URL needs them, so ``import sidequest_sql`` needs no driver.
"""

from __future__ import annotations

import importlib
import os
from importlib.metadata import entry_points
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

from .errors import UnsupportedDatabaseError

if TYPE_CHECKING:
    from .aio import AsyncSQLBackend
    from .base import Clock, SQLBackend

_B = TypeVar("_B")

ENTRY_POINT_GROUP = "sidequest_sql.dialects"
DEFAULT_URL = "sqlite:///sidequest.sqlite"
URL_VARIABLE = "SIDEQUEST_DATABASE_URL"

_BUILT_IN: dict[str, str] = {
    "postgresql": "sidequest_sql.dialects.postgres:PostgresBackend",
    "postgres": "sidequest_sql.dialects.postgres:PostgresBackend",
    "sqlite": "sidequest_sql.dialects.sqlite:SQLiteBackend",
    "mysql": "sidequest_sql.dialects.mysql:MySQLBackend",
    "mariadb": "sidequest_sql.dialects.mysql:MySQLBackend",
}
_registered: dict[str, str | type[SQLBackend]] = {}


def register_dialect(scheme: str, backend: str | type[SQLBackend]) -> None:
    """Serve URLs of ``scheme`` with ``backend``, a class or ``"module:Class"``.

    A registration made here wins over the built-ins and entry points.
    """
    if not isinstance(scheme, str) or not scheme:
        raise TypeError("scheme must be a non-empty str such as 'cockroachdb'")
    if isinstance(backend, str):
        if backend.count(":") != 1:
            raise ValueError(f"backend must be written 'module:Class'; got {backend!r}")
    elif not isinstance(backend, type):
        raise TypeError("backend must be an SQLBackend subclass or a 'module:Class' str")
    _registered[scheme] = backend


def parse_url(url: str | URL) -> URL:
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError, TypeError):
        # The text may hold a password: never repeat it.
        raise ValueError("url is not a database URL of the form scheme://user@host/database") from None
    if parsed.host and "@" in parsed.host:
        # A password with an "@" left unescaped: its end would be taken for the host, and shown.
        raise ValueError("url has an '@' in its host name; write an '@' in a password as %40")
    return parsed


def dialect_for(url: str | URL) -> type[SQLBackend]:
    """The backend class registered for ``url``'s scheme."""
    parsed = parse_url(url)
    names = dict.fromkeys([parsed.drivername, parsed.get_backend_name()])
    installed = {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}
    for name in names:
        for source in (_registered, _BUILT_IN, installed):
            if name in source:
                return _load(source[name])
    known = sorted({*_registered, *_BUILT_IN, *installed})
    raise UnsupportedDatabaseError(
        f"no dialect is registered for the scheme {parsed.drivername!r}; known schemes: {', '.join(known)}"
    )


def create_backend(
    url: str | URL | None = None,
    *,
    schema: str | None = None,
    worker_name: str | None = None,
    clock: Clock | None = None,
    **engine_options: Any,
) -> SQLBackend:
    """A backend for ``url``; without one, ``$SIDEQUEST_DATABASE_URL``, else
    ``sqlite:///sidequest.sqlite``. Nothing connects until the first operation."""
    return _build(
        lambda cls, parsed: cls(parsed, schema=schema, worker_name=worker_name, clock=clock, **engine_options), url
    )


def create_async_backend(
    url: str | URL | None = None,
    *,
    schema: str | None = None,
    worker_name: str | None = None,
    clock: Clock | None = None,
    **engine_options: Any,
) -> AsyncSQLBackend:
    """An asyncio backend for ``url`` (the same URLs as ``create_backend``),
    over the dialect's asyncio driver; nothing connects until the first operation."""
    from .aio import AsyncSQLBackend

    return _build(
        lambda cls, parsed: AsyncSQLBackend(
            cls, parsed, schema=schema, worker_name=worker_name, clock=clock, **engine_options
        ),
        url,
    )


def _build(make: Callable[[type[SQLBackend], URL], _B], url: str | URL | None) -> _B:
    """``make(backend_class, url)`` for the dialect of ``url`` (or the default URL),
    with SQLAlchemy's refusals of the URL said in our terms."""
    if url is None:
        url = os.environ.get(URL_VARIABLE) or DEFAULT_URL
    backend_class = dialect_for(url)
    parsed = parse_url(url)
    try:
        return make(backend_class, parsed)
    except NoSuchModuleError:
        raise UnsupportedDatabaseError(f"SQLAlchemy has no dialect for the scheme {parsed.drivername!r}") from None
    except ArgumentError as exc:
        # SQLAlchemy refuses some URLs (and engine options) only as it builds the engine.
        reason = str(exc).strip().splitlines()[0]
        if parsed.password:
            reason = reason.replace(str(parsed.password), "***")
        raise ValueError(f"url or engine options refused by SQLAlchemy: {reason}") from None


def _load(target: str | type[SQLBackend]) -> type[SQLBackend]:
    if isinstance(target, type):
        return target
    module_name, _, class_name = target.partition(":")
    return getattr(importlib.import_module(module_name), class_name)
