"""`db run` keeps the live catalog's model between runs (`read.live_cache`) and reads it back only
for exactly the catalog it was built from: same digest, server, database and spelling context."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import psycopg
from helpers import make_project, nself
from pgservers import Server
from test_db_run import BLOG

from nself_py.model import Schema
from nself_py.read import live_cache
from nself_py.read.digest import catalog_digest
from nself_py.read.introspect import introspect
from nself_py.read.model_codec import load_schema, store_schema

EDITED = (
    BLOG
    + """
    Table tags {
      id bigint [pk]
    }
"""
)


def _key(url: str) -> str:
    with psycopg.connect(url) as conn:
        return live_cache.cache_key(conn, catalog_digest(conn))


def _applied_blog(db_url: str, tmp_path: Path) -> Path:
    """BLOG applied, then a full run that found no change (it stores the live model)."""
    project = make_project(tmp_path, BLOG)
    for args in (("db", "run"), ("db", "migrate:up"), ("db", "run")):
        assert nself(project, db_url, *args).returncode == 0
    return project


def test_a_full_run_stores_the_model_introspection_reads(db_url: str, tmp_path: Path) -> None:
    project = _applied_blog(db_url, tmp_path)

    stored = load_schema(project / live_cache.LIVE_CACHE, _key(db_url))

    with psycopg.connect(db_url) as conn:
        assert stored == introspect(conn)


def test_an_edit_is_planned_against_the_stored_model(db_url: str, tmp_path: Path) -> None:
    """The run after an edit takes the live model from the cache: a stored model that (falsely)
    lacks `posts` makes the plan add it, which only a read of the cache can explain."""
    project = _applied_blog(db_url, tmp_path)
    path, key = project / live_cache.LIVE_CACHE, _key(db_url)
    stored = load_schema(path, key)
    assert stored is not None
    without_posts = [t for t in stored.tables if t.name.name != "posts"]
    store_schema(path, key, dataclasses.replace(stored, tables=tuple(without_posts)))
    (project / "schema.dbml").write_text(EDITED)

    run = nself(project, db_url, "db", "run", "--dry-run")

    assert run.returncode == 0, run.stderr
    assert "CREATE TABLE public.tags" in run.stdout
    assert "CREATE TABLE public.posts" in run.stdout


def test_any_catalog_change_reads_the_catalog_again(db_url: str, tmp_path: Path) -> None:
    """A column added behind the tool's back changes the digest: the stored model (which lacks
    it) is not used, so the plan drops the column. Fails when the key leaves out the digest."""
    project = _applied_blog(db_url, tmp_path)
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("ALTER TABLE users ADD COLUMN nickname text")
    (project / "schema.dbml").write_text(EDITED)

    run = nself(project, db_url, "db", "run", "--dry-run")

    assert run.returncode == 0, run.stderr
    assert "DROP COLUMN nickname" in run.stdout


def test_a_dry_run_stores_no_model(db_url: str, tmp_path: Path) -> None:
    project = _applied_blog(db_url, tmp_path)
    cache = project / live_cache.LIVE_CACHE
    cache.unlink()
    (project / "schema.dbml").write_text(EDITED)

    assert nself(project, db_url, "db", "run", "--dry-run").returncode == 0
    assert not cache.exists()
    assert nself(project, db_url, "db", "run").returncode == 0
    assert isinstance(load_schema(cache, _key(db_url)), Schema)


def test_another_database_with_the_same_tables_has_another_key(pg_server: Server) -> None:
    urls = [pg_server.create_database() for _ in range(2)]
    try:
        for url in urls:
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute("CREATE TABLE t (id int)")
        assert _key(urls[0]) != _key(urls[1])
        assert _key(urls[0]) == _key(urls[0])
    finally:
        for url in urls:
            pg_server.drop_database(url)
