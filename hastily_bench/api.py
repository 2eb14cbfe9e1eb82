"""The public API: everything the CLI does, callable without Typer or rich.

Plugin authors import from here only (the built-in plugins do too)::

    from hastily_bench.api import (AcceleratorSpec, Arithmetic, CostRules, Estimate,
                                   EstimateBuilder, MatMul, OpGraph, ParamSet, Role,
                                   Softmax, Unsupported, hookimpl, load_params)
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as _dt
import os
import platform
import subprocess
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from . import __version__
from .accelerator import (
    AcceleratorSpec,
    Arithmetic,
    ArithmeticFn,
    Estimate,
    EstimateFn,
    OpCost,
    fixed_arithmetic,
)
from .cim import (  # CIM component library (issue 10), see docs/cim-components.md
    ADC,
    DAC,
    VFU,
    CapacityReport,
    CellArray,
    Chip,
    Component,
    Core,
    ExpRoutine,
    KVMapping,
    Macro,
    MatrixMapping,
    MvmEnergy,
    OffChipMemory,
    RegisterFile,
    Router,
    SampleHold,
    SharedMemory,
    ShiftAdd,
    Tech,
    Tile,
    capacity,
    check_consumed,
    chip_capacity,
    example_preset_path,
    exp_table_max_rel_error,
    flatten_params,
    load_component_params,
    load_component_preset,
    map_kv,
    map_matrix,
    map_weights,
    survey_adc_area_mm2,
    survey_adc_energy_j,
)
from .costing import CostRules, EstimateBuilder, default_category
from .errors import (
    INTERRUPTS,
    HastilyError,
    PluginError,
    UnknownParameter,
    Unsupported,
    UsageError,
    exception_text,
)
from .graph import (
    CATEGORIES,
    GELU,
    OP_LEVEL_KINDS,
    OP_TYPES,
    DecoderShape,
    Dep,
    Elementwise,
    LayerNorm,
    Level,
    MatMul,
    Multiply,
    Op,
    OpGraph,
    Phase,
    ResidualAdd,
    RMSNorm,
    Role,
    Rotary,
    RowOp,
    SiLU,
    Softmax,
    build_graph,
    check_point,
    decoder_graph,
    op_graph,
)
from .hookspecs import hookimpl
from .host import PluginHost, PluginInfo, RegisteredAccelerator
from .params import Param, ParamSet, load_package_toml, load_params, load_toml, params_from_mapping
from .results import Result, RunDocument, failed_result, result_from_estimate
from .workload import Workload, load_workload_file

__all__ = [
    "AcceleratorSpec", "Arithmetic", "ArithmeticFn", "Estimate", "EstimateFn", "OpCost",
    "fixed_arithmetic", "HastilyError", "PluginError", "Unsupported", "UsageError",
    "CostRules", "EstimateBuilder", "default_category", "CATEGORIES", "OP_TYPES",
    "Op", "MatMul", "Role", "RowOp", "Softmax", "LayerNorm", "RMSNorm", "Elementwise", "GELU",
    "SiLU", "ResidualAdd", "Multiply", "Rotary", "Dep", "Phase", "Level", "DecoderShape",
    "OpGraph", "build_graph", "decoder_graph", "check_point", "hookimpl",
    "PluginHost", "PluginInfo", "Param", "ParamSet", "load_package_toml", "load_params", "load_toml",
    "params_from_mapping", "Result", "RunDocument", "Workload", "RunRequest", "run",
    "resolve_workload", "parse_overrides", "configured_accelerator", "estimate_point",
    "DEFAULT_SEQ_LENS", "NUMERICS_MODES", "metadata", "OP_LEVEL_KINDS", "op_graph", "run_op",
    "default_baseline", "load_workload_file",
    # CIM component library
    "ADC", "DAC", "VFU", "CapacityReport", "CellArray", "Chip", "Component", "Core", "ExpRoutine",
    "KVMapping", "Macro", "MatrixMapping", "MvmEnergy", "OffChipMemory", "RegisterFile", "Router", "SampleHold",
    "SharedMemory", "ShiftAdd", "Tech", "Tile", "capacity", "check_consumed", "chip_capacity",
    "example_preset_path", "exp_table_max_rel_error", "flatten_params", "load_component_params",
    "load_component_preset",
    "map_kv", "map_matrix", "map_weights", "survey_adc_area_mm2", "survey_adc_energy_j",
]

DEFAULT_SEQ_LENS: tuple[int, ...] = (128, 256, 512, 1024, 2048, 4096)
NUMERICS_MODES = ("off", "sample", "full")

ProgressFn = Callable[[int, int], None]


def resolve_workload(host: PluginHost, arg: str) -> Workload:
    """A registered workload name, or a path to a ``.toml`` / Hugging Face ``config.json``."""
    if arg in host.workload_names():
        return host.workload(arg)
    if arg.lower().endswith((".toml", ".json")) or os.sep in arg or Path(arg).exists():
        return load_workload_file(arg)
    return host.workload(arg)  # raises with a suggestion


def parse_overrides(host: PluginHost, items: Iterable[str]) -> dict[str, dict[str, str]]:
    """Parse ``NAME.PARAM=VALUE`` strings into ``{accelerator: {param: text}}``.

    Every accelerator and parameter named must exist; values are type-checked
    when applied (:func:`configured_accelerator`).
    """
    out: dict[str, dict[str, str]] = {}
    for item in items:
        target, sep, value = item.partition("=")
        accel, dot, param = target.partition(".")
        if not sep or not dot or not accel or not param:
            raise UsageError(f"--set {item!r}: expected ACCELERATOR.PARAM=VALUE")
        spec = host.accelerator(accel).spec
        p = spec.params[param]  # raises UsageError with a suggestion
        p.parse(value)  # type-check early, before any work is done
        out.setdefault(accel, {})[param] = value
    return out


def check_overrides_used(overrides: Mapping[str, object], accelerators: Iterable[str]) -> None:
    """Refuse ``--set`` for an accelerator the command does not run (a silent no-op otherwise)."""
    names = list(accelerators)
    for name in overrides:
        if name not in names:
            raise UsageError(f"--set names accelerator {name!r}, which is not part of this run "
                             f"({', '.join(names)})")


def configured_accelerator(
    host: PluginHost, name: str, overrides: Mapping[str, Mapping[str, str]] | None = None
) -> tuple[RegisteredAccelerator, ParamSet]:
    """The registered accelerator ``name`` and its parameters with overrides applied."""
    reg = host.accelerator(name)
    params = reg.spec.params
    for k, v in (overrides or {}).get(name, {}).items():
        params = params.override(k, v)
    check = reg.spec.check_params
    if check is not None:
        try:
            check(params)
        except UnknownParameter:
            pass  # the plugin looked up a name its own parameters lack: its row says so
        except UsageError as exc:
            raise UsageError(f"{name}: {exc}") from None
        except INTERRUPTS:
            raise
        except BaseException:  # noqa: BLE001, S110 - a plugin fault: estimate_point reports it in the row
            pass
    return reg, params


def _arithmetic_of(reg: RegisteredAccelerator, params: ParamSet) -> Arithmetic:
    arith = reg.spec.arithmetic(params)
    if not isinstance(arith, Arithmetic):
        raise PluginError(f"arithmetic() returned {arith!r}, not an Arithmetic")
    return arith


def arithmetic_label(reg: RegisteredAccelerator, params: ParamSet) -> str:
    """The accelerator's arithmetic as table text, or ``error: ...`` when the plugin fails."""
    try:
        return _arithmetic_of(reg, params).label()
    except INTERRUPTS:
        raise
    except BaseException as exc:  # a plugin fault: shown, never fatal
        return f"error: {_fault_text(exc)}"


