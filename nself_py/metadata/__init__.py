"""Hasura metadata for the tables `db run` manages: a pure stage (files in, files out, no server).

`plan_metadata(target, hasura_dir, managed_schemas, ...)` reads `hasura/metadata` (config v3:
`databases/databases.yaml`, `databases/<source>/tables/tables.yaml` and one
`<schema>_<table>.yaml` per table; config v2: the single `metadata/tables.yaml`) and returns a
`MetadataPlan` (path → new text, paths to delete, a summary) without writing; `apply(plan)` writes
it atomically. `check(...)` lists what would be inconsistent against a live model.

What a plan does, and never does:
- tracks every table of the managed schemas in the target model; adds the relationships its
  foreign keys call for (object on the referencing table; array, or object when the referencing
  columns are the primary key or a unique constraint, on the referenced one; join tables get two
  objects and each side an array), composite keys and reverse one-to-ones in the form the Hasura
  version takes (`composite_form`; unknown: `manual_configuration`, which every version takes);
- names new relationships by the legacy console's rule: `singularize(remote table)` for an object,
  `pluralize(referencing table)` for an array; when that is a column, relationship, computed
  field, remote relationship or custom column name of the table, or handed out already in the same
  run, its fallback `camelize("<base>_by_<columns>[_n]")`, e.g. `userByRecipientId`;
- matches existing relationships by shape (remote table and joined column pairs, FK form or
  `manual_configuration`), never by name, and never renames or rewrites one;
- untracks a table that `previous` (the model before this change: the previous target, or the
  live catalog) had in a managed schema and the target lacks, with every relationship pointing at
  it, and says which permissions, event triggers, computed fields and remote relationships went
  with its file; without `previous` nothing is untracked (a tracked view looks the same);
- follows table and column renames (`table_renames` old → new, `column_renames` (new table, old
  column) → new column, as `--rename` resolves them): file name, include, `table:`, relationship
  column and remote table references, permission columns, filters, presets, column_config;
- edits text surgically: every byte it does not change (permissions, configuration, comments,
  quoting, tables in other schemas, views) stays as it was; a second run plans nothing.

Opt-out: a table whose DBML note contains `hasura: untracked` (e.g. `Note: 'hasura: untracked'`,
any case; the note is `Table.comment`, so it also reaches the live catalog as the table's
comment) is neither tracked nor given relationships, and one already tracked by hand is left alone.
"""

from nself_py.metadata.check import (
    BROKEN_RELATIONSHIP,
    MISSING_TABLE,
    UNTRACKED_REMOTE,
    UNTRACKED_TABLE,
    Inconsistency,
    check,
)
from nself_py.metadata.plan import MetadataPlan, apply, plan_metadata
from nself_py.metadata.project import (
    DEFAULT_SOURCE,
    UNTRACKED_MARKER,
    MetadataConfig,
    composite_form,
    opted_out,
    read_config,
    table_file_name,
)

__all__ = [
    "BROKEN_RELATIONSHIP",
    "DEFAULT_SOURCE",
    "MISSING_TABLE",
    "UNTRACKED_MARKER",
    "UNTRACKED_REMOTE",
    "UNTRACKED_TABLE",
    "Inconsistency",
    "MetadataConfig",
    "MetadataPlan",
    "apply",
    "check",
    "composite_form",
    "opted_out",
    "plan_metadata",
    "read_config",
    "table_file_name",
]
