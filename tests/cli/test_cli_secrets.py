"""The command never prints a password, whatever is wrong with the URL it was given."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from sidequest_sql.cli import app, cli

SECRET = "Cli-hunter2-s3cret"

URLS = {
    "refused": f"postgresql://ops:{SECRET}@127.0.0.1:1/app",
    "refused-mysql": f"mysql://ops:{SECRET}@127.0.0.1:1/app",
    "bad-libpq-option": f"postgresql://ops:{SECRET}@127.0.0.1:1/app?sslmode=bogus",
    "unknown-scheme": f"nosuchdb://ops:{SECRET}@db/app",
    "unknown-driver": f"postgresql+nosuchdriver://ops:{SECRET}@db/app",
    "bad-port": f"postgresql://ops:{SECRET}@db:port/app",
    "bad-ipv6": f"postgresql://ops:{SECRET}@[::1/app",
    "at-sign-in-password": f"postgresql://ops:pa@{SECRET}@127.0.0.1:1/app",
    "sqlite-with-password": f"sqlite://ops:{SECRET}@db/app",
    "no-scheme": f"ops:{SECRET}@db/app",
}


@pytest.mark.parametrize("command", [["stats"], ["jobs"], ["migrate"], ["job", "1"], ["queues"]])
@pytest.mark.parametrize("url", list(URLS.values()), ids=list(URLS))
def test_a_bad_url_is_one_sentence_without_the_password(
    url: str, command: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SIDEQUEST_DATABASE_URL", raising=False)
    result = CliRunner().invoke(cli, ["--url", url, *command], prog_name="sidequest-sql")
    assert result.exit_code in (1, 2), result.output
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit)
    assert SECRET not in result.output and SECRET not in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("Error: ") and result.stderr.count("\n") == 1, result.stderr


@pytest.mark.parametrize("url", [URLS["unknown-scheme"], URLS["bad-port"], URLS["at-sign-in-password"]])
def test_contract_refuses_a_bad_url_without_the_password(url: str) -> None:
    result = CliRunner().invoke(cli, ["contract", "--yes", url], prog_name="sidequest-sql")
    assert result.exit_code == 2
    assert SECRET not in result.output and SECRET not in result.stderr


def test_contract_asks_with_the_password_hidden(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(app, "on_terminal", lambda: True)
    result = CliRunner().invoke(
        cli, ["contract", f"postgresql://ops:{SECRET}@127.0.0.1:1/app"], input="n\n", prog_name="sidequest-sql"
    )
    assert result.exit_code == 1  # declined: nothing ran
    assert "postgresql://ops:***@127.0.0.1:1/app" in result.stderr
    assert SECRET not in result.output and SECRET not in result.stderr
