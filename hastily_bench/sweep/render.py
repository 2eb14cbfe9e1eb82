"""The Pareto front of a sweep summary as rich tables (one per workload, length, batch)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ..report import fmt_num


def _fmt(v: Any) -> str:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return str(v)
    return str(v) if isinstance(v, int) else fmt_num(v, 4)


def render_front(summary: Mapping[str, Any], console: Console, *, top: int = 15) -> None:
    """Print each group's front, best first by the first objective, at most ``top`` rows."""
    objectives = list(summary.get("objectives", []))
    front = summary.get("front", [])
    if not objectives:
        console.print("no objectives: no Pareto front")
        return
    if not front:
        console.print("Pareto front: empty (no feasible ok point)")
        return
    groups: dict[tuple[str, int, int], list[Mapping[str, Any]]] = {}
    for p in front:
        groups.setdefault((p["workload"], p["seq_len"], p["batch"]), []).append(p)
    first = objectives[0]
    sign = -1.0 if first.startswith("max:") else 1.0
    for (name, s, b), points in groups.items():
        w = escape(name)  # names are text, never rich markup
        if top == 0:
            console.print(f"Pareto front · {w} · l={s} · b={b}: {len(points)} points")
            continue
        labels = list(dict.fromkeys(k for p in points for k in p["design"]))
        table = Table(title=f"Pareto front · {w} · l={s} · b={b} · {len(points)} points "
                            f"({', '.join(objectives)})", title_justify="left", header_style="bold")
        table.add_column("point", justify="right")
        table.add_column("accelerator")
        for label in labels:
            table.add_column(escape(label.split(".", 1)[1] if "." in label else label), justify="right")
        for o in objectives:
            table.add_column(o, justify="right")
        ranked = sorted(points, key=lambda p: (sign * p["objectives"][first], p["index"]))
        for p in ranked[:top]:
            table.add_row(str(p["index"]), escape(p["accelerator"]),
                          *(escape(_fmt(p["design"].get(label, ""))) for label in labels),
                          *(fmt_num(p["objectives"][o], 4) for o in objectives))
        console.print(table)
        if len(ranked) > top:
            console.print(f"... and {len(ranked) - top} more front points (all in the summary file)")
