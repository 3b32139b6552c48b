"""Where the database URL comes from, and that passwords never reach output."""

from __future__ import annotations

from pathlib import Path

import pytest

from nself_py.database.connection import connect, redact, resolve_database_url, url_from_settings
from nself_py.errors import DatabaseError


@pytest.fixture(autouse=True)
def no_database_url_in_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)


def test_explicit_url_wins_over_environment_and_env_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / ".env").write_text("DATABASE_URL=postgresql://file/db\n")
    monkeypatch.setenv("DATABASE_URL", "postgresql://environment/db")
    assert resolve_database_url(tmp_path, "postgresql://flag/db") == "postgresql://flag/db"
    assert resolve_database_url(tmp_path) == "postgresql://environment/db"
    monkeypatch.delenv("DATABASE_URL")
    assert resolve_database_url(tmp_path) == "postgresql://file/db"


def test_env_file_with_nself_postgres_settings(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(
        "# nself\nexport POSTGRES_HOST=db.local\nPOSTGRES_PORT=6543\nPOSTGRES_DB='app'\n"
        'POSTGRES_USER=admin\nPOSTGRES_PASSWORD="p@ss word"\n'
    )
    assert resolve_database_url(tmp_path) == "postgresql://admin:p%40ss%20word@db.local:6543/app"


def test_no_settings_means_no_url_from_settings() -> None:
    assert url_from_settings({}) is None
    assert url_from_settings({"POSTGRES_DB": "x"}) == "postgresql://postgres@localhost:5432/x"


def test_passwords_are_redacted() -> None:
    assert redact("postgresql://u:secret@h/db failed") == "postgresql://u:***@h/db failed"
    assert "secret" not in redact("host=h password=secret dbname=d")


def test_connection_error_names_the_server_but_not_the_password() -> None:
    with pytest.raises(DatabaseError) as caught:
        connect("postgresql://someone:hunter2@127.0.0.1:1/nodb?connect_timeout=2")
    assert "hunter2" not in str(caught.value)
    assert "cannot connect to postgresql://someone:***@127.0.0.1:1/nodb" in str(caught.value)
