"""The paper's figures, regenerated from a results document (needs ``hastily-bench[plot]``).

Every function takes a :class:`~hastily_bench.results.RunDocument` and draws only
what the document holds; :func:`draw_all` writes PNG and SVG files. Figures are
deterministic (fixed size, no timestamps in SVG metadata) so they can be
committed and checked for freshness.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path
from typing import Any

from . import io as hio
from .errors import UsageError
from .results import Result, RunDocument, summarise_by_category

FIGURES = ("speedup", "tops_per_w", "memory", "breakdown", "ablation")
ABLATION_PREFIX = "ablation: "


@dataclass(frozen=True)
class FigureConfig:
    """Which accelerators the figures compare: data (the claims file's ``[figures]``), not code.

    Parameters
    ----------
    subject
        The design under study (speedup figure: its speedup over each reference).
    references
        Accelerators the subject's speedup is drawn over, where the results hold them.
    compare
        Accelerators of the latency-breakdown figure.
    speedup_bands
        Published ranges shaded on the speedup figure: ``(low, high, label)``.
    ablation_seq_len
        Sequence length of the breakdown and ablation figures.
    """

    subject: str
    references: tuple[str, ...] = ()
    compare: tuple[str, ...] = ()
    speedup_bands: tuple[tuple[float, float, str], ...] = field(default=())
    ablation: str = ""
    ablation_seq_len: int = 1024

    @classmethod
    def from_mapping(cls, d: Mapping[str, Any], *, origin: str) -> FigureConfig:
        try:
            return cls(
                subject=str(d["subject"]),
                references=tuple(str(x) for x in d.get("references", ())),
                compare=tuple(str(x) for x in d.get("compare", ())),
                speedup_bands=tuple((float(b["low"]), float(b["high"]), str(b["label"]))
                                    for b in d.get("speedup_bands", ())),
                ablation=str(d.get("ablation", "")),
                ablation_seq_len=int(d.get("ablation_seq_len", 1024)),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise UsageError(f"{origin}: malformed [figures] table ({exc})") from None


def default_config() -> FigureConfig:
    """The figure configuration of the shipped claims file."""
    from .reproduce import load_figure_config

    return load_figure_config()


def _plt() -> Any:
    try:
        import matplotlib
    except ImportError:
        raise UsageError(
            "plots need matplotlib: pip install 'hastily-bench[plot]'"
        ) from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker as ticker

    plt.rcParams.update({"figure.dpi": 100, "savefig.dpi": 110, "font.size": 9,
                         "axes.grid": True, "grid.alpha": 0.3, "svg.hashsalt": "hastily-bench",
                         "axes.spines.top": False, "axes.spines.right": False})
    plt.plain_log_axes = lambda ax: _plain_log_axes(ax, ticker)  # type: ignore[attr-defined]
    return plt


def _plain_log_axes(ax: Any, ticker: Any) -> None:
    """Log axes labelled 128, 256... and 2, 5, 10 rather than 2^7 or 5 x 10^0."""
    ax.xaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    ax.yaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    ax.yaxis.set_minor_formatter(ticker.NullFormatter())


def _v(value: float | None) -> float:
    """A metric of an ``ok`` result (never None there)."""
    assert value is not None
    return float(value)


def _ok(doc: RunDocument, batch: int = 1) -> list[Result]:
    return [r for r in doc.results if r.ok and r.batch == batch
            and not r.accelerator.startswith(ABLATION_PREFIX)]


def _batch1_workloads(doc: RunDocument, figure: str) -> tuple[list[Result], list[str]]:
    """The ok batch-1 results and their workloads; a figure with none cannot be drawn."""
    results = _ok(doc)
    workloads = _workloads(results)
    if not workloads:
        raise UsageError(f"{figure} figure: no ok results at batch 1")
    return results, workloads


def _series(results: Sequence[Result], workload: str, accelerator: str) -> dict[int, Result]:
    return {r.seq_len: r for r in results if r.workload == workload and r.accelerator == accelerator}


def _workloads(results: Sequence[Result]) -> list[str]:
    return list(dict.fromkeys(r.workload for r in results))


def _log_axes(plt: Any, ax: Any, ylabel: str, title: str) -> None:
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("sequence length (tokens)")
    ax.set_ylabel(ylabel)
    plt.plain_log_axes(ax)
    ax.set_title(title)


def _lines_per_accelerator(plt: Any, ax: Any, results: Sequence[Result], workload: str,
                           value: Callable[[Result], float], ylabel: str, title: str) -> None:
    """One line per accelerator: ``value(result)`` against sequence length."""
    for acc in dict.fromkeys(r.accelerator for r in results if r.workload == workload):
        s = _series(results, workload, acc)
        ls = sorted(s)
        ax.plot(ls, [value(s[x]) for x in ls], marker="o", label=acc)
    _log_axes(plt, ax, ylabel, title)
    ax.legend(fontsize=7)


def speedup(doc: RunDocument, cfg: FigureConfig | None = None) -> Any:
    """Throughput speedup of the subject vs sequence length, over each reference."""
    plt = _plt()
    cfg = cfg or default_config()
    results = _ok(doc)
    workloads = [w for w in _workloads(results) if _series(results, w, cfg.subject)]
    if not workloads:
        raise UsageError(f"speedup figure: no {cfg.subject!r} results at batch 1")
    fig, axes = plt.subplots(1, len(workloads), figsize=(4.2 * len(workloads), 3.4), squeeze=False)
    refs = [a for a in cfg.references if any(r.accelerator == a for r in results)]
    colours = ("tab:blue", "tab:green", "tab:orange", "tab:red")
    for ax, w in zip(axes[0], workloads, strict=True):
        h = _series(results, w, cfg.subject)
        for ref in refs:
            s = _series(results, w, ref)
            ls = sorted(set(h) & set(s))
            ax.plot(ls, [_v(s[x].latency_s) / _v(h[x].latency_s) for x in ls], marker="o", label=f"over {ref}")
        _log_axes(plt, ax, f"{cfg.subject} speedup (x)", f"{w}, batch 1")
        for i, (low, high, label) in enumerate(cfg.speedup_bands):
            ax.axhspan(low, high, color=colours[i % len(colours)], alpha=0.08, label=label)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def tops_per_w(doc: RunDocument, cfg: FigureConfig | None = None) -> Any:
    """Energy efficiency per accelerator vs sequence length."""
    plt = _plt()
    results, workloads = _batch1_workloads(doc, "TOPS/W")
    fig, axes = plt.subplots(1, len(workloads), figsize=(4.2 * len(workloads), 3.4), squeeze=False)
    for ax, w in zip(axes[0], workloads, strict=True):
        _lines_per_accelerator(plt, ax, results, w, lambda r: _v(r.tops_per_w),
                               "energy efficiency (TOPS/W)", f"{w}, batch 1")
    fig.tight_layout()
    return fig


def memory(doc: RunDocument, cfg: FigureConfig | None = None) -> Any:
    """Working memory vs sequence length: quadratic for the baseline, linear for HASTILY."""
    plt = _plt()
    results, workloads = _batch1_workloads(doc, "memory")
    w = workloads[0]
    fig, ax = plt.subplots(figsize=(4.6, 3.4))
    _lines_per_accelerator(plt, ax, results, w, lambda r: _v(r.memory_bytes) / 2**20,
                           "attention + activation memory (MiB)", f"working memory, {w}, batch 1")
    fig.tight_layout()
    return fig


def breakdown(doc: RunDocument, cfg: FigureConfig | None = None) -> Any:
    """Latency by operation class (stacked bars) for the compared accelerators."""
    plt = _plt()
    cfg = cfg or default_config()
    seq_len = cfg.ablation_seq_len
    results = [r for r in _ok(doc) if r.seq_len == seq_len and r.accelerator in cfg.compare]
    if not results:
        raise UsageError(f"breakdown figure: no {' / '.join(cfg.compare)} results at l = {seq_len}")
    labels = [f"{r.accelerator}\n{r.workload}" for r in results]
    cats: list[str] = []
    for r in results:
        cats += [c for c in summarise_by_category(r) if c not in cats]
    fig, ax = plt.subplots(figsize=(1.3 * len(results) + 2.5, 3.6))
    bottom = [0.0] * len(results)
    for cat in cats:
        vals = [summarise_by_category(r).get(cat, (0.0, 0.0))[0] * 1e3 for r in results]
        ax.bar(labels, vals, bottom=bottom, label=cat)
        bottom = [b + v for b, v in zip(bottom, vals, strict=True)]
    ax.set_ylabel("latency (ms)")
    ax.set_title(f"latency by operation class, l = {seq_len}, batch 1")
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    return fig


def ablation(doc: RunDocument, cfg: FigureConfig | None = None) -> Any:
    """Throughput as the design's features are switched on one by one (its declared steps)."""
    plt = _plt()
    results = [r for r in doc.results if r.ok and r.accelerator.startswith(ABLATION_PREFIX)]
    if not results:
        raise UsageError("ablation figure: the results hold no 'ablation: ...' points "
                         "(they come from 'hastily-bench reproduce')")
    by_w: dict[str, list[Result]] = defaultdict(list)
    for r in results:
        by_w[r.workload].append(r)
    fig, ax = plt.subplots(figsize=(5.6, 3.4))
    width = 0.8 / len(by_w)
    for i, (w, rs) in enumerate(by_w.items()):
        xs = [j + i * width for j in range(len(rs))]
        ax.bar(xs, [r.tops for r in rs], width=width, label=f"{w}, l = {rs[0].seq_len}")
    steps = [r.accelerator[len(ABLATION_PREFIX):].replace(" ", "\n", 1)
             for r in next(iter(by_w.values()))]
    ax.set_xticks([j + width * (len(by_w) - 1) / 2 for j in range(len(steps))], steps, fontsize=8)
    ax.set_ylabel("throughput (TOPS)")
    ax.set_title(f"ablation: {steps[0].splitlines()[0]} to {(cfg or default_config()).ablation or 'full design'}")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


DRAWERS: dict[str, Callable[[RunDocument, FigureConfig | None], Any]] = {
    "speedup": speedup, "tops_per_w": tops_per_w, "memory": memory,
    "breakdown": breakdown, "ablation": ablation,
}


def draw_all(doc: RunDocument, directory: Path | str, *,
             names: Sequence[str] = FIGURES, formats: Sequence[str] = ("png", "svg"),
             skipped: list[str] | None = None, config: FigureConfig | None = None) -> list[Path]:
    """Draw the named figures into ``directory`` (created if missing); return the files.

    Every figure is drawn in memory before anything is written. With ``skipped`` (a
    list), figures the document has no data for are left out and their reasons appended
    to it; without it, a missing figure is an error.
    """
    plt = _plt()
    out_dir = Path(directory)
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(f"{out_dir}: exists and is not a directory")
    for name in names:
        if name not in DRAWERS:
            raise UsageError(f"unknown figure {name!r}; choose from {', '.join(FIGURES)}")
    figures = []
    for name in names:
        try:
            figures.append((name, DRAWERS[name](doc, config)))
        except UsageError as exc:
            if skipped is None:
                for _, f in figures:
                    plt.close(f)
                raise
            skipped.append(str(exc))
    if not figures:
        raise UsageError("no figure can be drawn from these results: " + "; ".join(skipped or []))
    return _write_figures(plt, figures, out_dir, formats)


def _write_figures(plt: Any, figures: Sequence[tuple[str, Any]], out_dir: Path,
                   formats: Sequence[str]) -> list[Path]:
    """Render every figure in memory, check every destination, then write (through io)."""
    rendered: list[tuple[Path, bytes]] = []
    try:
        for name, fig in figures:
            for fmt in formats:
                buf = BytesIO()
                fig.savefig(buf, format=fmt,
                            metadata={"Date": None} if fmt == "svg" else {"Software": None})
                rendered.append((out_dir / f"{name}.{fmt}", buf.getvalue()))
    finally:
        for _, fig in figures:
            plt.close(fig)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"{out_dir}: cannot create the directory ({exc.strerror})") from None
    dests = [(hio.output(path, option="plot file"), data) for path, data in rendered]
    for dest, data in dests:
        hio.write_output(dest, data)
    return [dest.path for dest, _ in dests]