#: Frames of a traceback with a RecursionError kept (see :func:`portable_traceback`).
RECURSION_FRAMES = 48


def portable_traceback(exc: BaseException) -> str:
    """``exc``'s traceback as Python prints it, each file named by its module
    (``hastily_bench/plugins/cim.py``, not the install's absolute path), so a row is the same
    bytes whichever machine, virtual environment, install mode or worker ran the point. A
    file of no loaded module is named from the ``sys.path`` entry that holds it, else in
    full."""
    import traceback

    modules = _module_files()
    roots = sorted({os.path.normcase(os.path.join(os.path.abspath(e), "")) for e in sys.path
                    if isinstance(e, str)}, key=len, reverse=True)
    # a recursion's depth depends on how deep the worker's stack already was: its frames are
    # cut to the first RECURSION_FRAMES (from the point down), which are the same everywhere
    chain: list[BaseException] = []
    e: BaseException | None = exc
    while e is not None and len(chain) < 64 and e not in chain:
        chain.append(e)
        e = e.__cause__ or e.__context__
    deep = any(isinstance(x, RecursionError) for x in chain)
    te = traceback.TracebackException.from_exception(exc, limit=RECURSION_FRAMES if deep else None)
    seen: set[int] = set()
    todo = [te]
    while todo:
        t = todo.pop()
        if id(t) in seen:
            continue
        seen.add(id(t))
        for frame in t.stack:
            name = frame.filename
            if not name or not os.path.isabs(name):
                continue  # "<string>", "<frozen os>", a relative name: the same everywhere
            key = os.path.normcase(name)
            if key in modules:
                frame.filename = modules[key]
                continue
            root = next((r for r in roots if key.startswith(r)), None)
            if root is not None:
                frame.filename = name[len(root):].replace(os.sep, "/")
        todo += [x for x in (t.__cause__, t.__context__, *(t.exceptions or ())) if x is not None]
    return "".join(te.format()).rstrip()


