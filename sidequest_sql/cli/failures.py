"""Every error a command can meet, as one plain sentence and an exit status.

    exit 1  a refused operation, a missing job or queue, a database that fails
    exit 2  bad usage: unknown options, values that do not parse, a bad URL

Nothing here prints a traceback or a password.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import click
from sqlalchemy import inspect
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from sidequest_sql.errors import SidequestError, UnsupportedDatabaseError
from sidequest_sql.schema import jobs

from .transitions import Refusal

if TYPE_CHECKING:
    from sidequest_sql.base import SQLBackend


class Failure(click.ClickException):
    """An operation that could not be done: exit status 1."""

    exit_code = 1


class BadUsage(click.ClickException):
    """A value the command cannot use: exit status 2 (without the usage text)."""

    exit_code = 2


def sentence(text: str) -> str:
    """One line, ending in a full stop."""
    line = " ".join(str(text).split())
    return line if line.endswith((".", "!", "?")) else line + "."


def where(backend: SQLBackend | None) -> str:
    if backend is None:
        return "the database"
    return "the database at " + backend.url.render_as_string(hide_password=True)


def scrub(text: str, backend: SQLBackend | None) -> str:
    password = None if backend is None else backend.url.password
    if password:
        text = text.replace(str(password), "***")
    return text


def database_error(exc: SQLAlchemyError, backend: SQLBackend | None) -> Failure:
    """A sentence for a failed database call, naming the URL without its password."""
    if backend is not None and isinstance(exc, DBAPIError) and not exc.connection_invalidated:
        try:
            tables_missing = not inspect(backend.engine).has_table(jobs.name, schema=backend.schema)
        except SQLAlchemyError:
            tables_missing = False
        if tables_missing:
            return Failure(f"{where(backend)} has no sidequest tables yet; run `sidequest-sql migrate` first.")
    original = getattr(exc, "orig", None) or exc
    first_line = (str(original).strip().splitlines() or [type(original).__name__])[0]
    return Failure(sentence(f"could not use {where(backend)}: {scrub(first_line, backend)}"))


@contextmanager
def translated(backend_of: Callable[[], SQLBackend | None]) -> Iterator[None]:
    """Turn library, input and database errors into click exceptions with the right status."""
    try:
        yield
    except click.ClickException:
        raise
    except Refusal as exc:
        raise Failure(sentence(str(exc))) from None
    except UnsupportedDatabaseError as exc:
        raise BadUsage(sentence(str(exc))) from None
    except SidequestError as exc:
        raise Failure(sentence(scrub(str(exc), backend_of()))) from None
    except (ValueError, TypeError) as exc:
        raise BadUsage(sentence(scrub(str(exc), backend_of()))) from None
    except SQLAlchemyError as exc:
        raise database_error(exc, backend_of()) from None
    except KeyboardInterrupt:
        raise click.Abort() from None
