"""Rendering of results: rich tables, Markdown, CSV. Depends only on :mod:`results`."""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Sequence
from itertools import groupby

from rich import box
from rich.console import Console
from rich.table import Table

from .results import Result, RunDocument, summarise_by_category

FORMATS = ("table", "json", "csv", "markdown")

CSV_COLUMNS = (
    "workload", "accelerator", "seq_len", "batch", "status", "latency_s", "inferences_per_s",
    "tops", "energy_j", "energy_per_inference_j", "tops_per_w", "area_mm2", "tops_per_mm2",
    "memory_bytes", "attn_rel_error", "arithmetic", "speedup", "efficiency_gain", "params_hash", "error",
)


def fmt_si(value: float | None, unit: str, digits: int = 3) -> str:
    """``0.00123, "s" -> "1.23 ms"``; ``None -> "-"``."""
    if value is None or not math.isfinite(value):
        return "-"
    if value == 0:
        return f"0 {unit}"
    prefixes = [(1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"), (1.0, ""), (1e-3, "m"),
                (1e-6, "µ"), (1e-9, "n"), (1e-12, "p")]
    for scale, prefix in prefixes:
        if abs(value) >= scale:
            return f"{value / scale:.{digits}g} {prefix}{unit}"
    return f"{value:.{digits}g} {unit}"


def fmt_bytes(value: int | None) -> str:
    if value is None:
        return "-"
    v = float(value)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if v < 1024 or unit == "TiB":
            return f"{v:.3g} {unit}" if unit != "B" else f"{int(v)} B"
        v /= 1024
    return f"{v:.3g} TiB"


def fmt_num(value: float | None, digits: int = 3) -> str:
    if value is None or not math.isfinite(value):
        return "-"
    return f"{value:.{digits}g}"


def fmt_ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def ratios(result: Result, reference: Result | None) -> tuple[float | None, float | None]:
    """(speedup, efficiency gain) of ``result`` over ``reference`` (same point)."""
    if reference is None or not (result.ok and reference.ok):
        return None, None
    speed = reference.latency_s / result.latency_s if result.latency_s and reference.latency_s else None
    gain = (result.tops_per_w / reference.tops_per_w
            if result.tops_per_w and reference.tops_per_w else None)
    return speed, gain


def _groups(results: Sequence[Result]) -> Iterable[tuple[tuple[str, int, int], list[Result]]]:
    for key, grp in groupby(results, key=lambda r: (r.workload, r.seq_len, r.batch)):
        yield key, list(grp)


def _reference(group: list[Result], baseline: str | None) -> Result | None:
    return next((r for r in group if r.accelerator == baseline), None)


def fmt_area(r: Result) -> str:
    """The chip or die area, marked when the model grew the chip to hold the workload."""
    if r.area_mm2 is None:
        return "-"
    scaled = r.extra.get("chip_scaled") is True
    return f"{r.area_mm2:.0f} mm2" + (" (scaled)" if scaled else "")


def render_table(doc: RunDocument, console: Console, *, baseline: str | None,
                 breakdown: bool = False) -> None:
    """One rich table per (workload, seq_len, batch)."""
    show_err = any(r.attn_rel_error is not None for r in doc.results)
    for (workload, seq_len, batch), group in _groups(doc.results):
        ref = _reference(group, baseline)
        title = f"{workload} · seq_len {seq_len} · batch {batch}"
        if ref is not None:
            title += f" · speedup and TOPS/W gain vs {baseline}"
        table = Table(title=title, title_justify="left", header_style="bold", box=box.SIMPLE_HEAD,
                      pad_edge=False)
        table.add_column("accelerator", no_wrap=True)
        for col in ("latency", "inf/s", "TOPS", "J/inf", "TOPS/W", "area", "TOPS/mm2"):
            table.add_column(col, justify="right", no_wrap=True)
        if ref is not None:
            table.add_column("speedup", justify="right", no_wrap=True)
            table.add_column("gain", justify="right", no_wrap=True)
        table.add_column("memory", justify="right", no_wrap=True)
        if show_err:
            table.add_column("attn err", justify="right", no_wrap=True)
        show_status = any(not r.ok for r in group)
        if show_status:
            table.add_column("status")
        for r in group:
            speed, gain = ratios(r, ref)
            row = [
                r.accelerator,
                fmt_si(r.latency_s, "s"),
                fmt_num(r.inferences_per_s, 4),
                fmt_num(r.tops, 3),
                fmt_si(r.energy_per_inference_j, "J"),
                fmt_num(r.tops_per_w, 3),
                fmt_area(r).replace("(scaled)", "[yellow](scaled)[/yellow]"),
                fmt_num(r.tops_per_mm2, 3),
            ]
            if ref is not None:
                row += [fmt_ratio(speed), fmt_ratio(gain)]
            row.append(fmt_bytes(r.memory_bytes))
            if show_err:
                row.append("-" if r.attn_rel_error is None else f"{r.attn_rel_error:.2e}")
            if show_status:
                row.append(r.status if r.ok else f"[red]{r.status}[/red]: {r.error}")
            table.add_row(*row)
        console.print(table)
        for r in group:
            for note in r.notes:
                console.print(f"  [dim]{r.accelerator}: {note}[/dim]", highlight=False)
        if breakdown:
            render_breakdown(group, console)


def render_breakdown(group: Sequence[Result], console: Console) -> None:
    """Per-category share of latency and energy for each accelerator of one point."""
    table = Table(title="breakdown: share of latency / energy", title_justify="left",
                  header_style="bold", box=box.SIMPLE_HEAD, pad_edge=False)
    cats: list[str] = []
    for r in group:
        for c in summarise_by_category(r):
            if c not in cats:
                cats.append(c)
    if not any(r.ok and r.latency_s for r in group):
        return
    table.add_column("accelerator", no_wrap=True)
    for c in cats:
        table.add_column(c, justify="right", no_wrap=True)
    for r in group:
        if not r.ok or not r.latency_s:
            continue
        by = summarise_by_category(r)
        energy = r.energy_j or 0.0
        cells = []
        for c in cats:
            lat, en = by.get(c, (0.0, 0.0))
            cells.append(f"{lat / r.latency_s:.0%}/{en / energy:.0%}" if energy else f"{lat / r.latency_s:.0%}/-")
        table.add_row(r.accelerator, *cells)
    console.print(table)


def _rows(doc: RunDocument, baseline: str | None) -> list[dict[str, object]]:
    rows = []
    for _, group in _groups(doc.results):
        ref = _reference(group, baseline)
        for r in group:
            speed, gain = ratios(r, ref)
            d = r.to_dict()
            d["speedup"] = speed
            d["efficiency_gain"] = gain
            rows.append({k: d.get(k) for k in CSV_COLUMNS})
    return rows


def render_csv(doc: RunDocument, *, baseline: str | None) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in _rows(doc, baseline):
        writer.writerow({k: "" if v is None else v for k, v in row.items()})
    return buf.getvalue()


def render_markdown(doc: RunDocument, *, baseline: str | None) -> str:
    lines: list[str] = []
    for (workload, seq_len, batch), group in _groups(doc.results):
        ref = _reference(group, baseline)
        lines.append(f"### {workload}, seq_len {seq_len}, batch {batch}")
        lines.append("")
        head = ["accelerator", "latency", "inf/s", "TOPS", "energy/inf", "TOPS/W", "area", "TOPS/mm2"]
        if ref is not None:
            head += [f"speedup vs {baseline}", "TOPS/W gain"]
        head += ["memory", "attn err", "status"]
        lines.append("| " + " | ".join(head) + " |")
        lines.append("|" + "|".join("---" if i == 0 else "---:" for i in range(len(head) - 1)) + "|---|")
        for r in group:
            speed, gain = ratios(r, ref)
            cells = [f"`{r.accelerator}`", fmt_si(r.latency_s, "s"), fmt_num(r.inferences_per_s, 4),
                     fmt_num(r.tops), fmt_si(r.energy_per_inference_j, "J"), fmt_num(r.tops_per_w),
                     fmt_area(r), fmt_num(r.tops_per_mm2)]
            if ref is not None:
                cells += [fmt_ratio(speed), fmt_ratio(gain)]
            cells += [fmt_bytes(r.memory_bytes),
                      "-" if r.attn_rel_error is None else f"{r.attn_rel_error:.2e}",
                      r.status if r.ok else f"{r.status}: {r.error}"]
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
        notes = [f"- `{r.accelerator}`: {n}" for r in group for n in r.notes]
        if notes:
            lines += [*notes, ""]
    return "\n".join(lines)