_module_files_memo: tuple[object, dict[str, str]] = (None, {})


def _module_files() -> dict[str, str]:
    """Each loaded module's source file (``os.path.normcase``), with the module's name as a
    path; kept while the modules stay the same in number and newest (a sweep with --debug
    formats many tracebacks)."""
    global _module_files_memo
    key, files = _module_files_memo
    now = (len(sys.modules), next(reversed(sys.modules.keys()), None))
    if key != now:
        files = {}
        for name, mod in list(sys.modules.items()):
            f = getattr(mod, "__file__", None)
            if isinstance(f, str) and f.endswith(".py"):
                tail = "/__init__.py" if os.path.basename(f) == "__init__.py" else ".py"
                files[os.path.normcase(os.path.abspath(f))] = name.replace(".", "/") + tail
        _module_files_memo = (now, files)
    return files


def _fault_text(exc: BaseException) -> str:
    text = exception_text(exc)
    if isinstance(exc, PluginError):
        return text
    return f"raised {type(exc).__name__}: {text}"


def estimate_point(
    reg: RegisteredAccelerator,
    params: ParamSet,
    graph: OpGraph,
    *,
    numerics: str = "off",
) -> Result:
    """Run one accelerator model on one graph; never raises for plugin faults.

    Whatever the plugin raises inside ``estimate`` or ``arithmetic`` (``SystemExit``
    and a :class:`UsageError` from its own parameter look-ups included), and any
    impossible number it returns, gives a result with status ``error`` naming the
    plugin; :class:`Unsupported` gives ``unsupported``. Only ``KeyboardInterrupt``
    propagates, so Ctrl-C still stops the run. With ``HASTILY_DEBUG=1`` the
    plugin's traceback is kept in the error text.
    """
    spec, info = reg.spec, reg.plugin
    common = dict(
        workload=graph.workload.name, accelerator=spec.name, plugin=info.name,
        seq_len=graph.seq_len, batch=graph.batch, ops=graph.ops,
        params=params.value_view(), params_hash=params.digest(f"{info.distribution}=={info.version}"),
        **point_hashes(graph),
    )
    try:
        if spec.check_params is not None:
            spec.check_params(params)
        arith = _arithmetic_of(reg, params)
        est = spec.estimate(graph, params)
        result = result_from_estimate(est, arithmetic=arith.label(), **common)  # type: ignore[arg-type]
    except Unsupported as exc:
        return failed_result(status="unsupported", error=str(exc), **common)  # type: ignore[arg-type]
    except INTERRUPTS as exc:
        if not _in_worker.get():
            raise
        # a sweep's worker ignores Ctrl-C and SIGTERM (its command handles them): what
        # raised this is the plugin, whose fault it is
        return _fault_result(info, exc, common)
    except BaseException as exc:  # noqa: BLE001 - a plugin fault stays in its row
        return _fault_result(info, exc, common)
    if numerics == "off":
        return result
    if arith.softmax == "lut" and arith.lut_entries != KERNEL_LUT_ENTRIES:
        # the kernels execute the paper's 128-entry table; another size is not measured
        return replace(result, notes=(*result.notes, (
            f"attention error not measured: the kernels execute a {KERNEL_LUT_ENTRIES}-entry "
            f"table, this arithmetic uses {arith.lut_entries} entries")))
    # The kernels are ours, not the plugin's: a failure here is a bug to raise.
    attn_err = measure_attention_error(arith, graph, mode=numerics)
    return replace(result, attn_rel_error=attn_err)