# -- sweeps ---------------------------------------------------------------------------

SWEEP_FIGURE = "pareto"
#: Panels of one sweep figure at most (one per workload, length and batch).
SWEEP_MAX_PANELS = 6


def _log_fits(values: Sequence[float]) -> bool:
    """Log axes when every value is positive and they span more than a decade."""
    return bool(values) and min(values) > 0 and max(values) / min(values) > 10


def sweep_figure(summary: dict[str, Any], rows: Any) -> Any:
    """Every feasible point of a sweep (grey) and its Pareto front (coloured), per group.

    ``rows`` iterates the sweep's result rows; only two or three numbers per row
    are kept, so a million-row sweep fits in memory.
    """
    from .sweep.pareto import metric_of, parse_constraint, parse_objective

    objectives = [parse_objective(o) for o in summary.get("objectives", [])]
    if len(objectives) < 2:
        raise UsageError("the Pareto figure needs at least two objectives")
    constraints = [parse_constraint(c) for c in summary.get("constraints", [])]
    xs, ys = objectives[0], objectives[1]
    cloud: dict[tuple[str, int, int], tuple[list[float], list[float]]] = defaultdict(lambda: ([], []))
    for row in rows:
        if row.get("status") != "ok":
            continue
        vals = [metric_of(row, c.metric) for c in constraints]
        if any(v is None or not c.holds(v) for c, v in zip(constraints, vals, strict=True)):
            continue
        x, y = metric_of(row, xs.metric), metric_of(row, ys.metric)
        if x is None or y is None:
            continue
        pts = cloud[(row["workload"], row["seq_len"], row["batch"])]
        pts[0].append(x)
        pts[1].append(y)
    front: dict[tuple[str, int, int], list[dict[str, Any]]] = defaultdict(list)
    for p in summary.get("front", []):
        front[(p["workload"], p["seq_len"], p["batch"])].append(p)
    groups = list(dict.fromkeys([*front, *cloud]))[:SWEEP_MAX_PANELS]
    if not groups:
        raise UsageError("the sweep has no feasible ok point to draw")
    plt = _plt()
    ncols = min(3, len(groups))
    nrows = -(-len(groups) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(5.2 * ncols, 4.2 * nrows), squeeze=False)
    colour_obj = objectives[2] if len(objectives) > 2 else None
    for ax, g in zip(axes.flat, groups, strict=False):
        cx, cy = cloud.get(g, ([], []))
        ax.scatter(cx, cy, s=4, c="0.75", linewidths=0, label=f"feasible designs ({len(cx):,})",
                   rasterized=len(cx) > 2000)
        fp = sorted(front.get(g, []), key=lambda p: p["objectives"][str(xs)])
        fx = [p["objectives"][str(xs)] for p in fp]
        fy = [p["objectives"][str(ys)] for p in fp]
        if colour_obj is not None and fp:
            fc = [p["objectives"][str(colour_obj)] for p in fp]
            sc = ax.scatter(fx, fy, s=22, c=fc, cmap="viridis", edgecolors="black", linewidths=0.5,
                            zorder=3, label=f"Pareto front ({len(fp)})")
            fig.colorbar(sc, ax=ax, label=f"{colour_obj.metric} ({'higher' if colour_obj.maximise else 'lower'} is better)")
        else:
            ax.plot(fx, fy, "o-", ms=4, color="C3", zorder=3, label=f"Pareto front ({len(fp)})")
        ax.set_xlabel(f"{xs.metric} ({'higher' if xs.maximise else 'lower'} is better)")
        ax.set_ylabel(f"{ys.metric} ({'higher' if ys.maximise else 'lower'} is better)")
        logx, logy = _log_fits([*cx, *fx]), _log_fits([*cy, *fy])
        if logx:
            ax.set_xscale("log")
        if logy:
            ax.set_yscale("log")
        if logx or logy:
            plt.plain_log_axes(ax)
            import matplotlib.ticker as ticker

            ax.xaxis.set_minor_formatter(ticker.NullFormatter())
        w, s, b = g
        ax.set_title(f"{w} · l={s} · b={b}")
        ax.legend(loc="best", fontsize=7)
    for ax in list(axes.flat)[len(groups):]:
        ax.set_visible(False)
    cons = f"; constraints: {', '.join(str(c) for c in constraints)}" if constraints else ""
    fig.suptitle(f"design-space sweep: {summary.get('done', 0):,} points{cons}", fontsize=10)
    fig.tight_layout()
    return fig


