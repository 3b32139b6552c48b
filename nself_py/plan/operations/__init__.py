"""Schema changes as frozen data: one class per kind, each knowing its reverse and its risks.

A migration's down.sql is the reverse of its up.sql, op by op, so nothing is written twice. Each
operation also declares what it changes and which objects it needs in their old or new state;
`order` turns that into a dependency graph and sorts it with graphlib (no fixed phases).

One module per object kind; everything else a kind needs (summary words, drift wording, online
form, live measurement, view dependencies) is declared on its class (see `base.DECLARED`), and
rendered by the template named after it. Every module of this package is imported here, so a
kind added in a new module is registered (`KINDS`) without being listed anywhere else.
"""

import importlib
import pkgutil

from nself_py.plan.operations.base import (
    BLOCKS_WRITES,
    DECLARED,
    DELETES_DATA,
    DROP,
    DROP_INDEXES,
    FAMILIES,
    INDEXES,
    KINDS,
    MAY_FAIL,
    NOT_RESTORED,
    RETYPE,
    REWRITES_TABLE,
    VALIDATE,
    DataLoss,
    Hazard,
    Key,
    LiveCount,
    Operation,
    PlainOperation,
    Roots,
    type_enum,
)
from nself_py.plan.operations.columns import (
    SERIAL_TYPES,
    AddColumn,
    AlterColumnDefault,
    AlterColumnIdentity,
    AlterColumnNullability,
    AlterColumnType,
    DropColumn,
    RenameColumn,
    nextval_default,
    serial_sequence,
)
from nself_py.plan.operations.comments import CommentOn
from nself_py.plan.operations.constraints import (
    AddConstraint,
    AddForeignKey,
    AttachUniqueIndex,
    DropConstraint,
    DropForeignKey,
    RenameConstraint,
)
from nself_py.plan.operations.enums import (
    AddEnumValue,
    CreateEnum,
    DropEnum,
    EnumColumn,
    RecreateEnum,
)
from nself_py.plan.operations.indexes import CreateIndex, DropIndex
from nself_py.plan.operations.ordering import OrderingError, order, reverse_plan
from nself_py.plan.operations.schemas import CreateSchema, DropSchema
from nself_py.plan.operations.tables import CreateTable, DropTable, RenameTable
from nself_py.plan.operations.views import CreateView, DropView, Grant, View

__all__ = [
    "BLOCKS_WRITES",
    "DECLARED",
    "DELETES_DATA",
    "DROP",
    "DROP_INDEXES",
    "FAMILIES",
    "INDEXES",
    "KINDS",
    "MAY_FAIL",
    "NOT_RESTORED",
    "RETYPE",
    "REWRITES_TABLE",
    "SERIAL_TYPES",
    "VALIDATE",
    "AddColumn",
    "AddConstraint",
    "AddEnumValue",
    "AddForeignKey",
    "AlterColumnDefault",
    "AlterColumnIdentity",
    "AlterColumnNullability",
    "AlterColumnType",
    "AttachUniqueIndex",
    "CommentOn",
    "CreateEnum",
    "CreateIndex",
    "CreateSchema",
    "CreateTable",
    "CreateView",
    "DataLoss",
    "DropColumn",
    "DropConstraint",
    "DropEnum",
    "DropForeignKey",
    "DropIndex",
    "DropSchema",
    "DropTable",
    "DropView",
    "EnumColumn",
    "Grant",
    "Hazard",
    "Key",
    "LiveCount",
    "Operation",
    "OrderingError",
    "PlainOperation",
    "RecreateEnum",
    "RenameColumn",
    "RenameConstraint",
    "RenameTable",
    "Roots",
    "View",
    "nextval_default",
    "order",
    "reverse_plan",
    "serial_sequence",
    "type_enum",
]

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")