def _fault_result(info: PluginInfo, exc: BaseException, common: dict[str, Any]) -> Result:
    """The error row of a plugin fault (its traceback too, with --debug)."""
    sep = ": " if isinstance(exc, PluginError) else " "
    text = f"{info.label}{sep}{_fault_text(exc)}"
    if debug_enabled():
        text += "\n" + portable_traceback(exc)
    return failed_result(status="error", error=text, **common)


#: Inside :func:`as_sweep_worker`: a KeyboardInterrupt or SIGTERM's exit is the plugin's.
_in_worker: contextvars.ContextVar[bool] = contextvars.ContextVar("hastily_in_worker", default=False)


@contextlib.contextmanager
def as_sweep_worker(debug: bool | None = None) -> Iterator[None]:
    """Evaluate as a sweep's worker does: plugins' tracebacks kept exactly when ``debug``
    (:func:`debug_as`; None: as this process says, :func:`debug_enabled`). Where no Ctrl-C
    can arrive as an exception (a thread other than the main one, as in a Dask worker, or a
    process that ignores SIGINT, as a local worker does), a ``KeyboardInterrupt`` or
    ``Terminated`` is raised by the plugin: that point's error row. Elsewhere (a library
    user's own loop) it is the user's, and stops the run as usual."""
    import signal
    import threading

    only_plugins = (threading.current_thread() is not threading.main_thread()
                    or signal.getsignal(signal.SIGINT) is signal.SIG_IGN)
    token = _in_worker.set(only_plugins)
    try:
        with debug_as(debug_enabled() if debug is None else debug):
            yield
    finally:
        _in_worker.reset(token)


#: Entries of the table exponent the kernels execute (``hastily_bench.kernels.lut_exp``).
KERNEL_LUT_ENTRIES = 128


DEBUG_ENV = "HASTILY_DEBUG"
_debug = False


def set_debug(on: bool) -> None:
    """Keep plugins' tracebacks in error rows (the command line's ``--debug``)."""
    global _debug
    _debug = on


#: Set by :func:`debug_as` (per thread and task): overrides the flag and the environment.
_debug_as: contextvars.ContextVar[bool | None] = contextvars.ContextVar("hastily_debug_as", default=None)


def debug_enabled() -> bool:
    """``--debug`` was given, or ``HASTILY_DEBUG`` is set to a true value (1, true, yes, on);
    inside :func:`debug_as`, exactly what it was given."""
    forced = _debug_as.get()
    if forced is not None:
        return forced
    return _debug or os.environ.get(DEBUG_ENV, "").strip().lower() in ("1", "true", "yes", "on")


@contextlib.contextmanager
def debug_as(on: bool) -> Iterator[None]:
    """Keep plugins' tracebacks in error rows exactly when ``on``, whatever this process's
    flag and environment: a sweep's worker (a fork server's child, a Dask worker on
    another machine) writes the rows the command that started the sweep asked for."""
    token = _debug_as.set(on)
    try:
        yield
    finally:
        _debug_as.reset(token)


def default_baseline(host: PluginHost, accelerators: Sequence[str]) -> str | None:
    """The first of ``accelerators`` whose plugin declares it a comparison baseline."""
    for name in accelerators:
        try:
            if host.accelerator(name).spec.baseline:
                return name
        except UsageError:
            continue
    return None


def point_hashes(graph: OpGraph) -> dict[str, str]:
    """``shape_hash`` (workload shape, seq_len, batch) and ``ops_hash`` (op counts) of a point.

    ``compare`` refuses to compare two results whose hashes differ: a file that names
    ``bert-base`` but holds another shape, or whose op counts were edited, is not comparable.
    Computed once per graph (a graph is immutable; a sweep costs thousands of points on one).
    """
    cached = graph.__dict__.get("_point_hashes")
    if cached is None:
        cached = _point_hashes(graph)
        object.__setattr__(graph, "_point_hashes", cached)  # (frozen dataclass: not a field)
    return dict(cached)


