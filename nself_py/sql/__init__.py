"""SQL text: quoting, PostgreSQL's default names, and reading SQL with PostgreSQL's own parser."""
