"""schema.dbml as a picture: Mermaid `erDiagram` text (GitHub and GitLab render it in pull
requests, where migrations are reviewed) and a self-contained SVG or HTML file.

The pending change is highlighted: tables added (green), dropped (red, drawn from the live
catalog) and altered (amber). The SVG is written by hand (a grid of boxes and straight lines), so
there is no renderer to install; nothing from the schema reaches it unescaped.
"""

from __future__ import annotations

import math
import re
from html import escape

from nself_py.model import Name, Schema, Table
from nself_py.plan import operations as ops
from nself_py.plan.operations import Operation

ADDED, DROPPED, ALTERED = "added", "dropped", "altered"
COLOURS = {  # fill, stroke
    ADDED: ("#d8f5d8", "#2e7d32"),
    DROPPED: ("#fbd9d9", "#c62828"),
    ALTERED: ("#ffecc2", "#e69500"),
    None: ("#eef1f6", "#5a6b86"),
}


def changed_tables(operations: tuple[Operation, ...]) -> dict[Name, str]:
    """Which tables the plan adds, drops or alters (a rename counts as altered)."""
    found: dict[Name, str] = {}
    for op in operations:
        if isinstance(op, ops.CreateTable):
            found[op.table.name] = ADDED
        elif isinstance(op, ops.DropTable):
            found[op.table.name] = DROPPED
        elif isinstance(op, ops.RenameTable):
            found.setdefault(op.new, ALTERED)
        else:
            table = getattr(op, "table", None)
            if isinstance(table, Name):
                found.setdefault(table, ALTERED)
    return found


def drawn_tables(
    target: Schema, current: Schema | None, changes: dict[Name, str], changes_only: bool
) -> list[tuple[Table, str | None]]:
    """The target's tables plus the dropped ones (from the live catalog); with `changes_only`,
    the changed tables and the ones they reference."""
    tables = [(t, changes.get(t.name)) for t in target.tables]
    if current is not None:
        kept = {t.name for t in target.tables}
        tables += [(t, DROPPED) for t in current.tables if t.name not in kept]
    if changes_only:
        wanted = {t.name for t, state in tables if state}
        wanted |= {fk.ref_table for t, state in tables if state for fk in t.foreign_keys}
        tables = [(t, state) for t, state in tables if t.name in wanted]
    return tables


def _entity(name: Name) -> str:
    text = name.name if name.schema == "public" else f"{name.schema}_{name.name}"
    return re.sub(r"[^A-Za-z0-9_]", "_", text) or "_"


def _word(text: str) -> str:
    """A Mermaid attribute word: letters, digits, _ ( ) [ ] and - only."""
    return re.sub(r"[^A-Za-z0-9_()\[\]-]", "_", text) or "_"


def mermaid(
    target: Schema,
    operations: tuple[Operation, ...] = (),
    current: Schema | None = None,
    *,
    changes_only: bool = False,
) -> str:
    """A Mermaid erDiagram of the schema; changed tables get a classDef and a comment."""
    changes = changed_tables(operations)
    tables = drawn_tables(target, current, changes, changes_only)
    lines = ["erDiagram"]
    for table, state in tables:
        if state:
            lines.append(f"    %% {state}: {table.name}")
        lines.append(f"    {_entity(table.name)} {{")
        pk = set(table.primary_key.columns) if table.primary_key else set()
        fks = {c for fk in table.foreign_keys for c in fk.columns}
        for column in table.columns:
            keys = ",".join(
                k for k, on in (("PK", column.name in pk), ("FK", column.name in fks)) if on
            )
            lines.append(
                f"        {_word(column.type)} {_word(column.name)}{' ' + keys if keys else ''}"
            )
        lines.append("    }")
    shown = {t.name for t, _ in tables}
    for table, _ in tables:
        for fk in table.foreign_keys:
            if fk.ref_table in shown:
                label = escape(", ".join(fk.columns), quote=True).replace('"', "'")
                lines.append(
                    f'    {_entity(fk.ref_table)} ||--o{{ {_entity(table.name)} : "{label}"'
                )
    for state in (ADDED, DROPPED, ALTERED):
        members = [_entity(t.name) for t, s in tables if s == state]
        if members:
            fill, stroke = COLOURS[state]
            lines.append(f"    classDef {state} fill:{fill},stroke:{stroke},stroke-width:2px")
            lines.append(f"    class {','.join(members)} {state}")
    return "\n".join(lines) + "\n"


_ROW, _HEAD, _WIDTH, _GAP = 20, 28, 230, 60