def _point_hashes(graph: OpGraph) -> dict[str, str]:
    import hashlib
    import json

    shape = {k: v for k, v in graph.workload.to_dict().items() if k != "name"}
    shape.update(weight_layers=graph.workload.distinct_weight_layers, seq_len=graph.seq_len,
                 batch=graph.batch, phase=str(getattr(graph, "phase", "")),
                 context_len=getattr(graph, "context_len", 0))
    # a fixed list of count fields, so adding a field to Op does not change every hash
    fields = ("name", "kind", "instances", "m", "k", "n", "macs", "weight_bytes", "input_bytes",
              "output_bytes", "elements", "rows", "row_len")
    counts = {"layers": graph.workload.layers, "ops": graph.ops,
              "layer_ops": [[getattr(op, f, None) for f in fields] for op in graph.layer_ops]}

    def digest(obj: object) -> str:
        blob = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    return {"shape_hash": digest(shape), "ops_hash": digest(counts)}


def measure_attention_error(arith: Arithmetic, graph: OpGraph, *, mode: str) -> float:
    """Relative error of one attention layer computed with ``arith`` (see :mod:`hastily_bench.numerics`)."""
    from .numerics_cache import cached

    w = graph.workload

    def measure() -> float:
        from .numerics import attention_rel_error

        return attention_rel_error(
            matmul=arith.matmul, softmax=arith.softmax, residual=arith.exp_residual,
            heads=w.heads, seq_len=graph.seq_len, head_dim=w.head_dim, batch=graph.batch, mode=mode,
        )

    # deterministic seconds of kernel work: kept on disk, keyed by the code that measures
    key = ("attention_rel_error", arith.matmul, arith.softmax, arith.exp_residual, w.heads,
           graph.seq_len, w.head_dim, graph.batch, mode)
    return float(cached(key, measure))


def run_op(
    graph: OpGraph,
    accelerators: Sequence[str],
    *,
    host: PluginHost | None = None,
    overrides: Sequence[str] = (),
    command: Sequence[str] | None = None,
) -> RunDocument:
    """Estimate one operation graph (see :func:`op_graph`) on each accelerator."""
    host = host or PluginHost()
    names = list(dict.fromkeys(accelerators or host.default_accelerators()))
    parsed = parse_overrides(host, overrides)
    check_overrides_used(parsed, names)
    results = []
    for name in names:
        reg, params = configured_accelerator(host, name, parsed)
        results.append(estimate_point(reg, params, graph, numerics="off"))
    return RunDocument(results=tuple(results), metadata=metadata(host, numerics="off", command=command))


@dataclass(frozen=True)
class RunRequest:
    """Everything ``run`` needs; validated by :func:`run` before any work."""

    workloads: Sequence[str]
    accelerators: Sequence[str] = ()
    seq_lens: Sequence[int] = DEFAULT_SEQ_LENS
    batches: Sequence[int] = (1,)
    overrides: Sequence[str] = ()
    numerics: str = "sample"


def _git_dir(start: Path) -> Path | None:
    """The git directory of the checkout holding ``start`` (``.git``, or a worktree's gitdir)."""
    for d in (start, *start.parents):
        dot = d / ".git"
        if dot.is_dir():
            return dot
        if dot.is_file():  # a worktree or submodule: "gitdir: PATH"
            text = dot.read_text(encoding="utf-8").strip()
            if text.startswith("gitdir:"):
                g = Path(text[len("gitdir:"):].strip())
                return g if g.is_absolute() else (d / g).resolve()
            return None
    return None


def _read_head(git_dir: Path) -> str | None:
    """HEAD's commit read from the files git keeps (no subprocess); None when unsure."""
    head = (git_dir / "HEAD").read_text(encoding="utf-8").strip()
    if not head.startswith("ref:"):
        return head if len(head) >= 40 else None  # detached
    ref = head[4:].strip()
    common = git_dir
    if (git_dir / "commondir").is_file():
        common = (git_dir / (git_dir / "commondir").read_text(encoding="utf-8").strip()).resolve()
    for base in (git_dir, common):
        f = base / ref
        if f.is_file():
            sha = f.read_text(encoding="utf-8").strip()
            return sha if len(sha) >= 40 else None
    packed = common / "packed-refs"
    if packed.is_file():
        for line in packed.read_text(encoding="utf-8").splitlines():
            sha, _, name = line.partition(" ")
            if name == ref and len(sha) >= 40:
                return sha
    return None


