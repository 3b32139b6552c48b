"""`db diagram --changes`: the dry-run plan against the live database, drawn (no browser)."""

from __future__ import annotations

from pathlib import Path

from helpers import cli, make_project, migration_dirs

BLOG = """
Table users {
  id int [pk]
  name text [not null]
}
"""


def test_diagram_changes_marks_what_db_run_would_change(tmp_path: Path, db_url: str) -> None:
    project = make_project(tmp_path / "p", BLOG)
    common = ["--project-dir", str(project), "--database-url", db_url]
    cli("db", "run", *common)
    cli("db", "migrate:up", *common)
    written = migration_dirs(project)
    (project / "schema.dbml").write_text(
        BLOG.replace("name text [not null]", "name text [not null]\n  email text")
        + "\nTable bookmarks {\n  id int [pk]\n  user_id int [ref: > users.id]\n}\n"
    )
    page = tmp_path / "change.html"
    cli("db", "diagram", "--changes", "-o", str(page), *common)
    text = page.read_text()
    assert 'class="table added" data-table="bookmarks"' in text
    assert 'class="table altered" data-table="users"' in text
    assert migration_dirs(project) == written  # a dry run: nothing written
