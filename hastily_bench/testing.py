"""Helpers for testing accelerator plugins (and hastily-bench itself).

A plugin's test suite usually needs three things: a host with only its plugin
loaded, a small graph to estimate, and checks that the numbers obey the
contract the harness enforces at run time (plus a few sanity checks it does
not). For example::

    from hastily_bench.testing import check_accelerator_spec, check_estimate, make_host
    import my_accel.plugin

    def test_my_accel():
        host = make_host(my_accel.plugin)
        spec = host.accelerator("my-accel").spec
        check_accelerator_spec(spec)
        check_estimate(spec)

The ``check_*`` functions raise :class:`AssertionError` listing every problem
found, so they read like any other failed assertion in a pytest report.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable

from .accelerator import AcceleratorSpec, Arithmetic, Estimate, OpCost
from .errors import PluginError, Unsupported
from .graph import MAX_SEQ_LEN, OpGraph, build_graph, op_graph
from .host import PluginHost
from .params import SOURCES, ParamSet
from .results import result_from_estimate, validate_estimate
from .workload import Workload

__all__ = [
    "LATENCY_RANGE_S",
    "MAX_ENERGY_J",
    "SWEEP_FACTORS",
    "check_accelerator_spec",
    "check_estimate",
    "make_host",
    "tiny_graph",
    "tiny_workload",
]

#: Plausible latency of one inference: above a picosecond, below eleven days.
LATENCY_RANGE_S = (1e-12, 1e6)
#: Energy of one inference above a megajoule is surely a unit mistake.
MAX_ENERGY_J = 1e6
#: :func:`check_estimate` also runs the graph's sequence length times these factors.
SWEEP_FACTORS = (1, 2, 4, 8)

_NAME_RE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
_PARAM_NAME_RE = re.compile(r"^[a-z][a-z0-9]*(?:_[a-z0-9]+)*$")
#: Parameter-name suffixes that promise a unit (the house style puts units in names).
UNIT_SUFFIXES = (
    "_s",
    "_ms",
    "_us",
    "_ns",
    "_ps",
    "_j",
    "_mj",
    "_uj",
    "_nj",
    "_pj",
    "_fj",
    "_w",
    "_mw",
    "_uw",
    "_hz",
    "_khz",
    "_mhz",
    "_ghz",
    "_mm2",
    "_um2",
    "_bytes",
    "_bits",
    "_kib",
    "_mib",
    "_gib",
    "_gbs",
    "_tops",
    "_tflops",
    "_v",
)


def make_host(
    *plugins: object,
    builtins: bool = False,
    autoload: bool = False,
    strict: bool = True,
) -> PluginHost:
    """A :class:`~hastily_bench.host.PluginHost` with exactly the plugins given.

    Parameters
    ----------
    *plugins
        Plugin modules or objects with ``@hookimpl`` functions. Each is registered
        under its ``__name__`` (module or class name), made unique with a
        ``-2``, ``-3``... suffix.
    builtins
        Also load the built-in plugins (the GPU family...). Off by default so a
        test sees only its own accelerators.
    autoload
        Also load installed third-party plugins from entry points. Off by default
        so the test does not depend on what else is installed.
    strict
        Raise :class:`~hastily_bench.errors.PluginError` when a plugin fails to
        load or has an invalid hook, instead of recording it as ``failed`` (the
        command line's default). On by default: in a test, a broken plugin
        should fail loudly.

    Returns
    -------
    PluginHost
        With the built-in workloads (``bert-base``...) registered.

    Raises
    ------
    ValueError
        The same object passed twice (pluggy registers an object once).
    PluginError
        With ``strict``, a plugin that fails to load; always, two plugins
        registering the same name.
    """
    named: list[tuple[str, object]] = []
    seen: dict[str, int] = {}
    if len({id(p) for p in plugins}) != len(plugins):
        raise ValueError("make_host: the same plugin object was passed twice")
    for plugin in plugins:
        base = str(getattr(plugin, "__name__", None) or type(plugin).__name__)
        seen[base] = seen.get(base, 0) + 1
        named.append((base if seen[base] == 1 else f"{base}-{seen[base]}", plugin))
    return PluginHost(
        autoload=autoload,
        strict=strict,
        builtins=None if builtins else {},
        extra_plugins=named,
    )


def tiny_workload() -> Workload:
    """A two-layer INT8 encoder (d = 64, 4 heads, FFN 256): cheap for every model.

    Returns
    -------
    Workload
        Named ``tiny``.
    """
    return Workload(
        name="tiny",
        layers=2,
        hidden=64,
        heads=4,
        ffn=256,
        precision="int8",
        description="two-layer toy encoder for plugin tests",
        source="hastily_bench.testing",
    )


def tiny_graph(seq_len: int = 16, batch: int = 1) -> OpGraph:
    """The op graph of :func:`tiny_workload` for ``batch`` sequences of ``seq_len`` tokens.

    Parameters
    ----------
    seq_len, batch
        The point; validated like the command line's ``-l`` and ``-b``.

    Returns
    -------
    OpGraph
    """
    return build_graph(tiny_workload(), seq_len, batch)


def _finite_nonneg(label: str, value: object, problems: list[str]) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        problems.append(f"{label} is {value!r}, not a number")
        return None
    v = float(value)
    if not math.isfinite(v) or v < 0:
        problems.append(f"{label} is {v!r}, must be finite and >= 0")
        return None
    return v


def _estimate_problems(est: object) -> list[str]:
    """Everything wrong with one estimate; ``[]`` when it is sane."""
    if not isinstance(est, Estimate):
        return [f"estimate returned {type(est).__name__}, not an Estimate"]
    problems: list[str] = []
    latency = _finite_nonneg("latency_s", est.latency_s, problems)
    energy = _finite_nonneg("energy_j", est.energy_j, problems)
    if latency is not None and not LATENCY_RANGE_S[0] <= latency <= LATENCY_RANGE_S[1]:
        problems.append(
            f"latency_s = {latency!r} is outside {LATENCY_RANGE_S[0]:g}..{LATENCY_RANGE_S[1]:g} s "
            "(seconds, not cycles or milliseconds?)"
        )
    if energy is not None and energy >= MAX_ENERGY_J:
        problems.append(f"energy_j = {energy!r} is over {MAX_ENERGY_J:g} J (joules, not pJ?)")
    if isinstance(est.memory_bytes, bool) or not isinstance(est.memory_bytes, int):
        problems.append(f"memory_bytes is {est.memory_bytes!r}, must be an int")
    elif est.memory_bytes < 0:
        problems.append(f"memory_bytes is {est.memory_bytes}, must be >= 0")
    if not est.breakdown:
        problems.append("breakdown is empty")
    for i, c in enumerate(est.breakdown):
        if not isinstance(c, OpCost):
            problems.append(f"breakdown[{i}] is {c!r}, not an OpCost")
            continue
        if not c.op or not isinstance(c.op, str):
            problems.append(f"breakdown[{i}] has no op name")
        _finite_nonneg(f"breakdown[{c.op!r}].latency_s", c.latency_s, problems)
        _finite_nonneg(f"breakdown[{c.op!r}].energy_j", c.energy_j, problems)
    if not problems:
        try:  # the harness's own contract: the same check as at run time
            validate_estimate(est)
        except PluginError as exc:
            problems.append(str(exc))
    return problems


def _fail(what: str, problems: Iterable[str]) -> None:
    items = list(problems)
    if items:
        raise AssertionError(f"{what}:\n  - " + "\n  - ".join(items))


def check_estimate(
    spec: AcceleratorSpec,
    graph: OpGraph | None = None,
    params: ParamSet | None = None,
) -> Estimate:
    """Run ``spec`` on ``graph`` and assert the estimate is sane.

    Checks, on ``graph`` and on the same workload at ``SWEEP_FACTORS`` times its
    sequence length:

    * the harness's contract: an :class:`~hastily_bench.accelerator.Estimate`
      whose numbers are finite and non-negative, latency > 0, ``memory_bytes``
      an ``int``, and a breakdown summing to the totals;
    * units: latency within :data:`LATENCY_RANGE_S`, energy below
      :data:`MAX_ENERGY_J`;
    * the derived metrics (TOPS, TOPS/W) can be computed;
    * latency does not fall as the sequence length grows;
    * every operation-level graph of ``hastily-bench op`` at the same point
      (:func:`op_level_graphs`) gives a sane estimate or ``Unsupported``.

    Points of the sweep beyond the first that raise
    :class:`~hastily_bench.errors.Unsupported` end the sweep (a model may have a
    capacity limit); on ``graph`` itself it propagates.

    Parameters
    ----------
    spec
        The accelerator under test.
    graph
        Default: :func:`tiny_graph`.
    params
        Default: ``spec.params``.

    Returns
    -------
    Estimate
        The estimate for ``graph``.

    Raises
    ------
    AssertionError
        Listing every problem found.
    Unsupported
        When the model refuses ``graph`` itself.
    """
    graph = graph or tiny_graph()
    params = spec.params if params is None else params
    est = spec.estimate(graph, params)
    _fail(
        f"{spec.name}: estimate for {graph.workload.name} l={graph.seq_len} b={graph.batch}",
        _estimate_problems(est),
    )
    assert isinstance(est, Estimate)
    try:
        result_from_estimate(
            est,
            workload=graph.workload.name,
            accelerator=spec.name,
            plugin="test",
            seq_len=graph.seq_len,
            batch=graph.batch,
            ops=graph.ops,
            arithmetic="",
            params=params.as_dict(),
            params_hash="",
        )
    except PluginError as exc:  # pragma: no cover - validate_estimate ran above
        raise AssertionError(f"{spec.name}: {exc}") from None

    problems: list[str] = []
    previous = (graph.seq_len, est.latency_s)
    for factor in SWEEP_FACTORS[1:]:
        seq_len = graph.seq_len * factor
        if seq_len > MAX_SEQ_LEN:
            break
        g = build_graph(graph.workload, seq_len, graph.batch)
        try:
            e = spec.estimate(g, params)
        except Unsupported:
            break
        sub = _estimate_problems(e)
        if sub:
            problems += [f"l={seq_len}: {p}" for p in sub]
            break
        assert isinstance(e, Estimate)
        if e.latency_s < previous[1]:
            problems.append(
                f"latency falls as the sequence grows: {previous[1]!r} s at l={previous[0]}, "
                f"{e.latency_s!r} s at l={seq_len}"
            )
        previous = (seq_len, e.latency_s)
    _fail(f"{spec.name}: sequence-length sweep of {graph.workload.name}", problems)
    _fail(f"{spec.name}: operation-level graphs of {graph.workload.name}",
          _op_level_problems(spec, graph, params))
    return est


def op_level_graphs(graph: OpGraph) -> list[tuple[str, OpGraph]]:
    """The operation-level graphs of ``hastily-bench op`` at ``graph``'s point, labelled."""
    w, L, B = graph.workload, graph.seq_len, graph.batch
    return [
        ("softmax", op_graph("softmax", w, seq_len=L, batch=B)),
        ("softmax --rows 1", op_graph("softmax", w, seq_len=L, batch=B, rows=1)),
        ("attention", op_graph("attention", w, seq_len=L, batch=B)),
        ("mvm -l 1", op_graph("mvm", w, seq_len=1, batch=1)),
        ("mvm", op_graph("mvm", w, seq_len=L, batch=B, rows=w.hidden, cols=w.ffn)),
    ]


def _op_level_problems(spec: AcceleratorSpec, graph: OpGraph, params: ParamSet) -> list[str]:
    problems: list[str] = []
    for label, g in op_level_graphs(graph):
        try:
            e = spec.estimate(g, params)
        except Unsupported:
            continue
        except Exception as exc:  # noqa: BLE001 - reported as a problem
            problems.append(f"op {label}: raised {type(exc).__name__}: {exc}")
            continue
        problems += [f"op {label}: {p}" for p in _estimate_problems(e)]
    return problems


def check_accelerator_spec(spec: AcceleratorSpec) -> None:
    """Assert that ``spec`` follows the conventions the harness and users rely on.

    * ``name`` is lowercase words joined by dashes (``systolic-128``), and
      ``description`` one non-empty line;
    * ``params`` is a :class:`~hastily_bench.params.ParamSet`; every parameter
      has a lower_snake_case name, a known ``source``, a string ``unit``, a
      non-empty ``unit`` when its name ends with a unit (``_s``, ``_j``,
      ``_hz``, ``_bytes``...), and a value its own bounds accept;
    * ``estimate`` is callable and ``arithmetic(params)`` returns an
      :class:`~hastily_bench.accelerator.Arithmetic`.

    Parameters
    ----------
    spec
        The accelerator under test.

    Raises
    ------
    AssertionError
        Listing every problem found.
    """
    if not isinstance(spec, AcceleratorSpec):
        raise AssertionError(f"{spec!r} is not an AcceleratorSpec")  # noqa: TRY004 - a test assertion
    problems: list[str] = []
    if not isinstance(spec.name, str) or not _NAME_RE.match(spec.name):
        problems.append(f"name {spec.name!r} must be lowercase words joined by dashes")
    if (
        not isinstance(spec.description, str)
        or not spec.description.strip()
        or "\n" in spec.description
    ):
        problems.append("description must be one non-empty line")
    if not isinstance(spec.default, bool):
        problems.append(f"default is {spec.default!r}, must be a bool")
    if not callable(spec.estimate):
        problems.append("estimate is not callable")
    if not isinstance(spec.params, ParamSet):
        problems.append(f"params is {type(spec.params).__name__}, not a ParamSet")
    else:
        for p in spec.params.values():
            if not _PARAM_NAME_RE.match(p.name):
                problems.append(f"parameter {p.name!r}: name must be lower_snake_case")
            if p.source not in SOURCES:
                problems.append(
                    f"parameter {p.name!r}: source {p.source!r} is not one of {sorted(SOURCES)}"
                )
            if not isinstance(p.unit, str):
                problems.append(f"parameter {p.name!r}: unit {p.unit!r} is not a string")
            elif (
                not p.unit
                and isinstance(p.value, (int, float))
                and not isinstance(p.value, bool)
                and p.name.endswith(UNIT_SUFFIXES)
            ):
                problems.append(f"parameter {p.name!r}: its name promises a unit but unit is empty")
            try:
                p.check(p.value)
            except Exception as exc:  # noqa: BLE001 - reported, not raised
                problems.append(f"parameter {p.name!r}: default value rejected ({exc})")
        try:
            arith = spec.arithmetic(spec.params)
        except Exception as exc:  # noqa: BLE001
            problems.append(f"arithmetic(params) raised {type(exc).__name__}: {exc}")
        else:
            if not isinstance(arith, Arithmetic):
                problems.append(f"arithmetic(params) returned {arith!r}, not an Arithmetic")
    _fail(f"accelerator spec {getattr(spec, 'name', spec)!r}", problems)