def git_commit(cwd: Path | None = None) -> str | None:
    """The current git commit of ``cwd`` (short), or None outside a checkout.

    Read from ``.git`` directly (a ``git`` subprocess costs a visible share of a
    short run); ``git rev-parse`` only where the files say something unusual.
    """
    try:
        git_dir = _git_dir(Path(cwd or Path.cwd()).resolve())
        if git_dir is None:
            return None
        sha = _read_head(git_dir)
        if sha is not None:
            return sha[:12]
    except (OSError, UnicodeDecodeError):
        pass
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"], cwd=cwd, capture_output=True,
            text=True, timeout=5, check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def metadata(host: PluginHost, *, numerics: str, command: Sequence[str] | None = None) -> dict[str, object]:
    """Provenance of a run: everything that is not a result."""
    from .numerics_cache import cached

    def backend() -> str:
        from . import kernels  # NumPy and the compiled kernels: only when not cached

        return kernels.backend()

    return {
        "tool": "hastily-bench",
        "version": __version__,
        "created_utc": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "command": list(command if command is not None else sys.argv),
        "host": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "machine": platform.machine(),
            "cpu_count": os.cpu_count(),
        },
        "plugins": [
            {"name": p.name, "distribution": p.distribution, "version": p.version, "status": p.status}
            for p in host.plugins()
        ],
        "kernels_backend": str(cached(("kernels_backend",), backend, kind=str)),
        "numerics": numerics,
        "git_commit": git_commit(),
    }


def run(
    request: RunRequest,
    *,
    host: PluginHost | None = None,
    progress: ProgressFn | None = None,
    command: Sequence[str] | None = None,
) -> RunDocument:
    """Estimate every (workload, accelerator, seq_len, batch) point of ``request``.

    All inputs are validated first (unknown names, bad values, bad overrides raise
    :class:`UsageError` before any estimate runs). Results come in a fixed order:
    workload, sequence length, batch, accelerator, as given.
    """
    host = host or PluginHost()
    if not request.workloads:
        raise UsageError("no workload given")
    if request.numerics not in NUMERICS_MODES:
        raise UsageError(f"--numerics must be one of {', '.join(NUMERICS_MODES)}, got {request.numerics!r}")
    workloads: list[Workload] = []
    for arg in dict.fromkeys(request.workloads):
        w = resolve_workload(host, arg)
        for other in workloads:
            if other.name == w.name:
                raise UsageError(f"two workloads are named {w.name!r} ({arg!r} and another "
                                 "argument); results are keyed by name, so rename one")
        workloads.append(w)
    accel_names = list(dict.fromkeys(request.accelerators or host.default_accelerators()))
    if not accel_names:
        raise UsageError("no accelerator selected and no default accelerator is registered")
    for s in request.seq_lens:
        check_point(s, 1)
    for b in request.batches:
        check_point(1, b)
    overrides = parse_overrides(host, request.overrides)
    check_overrides_used(overrides, accel_names)
    configured = [configured_accelerator(host, n, overrides) for n in accel_names]

    points = [(w, s, b) for w in workloads for s in dict.fromkeys(request.seq_lens)
              for b in dict.fromkeys(request.batches)]
    if request.numerics == "full":  # (sample cases are capped; NumPy is not imported for them)
        from .numerics import check_case_size

        for w, s, b in points:  # before any work: a case too big for memory is the user's to fix
            try:
                check_case_size(heads=w.heads, seq_len=s, head_dim=w.head_dim, batch=b,
                                mode=request.numerics)
            except ValueError as exc:
                raise UsageError(f"{w.name} l={s} b={b}: {exc}") from None
    total = len(points) * len(configured)
    done = 0
    results: list[Result] = []
    for w, s, b in points:
        graph = build_graph(w, s, b)
        for reg, params in configured:
            results.append(estimate_point(reg, params, graph, numerics=request.numerics))
            done += 1
            if progress is not None:
                progress(done, total)
    return RunDocument(results=tuple(results),
                       metadata=metadata(host, numerics=request.numerics, command=command))
