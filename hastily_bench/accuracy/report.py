"""Render an accuracy study (:func:`hastily_bench.accuracy.study`) as text."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from rich.console import Console
from rich.table import Table

__all__ = ["COLUMNS", "render_csv", "render_json", "render_markdown", "render_table"]

#: (key, header) of the columns, in order.
COLUMNS = (
    ("name", "name"),
    ("arithmetic", "arithmetic"),
    ("cos_mean", "cos mean"),
    ("cos_p1", "cos p1"),
    ("cos_min", "cos min"),
    ("top1", "top-1"),
    ("recall_at_10", "recall@10"),
    ("wall_s", "wall s"),
)


def _cell(row: dict[str, Any], key: str) -> str:
    value = row[key]
    if key.startswith("cos"):
        return f"{value:.6f}"
    if key in ("top1", "recall_at_10"):
        return f"{value:.3f}"
    if key == "wall_s":
        return f"= {row['same_as']}" if row.get("same_as") else f"{value:.1f}"
    return str(value)


def _caption(doc: dict[str, Any]) -> str:
    return (f"{doc['sentences']} sentences, model {doc['model']}; cosine and nearest neighbours "
            "against fp32")


def render_table(doc: dict[str, Any], console: Console) -> None:
    """A rich table."""
    table = Table(title="Accuracy against fp32", caption=_caption(doc))
    for key, header in COLUMNS:
        table.add_column(header, justify="left" if key in ("name", "arithmetic") else "right",
                         overflow="fold")
    for row in doc["rows"]:
        table.add_row(*(_cell(row, k) for k, _ in COLUMNS))
    console.print(table)


def render_markdown(doc: dict[str, Any]) -> str:
    lines = ["| " + " | ".join(h for _, h in COLUMNS) + " |",
             "|" + "|".join("---" if k in ("name", "arithmetic") else "---:" for k, _ in COLUMNS) + "|"]
    lines += ["| " + " | ".join(_cell(r, k) for k, _ in COLUMNS) + " |" for r in doc["rows"]]
    return "\n".join(lines) + f"\n\n{_caption(doc)}.\n"


def render_csv(doc: dict[str, Any]) -> str:
    buf = io.StringIO()
    keys = [k for k, _ in COLUMNS] + ["kind", "same_as"]
    writer = csv.DictWriter(buf, fieldnames=keys, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    for row in doc["rows"]:
        writer.writerow({k: row[k] for k in keys})
    return buf.getvalue()


def render_json(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=2) + "\n"
