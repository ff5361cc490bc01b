"""No password in a repr, an error or a log line, whatever the URL looks like.

No server is needed: port 1 refuses connections, so every connection attempt
fails at once, with the driver's own words.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
import pytest
from sqlalchemy.engine import URL

import sidequest_sql as sq

SECRET = "Hunter2-s3cret"
# Passwords with characters a URL gives meaning to, written as users write them.
PASSWORDS = [SECRET, f"{SECRET}/x", f"{SECRET}#x", f"{SECRET}?x=1", f"{SECRET}:x", f"{SECRET} x"]
SCHEMES = ["postgresql", "postgres", "postgresql+psycopg", "mysql", "mariadb"]


def everything_said(exc: BaseException) -> Iterator[str]:
    """The text of ``exc`` and of every exception behind it, shown or not."""
    seen: set[int] = set()
    stack: list[BaseException | None] = [exc]
    while stack:
        item = stack.pop()
        if item is None or id(item) in seen:
            continue
        seen.add(id(item))
        yield str(item)
        yield repr(item)
        stack += [item.__cause__, item.__context__]


def assert_hidden(texts: Iterator[str] | list[str], secret: str = SECRET) -> None:
    for text in texts:
        assert secret not in text, text


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """Every logger at DEBUG, SQLAlchemy's and alembic's included."""
    caplog.set_level(logging.DEBUG)
    for name in ("sqlalchemy", "sqlalchemy.engine", "sqlalchemy.pool", "alembic", "sidequest_sql"):
        caplog.set_level(logging.DEBUG, logger=name)
    yield caplog


def logged(caplog: pytest.LogCaptureFixture) -> list[str]:
    lines = [caplog.text]
    for record in caplog.records:
        lines.append(record.getMessage())
        if record.exc_info and record.exc_info[1] is not None:
            lines.extend(everything_said(record.exc_info[1]))
    return lines


@pytest.mark.parametrize("password", PASSWORDS)
@pytest.mark.parametrize("scheme", SCHEMES)
def test_the_repr_and_the_url_hide_the_password(scheme: str, password: str) -> None:
    url = URL.create(scheme, username="app", password=password, host="127.0.0.1", port=1, database="app")
    for given in (url, url.render_as_string(hide_password=False)):
        backend = sq.create_backend(given)
        assert_hidden([repr(backend), str(backend), str(backend.url), repr(backend.engine), repr(backend.engine.url)])
        assert "***" in repr(backend)
        backend.close()


@pytest.mark.parametrize("database", ["app", "app\x00", "app?sslmode=bogus", "app?bogus=1"])
@pytest.mark.parametrize("scheme", SCHEMES)
def test_a_refused_connection_says_so_without_the_password(
    scheme: str, database: str, logs: pytest.LogCaptureFixture
) -> None:
    backend = sq.create_backend(f"{scheme}://app:{SECRET}@127.0.0.1:1/{database}", echo=True, echo_pool="debug")
    for operation in (backend.list_queues, backend.migrate, lambda: backend.create_new_queue("q")):
        with pytest.raises(Exception) as info:  # noqa: PT011 - whichever error: it must not tell
            operation()
        assert_hidden(everything_said(info.value))
        # PyMySQL refuses an unknown query parameter with a TypeError naming it.
        assert isinstance(info.value, (sq.SidequestError, TypeError)), repr(info.value)
    backend.close()
    assert_hidden(logged(logs))


@pytest.mark.parametrize(
    "url",
    [
        f"nosuchdb://app:{SECRET}@db/app",
        f"postgresql+nosuchdriver://app:{SECRET}@db/app",
        f"sqlite://app:{SECRET}@db/app",
        f"postgresql://app:{SECRET}@db:port/app",
        f"postgresql://app:{SECRET}@[::1/app",
        f"postgresql://app:pa@{SECRET}@127.0.0.1:1/app",
        f"app:{SECRET}@db/app",
        URL.create("nosuchdb", username="app", password=SECRET, host="db"),
    ],
)
def test_a_url_that_cannot_be_used_is_refused_without_repeating_it(
    url: str | URL, logs: pytest.LogCaptureFixture
) -> None:
    with pytest.raises((ValueError, sq.UnsupportedDatabaseError)) as info:
        sq.create_backend(url)
    assert_hidden(everything_said(info.value))
    assert "url" in str(info.value) or isinstance(info.value, sq.UnsupportedDatabaseError)
    assert_hidden(logged(logs))


def test_an_unescaped_at_sign_in_a_password_is_refused_not_taken_for_the_host() -> None:
    # Else the rest of the password would be the host name, shown in every message.
    with pytest.raises(ValueError, match="%40"):
        sq.create_backend(f"postgresql://app:pa@{SECRET}@db/app")
    escaped = sq.create_backend(f"postgresql://app:pa%40{SECRET}@127.0.0.1:1/app")
    assert escaped.url.password == f"pa@{SECRET}" and escaped.url.host == "127.0.0.1"
    assert_hidden([repr(escaped)])
