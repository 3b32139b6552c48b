import psycopg


def test_fresh_database_is_empty_and_real(any_db_url: str) -> None:
    with psycopg.connect(any_db_url) as conn:
        count = conn.execute(
            "select count(*) from pg_class c join pg_namespace n on n.oid = c.relnamespace "
            "where n.nspname = 'public'"
        ).fetchone()
        assert count == (0,)
        assert conn.execute("select 1 + 1").fetchone() == (2,)
