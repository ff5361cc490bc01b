"""Which backend class a URL gets, and that building one neither connects nor leaks a password."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest

import sidequest_sql as sq
from sidequest_sql import registry
from sidequest_sql.base import SQLBackend
from sidequest_sql.dialects.postgres import PostgresBackend
from sidequest_sql.dialects.sqlite import SQLiteBackend
from sidequest_sql.errors import UnsupportedDatabaseError

SECRET = "s3cretPW"
UNREACHABLE = f"postgresql://u:{SECRET}@127.0.0.1:1/db"


@pytest.fixture(autouse=True)
def isolated_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """Registrations made by a test stay in that test."""
    monkeypatch.setattr(registry, "_registered", {})
    monkeypatch.setattr(registry, "entry_points", lambda group: [])


def chain(exc: BaseException | None) -> Iterator[BaseException]:
    """The exception and every exception chained to it, shown or not."""
    seen: set[int] = set()
    stack = [exc]
    while stack:
        item = stack.pop()
        if item is None or id(item) in seen:
            continue
        seen.add(id(item))
        yield item
        stack.extend([item.__cause__, item.__context__])


class MemoryBackend(SQLiteBackend):
    """A third-party dialect: its own scheme, served by in-memory SQLite."""

    @classmethod
    def engine_url(cls, url):  # type: ignore[no-untyped-def]
        return url.set(drivername="sqlite", database=None)


# -- built-in schemes -------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "postgres://u:pw@127.0.0.1:1/db",
        "postgresql://u:pw@127.0.0.1:1/db",
        "postgresql+psycopg://u:pw@127.0.0.1:1/db",
    ],
)
def test_postgres_schemes_use_psycopg_3(url: str) -> None:
    backend = sq.create_backend(url)
    assert type(backend) is PostgresBackend
    assert backend.engine.dialect.name == "postgresql"
    assert backend.engine.dialect.driver == "psycopg"
    assert backend.url.drivername == "postgresql+psycopg"
    assert backend.url.database == "db" and backend.url.port == 1


def test_query_parameters_reach_the_driver_untouched() -> None:
    backend = sq.create_backend("postgresql://u@db.example:5432/app?sslmode=require&application_name=a%20b")
    assert dict(backend.url.query) == {"sslmode": "require", "application_name": "a b"}


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:", "sqlite:///relative.sqlite"])
def test_sqlite_schemes(url: str) -> None:
    backend = sq.create_backend(url)
    assert type(backend) is SQLiteBackend
    assert backend.engine.dialect.name == "sqlite"


def test_creating_a_postgres_backend_does_not_connect() -> None:
    backend = sq.create_backend(UNREACHABLE)
    repr(backend)
    assert backend.worker_name
    with pytest.raises(Exception) as info:
        backend.get_queue("default")
    assert "127.0.0.1" in str(info.value) or "connect" in str(info.value).lower()


def test_creating_a_sqlite_backend_does_not_touch_the_file(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite"
    backend = sq.create_backend(f"sqlite:///{path}")
    assert not path.exists()
    backend.migrate()
    assert path.exists()
    backend.close()


# -- unknown schemes ---------------------------------------------------------------


@pytest.mark.parametrize("url", ["cockroachdb://u@h/db", "mssql+pyodbc://u@h/db", "oracle://u@h/db"])
def test_unknown_scheme_names_the_known_ones(url: str) -> None:
    with pytest.raises(UnsupportedDatabaseError) as info:
        sq.create_backend(url)
    message = str(info.value)
    assert url.split("://")[0] in message
    for known in ("postgres", "postgresql", "sqlite"):
        assert repr(known) in message or known in message.split("known schemes:")[1]
    assert isinstance(info.value, sq.SidequestError)


def test_unknown_scheme_message_lists_registered_and_installed_schemes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sq.register_dialect("inmemorydb", MemoryBackend)
    entry = EntryPoint(
        "fromplugin", "sidequest_sql.dialects.sqlite:SQLiteBackend", registry.ENTRY_POINT_GROUP
    )
    monkeypatch.setattr(
        registry, "entry_points", lambda group: [entry] if group == registry.ENTRY_POINT_GROUP else []
    )
    with pytest.raises(UnsupportedDatabaseError) as info:
        sq.create_backend("nosuchdb://h/db")
    known = str(info.value).split("known schemes:")[1]
    for scheme in ("inmemorydb", "fromplugin", "postgres", "postgresql", "sqlite"):
        assert scheme in known


# -- registering dialects -------------------------------------------------------------


def test_register_a_class() -> None:
    sq.register_dialect("inmemorydb", MemoryBackend)
    with sq.create_backend("inmemorydb://") as backend:
        assert type(backend) is MemoryBackend
        assert backend.migrate()
        assert backend.list_queues() == []


def test_a_registration_wins_over_the_built_ins() -> None:
    sq.register_dialect("sqlite", MemoryBackend)
    assert type(sq.create_backend("sqlite:///x.sqlite")) is MemoryBackend


def test_the_full_driver_name_is_tried_before_the_backend_name() -> None:
    class Other(MemoryBackend):
        pass

    sq.register_dialect("foo", MemoryBackend)
    sq.register_dialect("foo+bar", Other)
    assert registry.dialect_for("foo+bar://h/db") is Other
    assert registry.dialect_for("foo+baz://h/db") is MemoryBackend
    assert registry.dialect_for("foo://h/db") is MemoryBackend


def test_register_a_module_path_imports_it_only_when_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "lazy_sidequest_dialect.py").write_text(
        "from sidequest_sql.dialects.sqlite import SQLiteBackend\n"
        "class LazyBackend(SQLiteBackend):\n"
        "    @classmethod\n"
        "    def engine_url(cls, url):\n"
        "        return url.set(drivername='sqlite', database=None)\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "lazy_sidequest_dialect", raising=False)
    sq.register_dialect("lazydb", "lazy_sidequest_dialect:LazyBackend")
    assert "lazy_sidequest_dialect" not in sys.modules
    backend = sq.create_backend("lazydb://")
    assert type(backend).__name__ == "LazyBackend"
    assert isinstance(backend, SQLBackend)
    assert "lazy_sidequest_dialect" in sys.modules


def test_a_bad_module_path_fails_only_when_its_scheme_is_used() -> None:
    sq.register_dialect("brokendb", "no_such_module_for_sidequest:Backend")
    assert type(sq.create_backend("sqlite://")) is SQLiteBackend
    with pytest.raises(ImportError):
        sq.create_backend("brokendb://h/db")


@pytest.mark.parametrize(
    ("scheme", "backend", "error"),
    [
        ("", MemoryBackend, TypeError),
        (None, MemoryBackend, TypeError),
        ("x", "no_colon", ValueError),
        ("x", "a:b:c", ValueError),
        ("x", 42, TypeError),
        ("x", object(), TypeError),
    ],
)
def test_register_dialect_refuses_bad_arguments(
    scheme: object, backend: object, error: type[Exception]
) -> None:
    with pytest.raises(error):
        sq.register_dialect(scheme, backend)  # type: ignore[arg-type]
    assert registry._registered == {}


def test_entry_points_are_found(monkeypatch: pytest.MonkeyPatch) -> None:
    groups: list[str] = []

    def entry_points(group: str) -> list[EntryPoint]:
        groups.append(group)
        return [EntryPoint("plugindb", f"{__name__}:MemoryBackend", group)]

    monkeypatch.setattr(registry, "entry_points", entry_points)
    backend = sq.create_backend("plugindb://")
    assert type(backend) is MemoryBackend
    assert groups and set(groups) == {"sidequest_sql.dialects"}


# -- the default URL --------------------------------------------------------------------


def test_create_backend_without_url_reads_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SIDEQUEST_DATABASE_URL", f"sqlite:///{tmp_path / 'from_env.sqlite'}")
    backend = sq.create_backend()
    assert type(backend) is SQLiteBackend
    assert backend.url.database == str(tmp_path / "from_env.sqlite")


def test_create_backend_without_url_reads_postgres_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SIDEQUEST_DATABASE_URL", UNREACHABLE)
    backend = sq.create_backend()
    assert type(backend) is PostgresBackend
    assert SECRET not in repr(backend)


@pytest.mark.parametrize("value", [None, ""])
def test_create_backend_defaults_to_sqlite_in_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str | None
) -> None:
    monkeypatch.chdir(tmp_path)
    if value is None:
        monkeypatch.delenv("SIDEQUEST_DATABASE_URL", raising=False)
    else:
        monkeypatch.setenv("SIDEQUEST_DATABASE_URL", value)
    backend = sq.create_backend()
    assert type(backend) is SQLiteBackend
    assert backend.url.database == "sidequest.sqlite"
    assert not (tmp_path / "sidequest.sqlite").exists()
    backend.migrate()
    backend.close()
    assert (tmp_path / "sidequest.sqlite").exists()


# -- passwords -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        f"postgresql://u:{SECRET}@host:notaport/db",
        f"postgresql://u:{SECRET}@[::1/db",
        f"://u:{SECRET}@host/db",
        f"u:{SECRET}@host/db",
        SECRET,
        "",
    ],
)
def test_a_malformed_url_raises_value_error_without_the_password(url: str) -> None:
    with pytest.raises(ValueError) as info:
        sq.create_backend(url)
    for exc in chain(info.value):
        assert SECRET not in str(exc)
    assert "url" in str(info.value)


def test_repr_hides_the_password() -> None:
    backend = sq.create_backend(UNREACHABLE, schema="jobs")
    assert SECRET not in repr(backend)
    assert "***" in repr(backend)
    assert "schema='jobs'" in repr(backend)
    assert SECRET not in str(backend.url) and SECRET not in repr(backend.engine)


def test_a_connection_error_does_not_repeat_the_password() -> None:
    backend = sq.create_backend(UNREACHABLE)
    with pytest.raises(Exception) as info:
        backend.list_queues()
    for exc in chain(info.value):
        assert SECRET not in str(exc)
        assert SECRET not in repr(exc)
    backend.close()


# -- construction arguments ------------------------------------------------------------------


def test_schema_is_refused_where_unsupported() -> None:
    with pytest.raises(ValueError, match="schema"):
        sq.create_backend("sqlite://", schema="jobs")


@pytest.mark.parametrize(
    ("options", "error", "word"),
    [
        ({"worker_name": 5}, TypeError, "worker_name"),
        ({"worker_name": "w" * 256}, ValueError, "worker_name"),
        ({"worker_name": "a\x00b"}, ValueError, "worker_name"),
        ({"clock": "now"}, TypeError, "clock"),
        ({"schema": 5}, TypeError, "schema"),
        ({"schema": "s" * 64}, ValueError, "schema"),
    ],
)
def test_construction_refuses_bad_options(
    options: dict[str, object], error: type[Exception], word: str
) -> None:
    with pytest.raises(error, match=word):
        sq.create_backend(UNREACHABLE, **options)  # type: ignore[arg-type]