def svg(
    target: Schema,
    operations: tuple[Operation, ...] = (),
    current: Schema | None = None,
    *,
    changes_only: bool = False,
) -> str:
    """A self-contained SVG: one box per table in a grid, coloured by change, lines for refs."""
    changes = changed_tables(operations)
    tables = drawn_tables(target, current, changes, changes_only)
    per_row = max(1, math.ceil(math.sqrt(len(tables))))
    heights = [_HEAD + _ROW * max(1, len(t.columns)) + 8 for t, _ in tables]
    row_height: dict[int, int] = {}
    for i, h in enumerate(heights):
        row_height[i // per_row] = max(row_height.get(i // per_row, 0), h)
    tops, y = {}, _GAP // 2 + 30
    for row in sorted(row_height):
        tops[row] = y
        y += row_height[row] + _GAP
    boxes: dict[Name, tuple[int, int, int]] = {}
    for i, (table, _) in enumerate(tables):
        boxes[table.name] = (
            _GAP // 2 + (i % per_row) * (_WIDTH + _GAP),
            tops[i // per_row],
            heights[i],
        )
    width = _GAP + min(per_row, max(1, len(tables))) * (_WIDTH + _GAP)
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{y}" '
        f'viewBox="0 0 {width} {y}" font-family="DejaVu Sans, Arial, sans-serif" font-size="12">',
        '<rect width="100%" height="100%" fill="#ffffff"/>',
    ]
    legend_x = _GAP // 2
    for kind in (ADDED, ALTERED, DROPPED):
        fill, stroke = COLOURS[kind]
        out.append(
            f'<rect x="{legend_x}" y="8" width="14" height="14" fill="{fill}" stroke="{stroke}"/>'
            f'<text x="{legend_x + 20}" y="20">{kind}</text>'
        )
        legend_x += 90
    for table, _ in tables:
        x1, y1, h1 = boxes[table.name]
        for fk in table.foreign_keys:
            if fk.ref_table in boxes:
                x2, y2, h2 = boxes[fk.ref_table]
                out.append(
                    f'<line x1="{x1 + _WIDTH // 2}" y1="{y1 + h1 // 2}" x2="{x2 + _WIDTH // 2}" '
                    f'y2="{y2 + h2 // 2}" stroke="#7a869a" stroke-width="1.5"/>'
                )
    for table, state in tables:
        x, top, height = boxes[table.name]
        fill, stroke = COLOURS[state]
        label = escape(str(table.name)) + (f" ({state})" if state else "")
        dash = ' stroke-dasharray="6 3"' if state == DROPPED else ""
        out.append(
            f'<g class="table {state or "unchanged"}" data-table="{escape(str(table.name))}">'
            f'<rect x="{x}" y="{top}" width="{_WIDTH}" height="{height}" rx="4" fill="#ffffff" '
            f'stroke="{stroke}" stroke-width="2"{dash}/>'
            f'<rect x="{x}" y="{top}" width="{_WIDTH}" height="{_HEAD}" rx="4" fill="{fill}" '
            f'stroke="{stroke}" stroke-width="2"/>'
            f'<text x="{x + 8}" y="{top + 19}" font-weight="bold">{label}</text>'
        )
        pk = set(table.primary_key.columns) if table.primary_key else set()
        for j, column in enumerate(table.columns):
            cy = top + _HEAD + 15 + j * _ROW
            name = escape(column.name) + (" · PK" if column.name in pk else "")
            out.append(
                f'<text x="{x + 8}" y="{cy}">{name}</text>'
                f'<text x="{x + _WIDTH - 8}" y="{cy}" text-anchor="end" fill="#555">'
                f"{escape(column.type[:28])}</text>"
            )
        out.append("</g>")
    out.append("</svg>")
    return "\n".join(out) + "\n"


def html(svg_text: str, mermaid_text: str, title: str = "schema.dbml") -> str:
    """One self-contained page: the SVG inline, the Mermaid source below it for copying."""
    return (
        "<!DOCTYPE html>\n<html><head><meta charset='utf-8'>"
        f"<title>{escape(title)}</title>"
        "<style>body{margin:16px;font-family:sans-serif}pre{background:#f6f8fa;padding:8px}"
        "</style></head><body>\n"
        f"<h1>{escape(title)}</h1>\n{svg_text}\n"
        f"<details><summary>Mermaid</summary><pre>{escape(mermaid_text)}</pre></details>\n"
        "</body></html>\n"
    )