def sweep_figure_outputs(directory: Path, *, option: str,
                         formats: Sequence[str] = ("png", "svg")) -> list[hio.Output]:
    """The files :func:`draw_sweep` writes into ``directory``, checked as outputs (so that a
    command can refuse one that is also its rows, its summary or an input, before any work).
    A directory still to be created holds no file to collide with."""
    if not directory.is_dir():
        return []
    return [hio.output(directory / f"{SWEEP_FIGURE}.{fmt}", option=option) for fmt in formats]


def draw_sweep(summary_file: Path | str, directory: Path | str,
               formats: Sequence[str] = ("png", "svg")) -> list[Path]:
    """Draw ``pareto.png`` / ``.svg`` of a saved sweep (its summary or its ``.jsonl``)."""
    from .sweep.runner import load_summary, read_rows, summary_path

    src = Path(summary_file)
    summary = load_summary(src)
    rows_path = src if src.suffix == ".jsonl" else src.with_name(str(summary.get("rows", "")))
    if src.suffix != ".jsonl" and not rows_path.is_file():
        raise UsageError(f"{summary_path(rows_path)}: its rows file {rows_path} is missing")
    out_dir = Path(directory)
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(f"{out_dir}: exists and is not a directory")
    plt = _plt()
    fig = sweep_figure(summary, read_rows(rows_path))
    return _write_figures(plt, [(SWEEP_FIGURE, fig)], out_dir, formats)
