"""CIM models: HASTILY (UCLM arrays with a table-lookup exponent) and the baseline CIM.

One cost model over the CIM component library (:mod:`hastily_bench.cim`; every
component's formula and source in ``docs/cim-components.md``), with three switches:
``lut_exp``, ``multicore_softmax`` and ``schedule``. ``hastily`` has the features
on and the pipeline schedule; ``baseline-cim`` is the same chip with them off and the
matrix schedule, so switching them one by one walks from one to the other.

Mapping (``map_model``)
    Every weight matrix is cut into ``rows x cols`` blocks of ``weight_bits`` / cell
    bits slices (:func:`~hastily_bench.cim.map_matrix`); K^T and V of
    ``schedule.kv_layers`` layers are written into arrays like weights
    (:func:`~hastily_bench.cim.map_kv`). What does not fit follows the ``capacity``
    policy: ``stream`` (weights that do not fit are written from off-chip memory every
    inference, at its bandwidth and energy), ``scale`` (the chip grows by tiles, up to
    one reticle, and the result says so) or ``unsupported``.

Per-op costs (cost rules, one per op type and role)
    Each op of one layer gets a :class:`Stage`: per token, how long its busiest
    resource is held (``occupancy_s``), extra fill latency (``fill_s``: reduction trees),
    and its energy. Weight products: one MVM per block per token
    (``T_MVM = front + steps x max(front, convert) + shift-add`` from the macro), row
    blocks' partial sums added on the VFU of each core and then in a tree across cores.
    Attention products: the same on the K^T / V arrays, plus the row writes of each new
    key and value; in the pipeline the score row's lookups borrow the K^T arrays.

Softmax, mapped explicitly (``softmax_mapping``)
    A score row of one head is produced by the K^T arrays of that head, which lie in
    ``row_cores`` cores (``ceil(L / cols)`` column blocks, ``macros_per_core`` per core).
    With ``multicore_softmax`` each of those cores works on the scores it produced
    (at most ``cols x macros_per_core`` of them) and the partial maxima and sums meet in
    binary trees (reduce and broadcast, ``log2(row_cores)`` hops each way); without it,
    the row is streamed to one core. Per 16-element chunk the VFU does max, subtract,
    the exponent, sum and the normalising multiply; with ``lut_exp`` the exponent is
    the fixed-point table routine plus one lookup per element in the core's arrays
    (``lanes`` lookups in parallel, ``lookup_cycles`` each), otherwise the VFU's
    polynomial routine. The pipeline keeps one row per head in flight (heads in
    parallel); the matrix schedule stores every score (``score_bytes``, in the tiles'
    shared memories, the excess off chip) and deals the rows to the chip's cores.

Schedules (:data:`SCHEDULES`, strategies)
    ``pipeline``: tokens stream through the ops between the graph's barriers
    (:meth:`~hastily_bench.api.OpGraph.stream_segments`): per segment
    ``(tokens - 1) x max(occupancy) + sum(occupancy + fill)``; with the Q/K/V barrier
    this is where the paper's ``(N + 1) x l x T_MVM`` comes from. ``matrix``: each op
    runs over all tokens before the next starts.

Energy: per-event energies of the components plus the chip's leakage (sum over the
components of the chip in use) over the latency.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, ClassVar, Generic, TypeVar

from hastily_bench.api import (
    GELU,
    AcceleratorSpec,
    Arithmetic,
    Chip,
    Component,
    CostRules,
    Estimate,
    EstimateBuilder,
    ExpRoutine,
    KVMapping,
    LayerNorm,
    Level,
    MatMul,
    MatrixMapping,
    MvmEnergy,
    OpGraph,
    ParamSet,
    Role,
    Router,
    SharedMemory,
    Softmax,
    Unsupported,
    UsageError,
    check_consumed,
    exp_table_max_rel_error,
    hookimpl,
    load_component_params,
    load_package_toml,
    map_kv,
    map_matrix,
)

T = TypeVar("T")
C = TypeVar("C", bound=Component)

PRESETS = "cim.toml"
#: Parameters the model reads besides the chip's components.
MODEL_KEYS = frozenset({
    "lut_exp", "multicore_softmax", "schedule", "capacity", "max_area_mm2", "input_bits",
    "weight_bits", "score_bytes", "layernorm_vfu_ops", "gelu_vfu_ops", "paper_area_mm2", "softmax_cores_per_row", "power_gating",
})


GLOBAL_BUFFER_KEYS = SharedMemory.param_keys("global_buffer")


@lru_cache(maxsize=1)
def _all_keys() -> frozenset[str]:
    """Every parameter name the model and its chip read."""
    return frozenset(Chip.param_keys() | MODEL_KEYS | GLOBAL_BUFFER_KEYS)


@lru_cache(maxsize=1)
def presets() -> dict[str, Any]:
    """The parsed ``cim.toml``: ``{"params": {...}, "accelerators": {...}}``."""
    return load_package_toml("hastily_bench.plugins", PRESETS)


def preset_params(name: str) -> ParamSet:
    """Parameters of preset ``name`` (``hastily`` or ``baseline-cim``)."""
    doc = presets()
    params = load_component_params(doc["params"], PRESETS,
                                   consumers=[Chip.param_keys(), MODEL_KEYS, GLOBAL_BUFFER_KEYS])
    overrides: Mapping[str, Any] = doc["accelerators"][name].get("overrides", {})
    return params.with_values(dict(overrides), source="assumed") if overrides else params


def check_params(p: ParamSet) -> None:
    """Combinations the model refuses, before any work (one line each)."""
    if p.names() != _all_keys():  # (a set comparison: the common case costs one look)
        check_consumed(p, [_all_keys()], origin="parameters")
    chip(p)  # the components validate themselves
    if p.b("lut_exp") and p.i("array_lut_entries") == 0:
        raise UsageError("lut_exp=true needs a lookup table in the arrays (array_lut_entries > 0)")


class _KeyedCache(Generic[T]):
    """A bounded memo keyed by parameter values (emptied when full: sweeps move on)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._values: dict[tuple[object, ...], T] = {}

    def get(self, key: tuple[object, ...], make: Callable[[], T]) -> T:
        """The value kept for ``key``, or ``make()`` kept for it."""
        v = self._values.get(key)
        if v is None:
            if len(self._values) >= self.size:
                self._values.clear()
            v = self._values[key] = make()
        return v

    def clear(self) -> None:
        self._values.clear()


_CHIP_KEYS = tuple(sorted(Chip.param_keys()))
_chips: _KeyedCache[Chip] = _KeyedCache(4096)
#: Each component class with the names it reads (a component is kept on their values).
_PART_KEYS: dict[type[Component], tuple[str, ...]] = {
    k: tuple(sorted(k.param_keys())) for k in Chip.COMPONENTS}
_parts: _KeyedCache[Component] = _KeyedCache(4096)
#: Where each component's names lie in ``_CHIP_KEYS``.
_PART_PLACES: dict[type[Component], tuple[int, ...]] = {
    k: tuple(_CHIP_KEYS.index(n) for n in names) for k, names in _PART_KEYS.items()}


def chip(p: ParamSet) -> Chip:
    """The chip described by ``p``, shared by every parameter set with the same chip
    parameters (a sweep over the model's own parameters, lengths or workloads builds it
    once)."""
    global _last_chip
    ckey = p.values_of(_CHIP_KEYS)  # (the same tuple for the same set: kept by values_of)
    last = _last_chip  # (one read: another thread may replace it meanwhile)
    if ckey is last[0] and last[1] is not None:  # check_params and the estimate ask for the same chip
        return last[1]
    c = _chips.get(ckey, lambda: _build_chip(p, ckey))
    _last_chip = (ckey, c)
    return c


_last_chip: tuple[object, Chip | None] = (None, None)


def _build_chip(p: ParamSet, ckey: tuple[object, ...]) -> Chip:
    """A new chip of shared components: a sweep axis changes few of them (an ADC is the
    same whatever the clock or the VFU), and a component keeps what it computed once.
    ``ckey`` holds the values of ``_CHIP_KEYS``: a component's key is picked from it."""
    def part(k: type[C]) -> C:
        return _parts.get((k, *[ckey[i] for i in _PART_PLACES[k]]), lambda: k.from_params(p))  # type: ignore[attr-defined, return-value]
    return Chip.from_params(p, part=part)


def _ceil(a: float, b: float) -> int:
    return math.ceil(a / b)


# --- schedules (strategies) ----------------------------------------------------------------

@dataclass(frozen=True)
class Schedule(abc.ABC):
    """How ops share the chip in time. A new schedule is a subclass plus a preset choice."""

    name: ClassVar[str] = ""
    #: Layers of K^T and V held in arrays at once.
    kv_layers: ClassVar[int] = 1
    #: Table lookups borrow the arrays that compute MVMs for the next tokens.
    lookups_borrow_arrays: ClassVar[bool] = False

    @abc.abstractmethod
    def latencies(self, graph: OpGraph, stages: Mapping[str, Stage]) -> dict[str, float]:
        """Latency attributed to each op (by label), summed over the layers. ``stages``
        are read-only: most are shared by the design points that agree on what fixes them."""

    @abc.abstractmethod
    def memory_bytes(self, graph: OpGraph, p: ParamSet) -> int:
        """Working memory for activations and attention intermediates (peak)."""

    @abc.abstractmethod
    def softmax_stage(self, op: Softmax, sm: SoftmaxMapping, ctx: _Ctx, stage: Stage) -> Stage:
        """Time the softmax ``op`` (its energy and facts are in ``stage``): how many rows run
        at once and where the scores live are the schedule's."""

    def score_traffic_j(self, op: MatMul, softmax: Softmax, ctx: _Ctx) -> float:
        """Energy of storing what an attention product writes (and reading it back); 0 when
        scores stay in flight."""
        return 0.0


@dataclass(frozen=True)
class PipelineSchedule(Schedule):
    """Token-by-token pipeline across layers; barriers come from the graph."""

    name: ClassVar[str] = "pipeline"
    kv_layers: ClassVar[int] = 2  # this layer's K/V in use while the next layer's are written
    lookups_borrow_arrays: ClassVar[bool] = True

    def latencies(self, graph: OpGraph, stages: Mapping[str, Stage]) -> dict[str, float]:
        out = dict.fromkeys(stages, 0.0)
        tokens = graph.tokens
        for names, repeat in graph.stream_segment_names:
            occ = {n: stages[n].occupancy_s for n in names}
            stage = max(occ.values())
            # the first token walks the whole chain; the others follow one stage apart
            stream = (tokens - 1) * stage
            total = sum(occ.values()) or 1.0
            for n in names:
                out[n] += repeat * (stream * occ[n] / total + occ[n] + stages[n].fill_s)
        return out

    def memory_bytes(self, graph: OpGraph, p: ParamSet) -> int:
        w = graph.workload
        B, L, d, h, elem = graph.batch, graph.seq_len, w.hidden, w.heads, w.bytes_per_element
        # K and V of two layers in arrays, one score row per head in flight, the layer
        # input, and one token's FFN intermediate
        return (2 * 2 * B * L * d * elem + B * h * L * p.i("score_bytes") + B * L * d * elem
                + B * w.ffn * elem)

    def softmax_stage(self, op: Softmax, sm: SoftmaxMapping, ctx: _Ctx, stage: Stage) -> Stage:
        # one row per head per token, the heads' rows on their own cores at the same time
        stage.occupancy_s = max(sm.compute_s, sm.gather_s)
        stage.fill_s = sm.reduce_s
        if ctx.graph.level is Level.OP:
            # an op-level study of `rows` rows: the heads' rows in parallel, rounds one stage apart
            at_once = min(op.rows, ctx.graph.workload.heads)
            stage.whole_s = (_ceil(op.rows, at_once) - 1) * stage.occupancy_s + sm.row_s
        return stage


@dataclass(frozen=True)
class MatrixSchedule(Schedule):
    """Op by op over all tokens; the whole Q K^T of a layer is stored."""

    name: ClassVar[str] = "matrix"
    kv_layers: ClassVar[int] = 1

    def latencies(self, graph: OpGraph, stages: Mapping[str, Stage]) -> dict[str, float]:
        return {n: graph.layers * (s.whole_s if s.whole_s is not None
                                   else graph.tokens * s.occupancy_s + s.fill_s)
                for n, s in stages.items()}

    def memory_bytes(self, graph: OpGraph, p: ParamSet) -> int:
        w = graph.workload
        B, L, d, h, elem = graph.batch, graph.seq_len, w.hidden, w.heads, w.bytes_per_element
        # one layer: Q, K, V, all scores and probabilities, FFN intermediate
        return B * (3 * L * d * elem + h * L * L * (p.i("score_bytes") + elem) + L * w.ffn * elem)

    def score_traffic_j(self, op: MatMul, softmax: Softmax, ctx: _Ctx) -> float:
        width = ctx.p.i("score_bytes") if op.role is Role.SCORES else ctx.graph.workload.bytes_per_element
        return _store_energy(softmax.elements * width, ctx)

    def softmax_stage(self, op: Softmax, sm: SoftmaxMapping, ctx: _Ctx, stage: Stage) -> Stage:
        # every row stored; rows dealt to the chip's cores, `spread` cores per row
        c, p, g = ctx.chip, ctx.p, ctx.graph
        total, onchip = score_storage(g, p, ctx.mapping.base_chip)
        offchip = total - onchip
        t_spill = 2 * c.offchip.transfer_s(offchip) if offchip else 0.0
        mem = c.tile.shared_memory
        per_row_bytes = op.row_len * (p.i("score_bytes") + g.workload.bytes_per_element)
        t_mem_row = 2 * mem.transfer_s(per_row_bytes)  # read scores twice, write probabilities
        row = max(sm.compute_s, sm.gather_s, t_mem_row) + sm.reduce_s
        # the part held in the global buffer streams through its ports, shared by every core
        in_gb = max(0, onchip - ctx.mapping.base_chip.tiles * mem.bytes_)
        t_gb = 2 * global_buffer(p).transfer_s(in_gb) if in_gb else 0.0
        stage.occupancy_s, stage.fill_s = row, 0.0
        stage.whole_s = max(_ceil(op.rows, sm.rows_at_once) * row, t_gb) + t_spill
        stage.facts.update(scores_bytes=total, scores_offchip_bytes=offchip,
                           scores_stream_s=t_gb + t_spill, softmax_memory_row_s=t_mem_row)
        return stage


#: The schedules by preset name; the ``schedule`` parameter chooses one.
SCHEDULES: dict[str, Schedule] = {s.name: s for s in (PipelineSchedule(), MatrixSchedule())}


def schedule_of(p: ParamSet) -> Schedule:
    name = p.s("schedule")
    try:
        return SCHEDULES[name]
    except KeyError:
        raise UsageError(f"schedule {name!r} is not one of {', '.join(SCHEDULES)}") from None


# --- mapping and capacity ----------------------------------------------------------------------

@dataclass(frozen=True)
class ModelMapping:
    """Where the model lies on the chip, and what the capacity policy did."""

    chip: Chip  # the chip in use (scaled when the policy scaled it)
    base_chip: Chip
    weight_macros: int  # every layer's distinct weights
    kv_macros: int
    layer_macros: int  # one layer's weights and K/V
    streamed_weight_bytes: int  # written from off chip every inference
    policy: str

    @property
    def required_macros(self) -> int:
        return self.weight_macros + self.kv_macros

    @property
    def scaled(self) -> bool:
        return self.chip.tiles != self.base_chip.tiles


#: What :func:`map_model` reads of the parameters besides the chip's.
_MAPPING_KEYS = ("weight_bits", "input_bits", "capacity", "max_area_mm2")
_mappings: _KeyedCache[tuple[ModelMapping, dict[object, Any]]] = _KeyedCache(4096)


def clear_caches() -> None:
    """Forget every memoised chip, buffer and mapping (tests; a long process that wants memory back)."""
    for cache in (_chips, _parts, _buffers, _mappings, _counts, _arithmetics):
        cache.clear()
    global _last_chip
    _last_chip = (None, None)


def map_model(graph: OpGraph, p: ParamSet, c: Chip, sched: Schedule) -> ModelMapping:
    """Place the model the graph belongs to (``graph.model``) on the chip.

    Op-level graphs run on the chip that holds their model; a weight product of an
    op-level graph that is not part of the model (``op mvm``) is placed in addition.
    """
    model = graph.model
    a = c.array
    # the counts depend on the arrays' shape and the bit widths only: shared by the chips
    # that differ elsewhere (ADCs, clock, VFU)
    key = (graph, a.rows, a.cols, a.cell_bits, c.macro.arrays, p.i("weight_bits"), p.i("input_bits"),
           sched.kv_layers)
    per_layer, kv, kv_macros, weight_macros = _counts.get(key, lambda: _model_counts(graph, p, c, sched))
    required = weight_macros + kv_macros
    policy = p.s("capacity")
    streamed = 0
    used = c
    if required > c.macros:
        tiles = c.tiles_for(required)
        short = (f"needs {required} macros (weights {weight_macros}, K/V {kv_macros}), "
                 f"the chip has {c.macros} ({c.tiles} tiles)")
        if policy == "unsupported" or (policy == "stream" and kv_macros > c.macros):
            what = "K/V arrays alone exceed the chip; " if kv_macros > c.macros else ""
            raise Unsupported(f"{what}{short}; capacity={policy} (try capacity=scale)")
        if policy == "scale":
            used = c.with_tiles(tiles)
            if used.area_mm2 > p.f("max_area_mm2"):
                raise Unsupported(f"{short}; scaled to {tiles} tiles the chip would be "
                                  f"{used.area_mm2:.0f} mm2, over max_area_mm2 "
                                  f"({p.f('max_area_mm2'):.0f} mm2, one reticle)")
        else:  # stream: the weights that do not fit are written every inference
            resident = max(0, c.macros - kv_macros) / weight_macros
            distinct_bytes = model.weight_bytes * model.workload.distinct_weight_layers // model.layers
            streamed = math.ceil((1.0 - resident) * distinct_bytes)
    return ModelMapping(used, c, weight_macros, kv_macros, per_layer + kv.macros, streamed, policy)


_counts: _KeyedCache[tuple[int, KVMapping, int, int]] = _KeyedCache(4096)


def _model_counts(graph: OpGraph, p: ParamSet, c: Chip, sched: Schedule) -> tuple[int, KVMapping, int, int]:
    """Macros of one layer's weights, the K/V mapping, and the macros of K/V and of every
    distinct weight (what :func:`map_model` places)."""
    model = graph.model
    apm, wbits = c.macro.arrays, p.i("weight_bits")
    weights = [op for op in model.matmuls(Role.WEIGHT)]
    weights += [op for op in graph.matmuls(Role.WEIGHT) if op not in model.layer_ops]
    per_layer = sum(map_matrix(op.k, op.n, wbits, c.array, apm).macros for op in weights)
    w = model.workload
    kv = map_kv(w.head_dim, graph.seq_len, w.heads, graph.batch, p.i("input_bits"), c.array, apm)
    kv_macros = min(sched.kv_layers, model.layers) * kv.macros
    # layers that share weights (ALBERT) hold them once
    weight_macros = model.workload.distinct_weight_layers * per_layer
    return per_layer, kv, kv_macros, weight_macros


# --- per-op stages ---------------------------------------------------------------------------------

@dataclass
class Stage:
    """One op of one layer: per-token occupancy, fill latency, energy."""

    category: str
    occupancy_s: float
    fill_s: float
    energy_j: float
    adc_j: float = 0.0
    whole_s: float | None = None  # matrix schedule: time over all tokens, when not tokens x occ
    facts: dict[str, float] = field(default_factory=dict)
    busy_leakage_j: float = 0.0  # leakage of the units while they work (power gating)


@dataclass(frozen=True)
class SoftmaxMapping:
    """How the score rows of a softmax are laid on cores (see the module docstring)."""

    row_len: int
    row_cores: int  # cores whose K^T arrays produce one head's row
    spread: int  # cores working on one row
    per_core: int  # elements on the busiest core
    levels: int  # tree levels of each reduction
    chunks: int  # lanes-wide chunks on the busiest core
    vfu_cycles_per_chunk: int
    lookup_cycles_per_chunk: int
    row_s: float  # one row, start to end
    compute_s: float  # the busiest core's element work
    reduce_s: float  # max and sum: reduce + broadcast trees
    gather_s: float  # streaming the row to one core (single-core softmax), overlapped
    rows_at_once: int  # rows processed concurrently (matrix schedule)


@dataclass(frozen=True)
class _Ctx:
    graph: OpGraph
    p: ParamSet
    chip: Chip
    sched: Schedule
    mapping: ModelMapping
    t_mvm: float
    exp: ExpRoutine
    lut: bool
    #: results computed once per estimate and shared by the rules
    memo: dict[object, object] = field(default_factory=dict)
    #: results that the graph, the chip and the mapping's parameters (``_MAPPING_KEYS``)
    #: determine, shared by every design point that agrees on those: a key names every
    #: other parameter its value reads (see ``_shared``)
    shared: dict[object, Any] = field(default_factory=dict)


def _shared(ctx: _Ctx, key: tuple[object, ...], make: Callable[[], T]) -> T:
    """``make()``, computed once per ``key`` among the points with the same graph, chip and
    mapping parameters. ``key`` must hold every parameter ``make`` reads beyond those."""
    try:
        return ctx.shared[key]  # type: ignore[no-any-return]
    except KeyError:
        v = ctx.shared[key] = make()
        return v


def _exp_routine(p: ParamSet, c: Chip) -> tuple[ExpRoutine, bool]:
    """The exponent routine in use, and whether it reads the UCLM tables."""
    if p.b("lut_exp"):
        return ExpRoutine("table", residual=c.core.vfu.exp.residual), True
    return c.core.vfu.exp, False


def softmax_steps(ctx: _Ctx) -> dict[str, int]:
    """VFU element-ops of the softmax: max, subtract, sum, normalising multiply, the exponent."""
    steps = dict(ctx.exp.steps(external_table=ctx.lut))
    for name in ("max", "add", "add", "mul"):
        steps[name] = steps.get(name, 0) + 1
    return steps


def _softmax_routine(ctx: _Ctx) -> tuple[dict[str, int], int, int, float]:
    """The softmax's element-ops (:func:`softmax_steps`), their count, and the VFU cycles and
    energy per element: the chip and the exponent routine fix them (shared)."""
    def make() -> tuple[dict[str, int], int, int, float]:
        steps = softmax_steps(ctx)
        vfu = ctx.chip.core.vfu
        return steps, sum(steps.values()), vfu.routine_cycles(steps), vfu.routine_energy_j(steps)
    return _shared(ctx, ("softmax_routine", ctx.lut), make)


def tables_per_core(c: Chip) -> int:
    """Independent copies of the lookup table in a core (one copy spans lut_arrays arrays)."""
    return max(1, c.core.macros * c.macro.arrays // max(1, c.array.lut_arrays))


def softmax_mapping(op: Softmax, ctx: _Ctx) -> SoftmaxMapping:
    """Cores, reductions and time of one score row (see the module docstring)."""
    p = ctx.p
    # beyond the graph, chip and mapping: the parameters _softmax_mapping reads
    key = ("softmax", op.row_len, p.i("softmax_cores_per_row"), p.b("multicore_softmax"),
           p.i("score_bytes"), ctx.lut)
    return _shared(ctx, key, lambda: _softmax_mapping(op, ctx))


@dataclass(frozen=True)
class _RowConsts:
    """What the chip and the mapping fix of a softmax row of ``L`` scores (shared by the
    points that differ only in how the row is spread)."""

    blocks: int  # column blocks of K^T holding the row
    block_cores: int  # cores those blocks need (a core holds macros_per_core blocks)
    cols: int
    core_cols: int
    lanes: int
    cyc: float
    vfu_cycles: int  # the routine's VFU cycles per chunk
    lookup_cycles: int  # table-read cycles per chunk (0 without the UCLM table)
    hop_s: float  # one tree level: a hop and a max
    div_s: float  # the reciprocal of the sum
    gather_hop_cycles: float  # avg_hops x hop_cycles
    cores: int  # of the chip the model was mapped on


def _row_consts(L: int, ctx: _Ctx) -> _RowConsts:
    c = ctx.chip
    vfu, router, array = c.core.vfu, c.tile.router, c.array
    lanes, cyc = vfu.lanes, 1.0 / c.clock_hz
    # K^T of one head: one column block of `cols` keys per macro; a row's scores come out
    # on the cores holding its blocks
    blocks = _ceil(L, array.cols)
    return _RowConsts(
        blocks=blocks, block_cores=_ceil(blocks, c.core.macros), cols=array.cols,
        core_cols=array.cols * c.core.macros,  # a core holds at most macros_per_core blocks of a head
        lanes=lanes, cyc=cyc, vfu_cycles=_softmax_routine(ctx)[2],
        lookup_cycles=_ceil(lanes, tables_per_core(c)) * array.lookup_cycles if ctx.lut else 0,
        hop_s=(router.hop_cycles + vfu.op_cycles("max")) * cyc, div_s=vfu.op_cycles("div") * cyc,
        gather_hop_cycles=router.avg_hops * router.hop_cycles, cores=ctx.mapping.base_chip.cores)


def _softmax_mapping(op: Softmax, ctx: _Ctx) -> SoftmaxMapping:
    p, L = ctx.p, op.row_len
    k = _shared(ctx, ("softmax_row", L, ctx.lut), lambda: _row_consts(L, ctx))
    # the blocks dealt over softmax_cores_per_row cores (R), at least the cores the blocks
    # need once the row outgrows R cores
    R = p.i("softmax_cores_per_row")
    row_cores = max(min(R, k.blocks), k.block_cores)
    multicore = p.b("multicore_softmax")
    spread = row_cores if multicore else 1
    # the busiest core: one block's scores while the row fits one block per core, then an
    # even share over R cores, then a full core (monotone in L)
    per_core = min(L, max(k.cols, _ceil(L, R)), k.core_cols) if multicore else L
    chunks = _ceil(per_core, k.lanes)
    cyc = k.cyc
    compute = chunks * (k.vfu_cycles + k.lookup_cycles) * cyc
    levels = Router.tree_levels(spread)
    # max and sum: each reduced up the tree and the result broadcast back down
    reduce = 2 * 2 * levels * k.hop_s + k.div_s  # + the reciprocal of the sum
    gather = 0.0
    if not multicore and row_cores > 1:
        # the row's scores stream in from the cores that produced them while the core works
        gather = (k.gather_hop_cycles + ctx.chip.tile.router.flits(L * p.i("score_bytes"))) * cyc
    row = max(compute, gather) + reduce
    return SoftmaxMapping(L, row_cores, spread, per_core, levels, chunks, k.vfu_cycles,
                          k.lookup_cycles, row, compute, reduce, gather, max(1, k.cores // spread))


rules: CostRules[Stage] = CostRules("CIM model")


def _reduction(rows_blocks: int, n: int, ctx: _Ctx) -> tuple[float, float, int]:
    """Adding the partial sums of ``rows_blocks`` row blocks for ``n`` outputs: per-token
    occupancy of the busiest core's VFU, tree fill latency, and element adds."""
    if rows_blocks <= 1:
        return 0.0, 0.0, 0
    c = ctx.chip
    vfu, router = c.core.vfu, c.tile.router
    cols_blocks = _ceil(n, c.array.cols)
    # each core adds the partial sums of the blocks it holds (at most macros_per_core blocks,
    # a block's columns each): monotone in the matrix size
    per_core = min(rows_blocks * cols_blocks, c.core.macros) * min(n, c.array.cols)
    occ = vfu.time_s(per_core, vfu.op_cycles("add"))
    # then the row blocks of each column block meet in a tree across the cores that hold them
    levels = router.tree_levels(_ceil(rows_blocks, c.core.macros))
    fill = levels * (router.hop_cycles + router.flits(2 * n) + _ceil(n, vfu.lanes)) / c.clock_hz
    return occ, fill, (rows_blocks - 1) * n


@rules.register(MatMul, role=Role.WEIGHT)
def _weight_matmul(op: MatMul, ctx: _Ctx) -> Stage:
    # reads the op, the graph, the chip and the bit widths only (T_MVM is the chip's)
    return _shared(ctx, ("weight", op.name), lambda: _weight_stage(op, ctx))


def _weight_stage(op: MatMul, ctx: _Ctx) -> Stage:
    c, p, tokens = ctx.chip, ctx.p, ctx.graph.tokens
    m = map_matrix(op.k, op.n, p.i("weight_bits"), c.array, c.macro.arrays)
    e = c.macro.mvm_energy(p.i("input_bits"), active_arrays=m.slices)
    red_occ, fill, adds = _reduction(m.row_blocks, op.n, ctx)
    router = c.tile.router
    energy = (tokens * m.blocks * e.total_j + tokens * adds * c.core.vfu.op_energy_j("add")
              + router.transfer_energy_j(op.output_bytes))
    leak = tokens * m.blocks * _macro_leak_j(m.slices, ctx)
    return Stage("matmul", max(ctx.t_mvm, red_occ), fill, energy, tokens * m.blocks * e.adc_j,
                 busy_leakage_j=leak)


@rules.register(MatMul, role=Role.SCORES)
@rules.register(MatMul, role=Role.CONTEXT)
def _attention_matmul(op: MatMul, ctx: _Ctx) -> Stage:
    c, p, g = ctx.chip, ctx.p, ctx.graph
    m, e, (red_occ, fill, adds), kv = _shared(ctx, ("attention", op.name),
                                              lambda: _attention_parts(op, ctx))
    # each new key (value) is written as a row into its arrays, which cannot compute meanwhile
    occ = max(ctx.t_mvm + c.array.write_row_s, red_occ)
    softmax = _shared(ctx, ("softmax_op",), lambda: next(g.of_type(Softmax), None))
    if op.role is Role.SCORES and ctx.lut and ctx.sched.lookups_borrow_arrays and softmax is not None:
        # the row's lookups run in the K^T arrays that compute the next tokens' scores
        # (every array of the softmax core holds the table: each takes its share of the row)
        sm = softmax_mapping(softmax, ctx)
        occ += _ceil(sm.per_core, tables_per_core(c)) * c.array.lookup_s
    # the energies do not depend on the softmax's mapping: beyond the graph, chip and
    # mapping they read the score width and (stored scores) the global buffer
    energy, adc, leak = _shared(ctx, ("attention_energy", op.name, p.i("score_bytes"), p.values_of(_GB_KEYS)),
                                lambda: _attention_energy(op, ctx, m, e, adds, kv, softmax))
    return Stage("attention", occ, fill, energy, adc, busy_leakage_j=leak)


def _attention_energy(op: MatMul, ctx: _Ctx, m: MatrixMapping, e: MvmEnergy, adds: int, kv: KVMapping,
                      softmax: Softmax | None) -> tuple[float, float, float]:
    """Energy, ADC energy and busy leakage of an attention product's layer."""
    c, p, g = ctx.chip, ctx.p, ctx.graph
    w, tokens = g.workload, g.tokens
    scores = op.role is Role.SCORES
    writes = kv.k_row_writes_per_token if scores else kv.v_row_writes_per_token
    mvms = tokens * w.heads * m.blocks
    router = c.tile.router
    energy = (mvms * e.total_j + tokens * w.heads * adds * c.core.vfu.op_energy_j("add")
              + tokens * writes * c.array.write_energy_j
              + router.transfer_energy_j(op.output_bytes * (p.i("score_bytes") if scores else 1)))
    if softmax is not None:
        energy += ctx.sched.score_traffic_j(op, softmax, ctx)
    return energy, mvms * e.adc_j, mvms * _macro_leak_j(m.slices, ctx)


def _attention_parts(op: MatMul, ctx: _Ctx) -> tuple[MatrixMapping, MvmEnergy,
                                                       tuple[float, float, int], KVMapping]:
    """The arrays, MVM energy and reduction of an attention product, and the layer's K/V
    mapping: the graph, the chip and ``input_bits`` only."""
    c, p, g = ctx.chip, ctx.p, ctx.graph
    w, L = g.workload, g.seq_len
    k, n = (w.head_dim, L) if op.role is Role.SCORES else (L, w.head_dim)
    m = map_matrix(k, n, p.i("input_bits"), c.array, c.macro.arrays)
    e = c.macro.mvm_energy(p.i("input_bits"), active_arrays=m.slices)
    kv = _shared(ctx, ("kv",), lambda: map_kv(w.head_dim, L, w.heads, g.batch, p.i("input_bits"),
                                              c.array, c.macro.arrays))
    return m, e, _reduction(m.row_blocks, n, ctx), kv


def _macro_leak_j(active_arrays: int, ctx: _Ctx) -> float:
    """Leakage of one MVM's active arrays (with their converters) over T_MVM."""
    m = ctx.chip.macro
    return m.leakage_w * min(1.0, active_arrays / m.arrays) * ctx.t_mvm


def _vfu_leak_j(element_cycles: float, ctx: _Ctx) -> float:
    """Leakage of a VFU busy for ``element_cycles`` element-cycles (lanes in parallel)."""
    vfu = ctx.chip.core.vfu
    return vfu.leakage_w * element_cycles / vfu.lanes / ctx.chip.clock_hz


_GB_KEYS = tuple(sorted(GLOBAL_BUFFER_KEYS))
_buffers: _KeyedCache[SharedMemory] = _KeyedCache(256)


def global_buffer(p: ParamSet) -> SharedMemory:
    """The chip-level buffer that holds stored scores (matrix schedule)."""
    return _buffers.get(p.values_of(_GB_KEYS),
                        lambda: SharedMemory.from_params(p, prefix="global_buffer"))


def score_storage(graph: OpGraph, p: ParamSet, c: Chip) -> tuple[int, int]:
    """Bytes of a layer's stored scores and probabilities, and how many of them fit on chip
    (the global buffer and the tiles' shared memories); the rest spill off chip."""
    sm = next(graph.of_type(Softmax), None)
    if sm is None:
        return 0, 0
    total = sm.elements * (p.i("score_bytes") + graph.workload.bytes_per_element)
    onchip = c.tiles * c.tile.shared_memory.bytes_ + global_buffer(p).bytes_
    return total, min(total, onchip)


def _store_energy(nbytes: float, ctx: _Ctx) -> float:
    """Write and read back ``nbytes`` of stored scores: the tiles' memories first, then the
    global buffer, the rest off chip."""
    total, onchip = score_storage(ctx.graph, ctx.p, ctx.mapping.base_chip)
    if not total:
        return 0.0
    c = ctx.mapping.base_chip
    tiles = min(total, c.tiles * c.tile.shared_memory.bytes_)
    gb = onchip - tiles
    per_byte = (tiles * c.tile.shared_memory.energy_j_per_byte
                + gb * global_buffer(ctx.p).energy_j_per_byte
                + (total - onchip) * c.offchip.energy_j_per_byte) / total
    return 2 * nbytes * per_byte


def _regfile_j(element_ops: float, ctx: _Ctx) -> float:
    """Register-file traffic of VFU work: two 16-bit operands read and one written per op."""
    return element_ops * 6 * ctx.chip.core.regfile.energy_j_per_byte


@rules.register(Softmax)
def _softmax(op: Softmax, ctx: _Ctx) -> Stage:
    sm = softmax_mapping(op, ctx)
    p = ctx.p
    # what the row mapping's parameters determine (the same key as softmax_mapping's)
    energy, leak, facts = _shared(
        ctx, ("softmax_stage", op.name, p.i("softmax_cores_per_row"), p.b("multicore_softmax"),
              p.i("score_bytes"), ctx.lut), lambda: _softmax_costs(op, sm, ctx))
    return ctx.sched.softmax_stage(op, sm, ctx, Stage("softmax", 0.0, 0.0, energy, facts=dict(facts),
                                                      busy_leakage_j=leak))


def _softmax_costs(op: Softmax, sm: SoftmaxMapping, ctx: _Ctx) -> tuple[float, float, dict[str, float]]:
    c, p = ctx.chip, ctx.p
    vfu, router = c.core.vfu, c.tile.router
    _, ops_per_element, cycles, energy_per_element = _softmax_routine(ctx)
    element_ops = op.elements * ops_per_element
    energy = (op.elements * energy_per_element + op.rows * vfu.op_energy_j("div")
              + _regfile_j(element_ops, ctx))
    if ctx.lut:
        energy += op.elements * c.array.lookup_energy_j
    energy += op.rows * 4 * router.tree_reduce_energy_j(sm.spread)
    if sm.gather_s:
        energy += router.transfer_energy_j(op.rows * op.row_len * p.i("score_bytes"))
    leak = _vfu_leak_j(op.elements * cycles, ctx)
    facts = {"softmax_row_cores": sm.row_cores, "softmax_spread": sm.spread,
             "softmax_per_core": sm.per_core, "softmax_tree_levels": sm.levels,
             "softmax_cycles_per_chunk": sm.vfu_cycles_per_chunk + sm.lookup_cycles_per_chunk,
             "softmax_row_s": sm.row_s}
    return energy, leak, facts


def _rowwise(op: LayerNorm | GELU, row: int, ops_per_elem: int, reductions: int, ctx: _Ctx) -> Stage:
    """A row of ``row`` elements of each token on the cores that produced its columns."""
    return _shared(ctx, ("rowwise", op.name, row, ops_per_elem, reductions),
                   lambda: _rowwise_stage(op, row, ops_per_elem, reductions, ctx))


def _rowwise_stage(op: LayerNorm | GELU, row: int, ops_per_elem: int, reductions: int, ctx: _Ctx) -> Stage:
    c = ctx.chip
    vfu, router = c.core.vfu, c.tile.router
    producer_cores = _ceil(row, c.array.cols)  # each column block's sums end on its own core
    per_core = _ceil(row, producer_cores)
    occ = vfu.time_s(per_core, ops_per_elem * vfu.op_cycles("add"))
    levels = router.tree_levels(producer_cores)
    fill = reductions * 2 * levels * (router.hop_cycles + vfu.op_cycles("add")) / c.clock_hz
    energy = (op.elements * ops_per_elem * vfu.op_energy_j("add")
              + router.transfer_energy_j(op.output_bytes) + _regfile_j(op.elements * ops_per_elem, ctx))
    return Stage("vector", occ, fill, energy,
                 busy_leakage_j=_vfu_leak_j(op.elements * ops_per_elem, ctx))


@rules.register(LayerNorm)
def _layernorm(op: LayerNorm, ctx: _Ctx) -> Stage:
    return _rowwise(op, op.row_len, ctx.p.i("layernorm_vfu_ops"), 2, ctx)  # mean and variance


@rules.register(GELU)
def _gelu(op: GELU, ctx: _Ctx) -> Stage:
    row = op.elements // max(1, ctx.graph.tokens)
    return _rowwise(op, row, ctx.p.i("gelu_vfu_ops"), 0, ctx)


# --- the estimate ------------------------------------------------------------------------------------

def stages_of(graph: OpGraph, p: ParamSet) -> tuple[_Ctx, dict[str, Stage]]:
    """The context and one :class:`Stage` per op of the graph.

    The stages are read-only: a weight product's, a norm's or an activation's is shared by
    every point with the same graph, chip and mapping parameters (only the softmax's is
    built per call, and its schedule fills in its timing)."""
    plan = rules.plan(graph)  # Unsupported for an op without a rule
    c = chip(p)
    sched = schedule_of(p)
    # the placement depends on the graph, the chip and these parameters only; the chip by
    # its identity (chips are memoised: hashing its 89 parameters per point costs more)
    mkey = (id(c), graph, sched.name, *p.values_of(_MAPPING_KEYS))
    # (an entry's mapping holds its chip, so that id is not reused while the entry lives)
    mapping, shared = _mappings.get(mkey, lambda: (map_model(graph, p, c, sched), {}))
    lut = p.b("lut_exp")
    exp = shared.get(("exp", lut))
    if exp is None:
        exp = shared[("exp", lut)] = _exp_routine(p, c)[0]
    t_mvm = shared.get("t_mvm")
    if t_mvm is None:
        t_mvm = shared["t_mvm"] = c.macro.mvm_s(p.i("input_bits"))
    ctx = _Ctx(graph, p, mapping.chip, sched, mapping, t_mvm, exp, lut, shared=shared)
    return ctx, {op.name: rule(op, ctx) for op, rule in plan}


def estimate(graph: OpGraph, p: ParamSet) -> Estimate:
    ctx, stages = stages_of(graph, p)
    times = ctx.sched.latencies(graph, stages)
    N = graph.layers
    fixed = _shared(ctx, ("fixed", p.f("paper_area_mm2"), p.values_of(_GB_KEYS), ctx.lut),
                    lambda: _fixed_part(ctx))
    b = EstimateBuilder()
    op_level = graph.level is Level.OP
    for op in graph.layer_ops:
        s = stages[op.name]
        t = s.whole_s * N if (s.whole_s is not None and op_level) else times[op.name]
        b.add(op, t, N * s.energy_j, s.category)
    if fixed.streaming is not None:
        b.add("weight_streaming", *fixed.streaming, "memory")
    b.notes.extend(fixed.notes)
    b.area_mm2 = fixed.area_mm2
    b.static_energy_j = static_energy(ctx, stages, b.latency_s)
    adc = N * sum([s.adc_j for s in stages.values()])
    extra: dict[str, bool | int | float | str] = dict(fixed.extra_head)
    extra["adc_energy_share"] = adc / max(1e-300, sum([x.energy_j for x in b.breakdown]) + b.static_energy_j)
    extra.update(fixed.extra_tail)
    for s in stages.values():
        extra.update(s.facts)
    return b.build(memory_bytes=ctx.sched.memory_bytes(graph, p), extra=extra)


@dataclass(frozen=True)
class _Fixed:
    """What an estimate reports that the chip, mapping, table and paper area fix."""

    area_mm2: float
    streaming: tuple[float, float] | None  # (latency, energy) of streamed weights
    notes: tuple[str, ...]
    extra_head: dict[str, bool | int | float | str]  # the facts before adc_energy_share
    extra_tail: dict[str, bool | int | float | str]  # and after it


def _fixed_part(ctx: _Ctx) -> _Fixed:
    c, mapping, p, graph = ctx.chip, ctx.mapping, ctx.p, ctx.graph
    notes = []
    streaming = None
    if mapping.streamed_weight_bytes and graph.level is Level.MODEL:
        # (an op-level study costs its ops on the chip that holds the model, not the streaming)
        nbytes = mapping.streamed_weight_bytes
        rows = nbytes * 8 / (c.array.cols * c.array.cell_bits)
        streaming = (c.offchip.transfer_s(nbytes),
                     c.offchip.energy_j(nbytes) + rows * c.array.write_energy_j)
        notes.append(f"{nbytes / 2**20:.0f} MiB of weights do not fit on the chip and are "
                     f"streamed from off-chip memory every inference (capacity=stream)")
    gb = global_buffer(p)
    area = c.area_mm2 + gb.area_mm2  # part of the chip whatever the schedule
    paper = p.f("paper_area_mm2")
    notes.append(f"chip {area:.0f} mm2 ({area / paper:.2f}x the paper's {paper:.0f} mm2), "
                 f"{mapping.required_macros} of {c.macros} UCLMs needed")
    if mapping.scaled:
        notes.append(f"chip SCALED from {mapping.base_chip.tiles} to {c.tiles} tiles "
                     f"({mapping.base_chip.area_mm2:.0f} to {area:.0f} mm2) to hold the model "
                     f"(capacity=scale)")
    head: dict[str, bool | int | float | str] = {
        "t_mvm_s": ctx.t_mvm,
        "area_vs_paper": area / paper,
        "tiles": c.tiles,
        "tiles_base": mapping.base_chip.tiles,
        "chip_scaled": mapping.scaled,
        "capacity_policy": mapping.policy,
        "uclms_required": mapping.required_macros,
        "uclms_available": mapping.base_chip.macros,
        "uclms_weights": mapping.weight_macros,
        "uclms_kv": mapping.kv_macros,
        "streamed_weight_bytes": mapping.streamed_weight_bytes,
        "schedule": ctx.sched.name,
    }
    tail: dict[str, bool | int | float | str] = {"leakage_w": c.leakage_w + gb.leakage_w}
    if ctx.lut:
        e = c.array.lut_entries
        # the ideal table's bound, before its 16-bit rounding (the kernels measure the rest)
        tail.update(lut_entries=e, lut_rows=c.array.lut_rows, lut_arrays=c.array.lut_arrays,
                    lut_table_error_bound=exp_table_max_rel_error(e, ctx.exp.residual))
    return _Fixed(area, streaming, tuple(notes), head, tail)


def static_energy(ctx: _Ctx, stages: Mapping[str, Stage], latency_s: float) -> float:
    """Leakage energy of one inference.

    ``power_gating`` (default, as the paper's about-equal TOPS/W of a six times slower
    baseline implies): macros and VFUs leak only while they work (their busy time,
    counted per stage), routers and shared memories (the network and the stored data)
    leak all the time. Without it every component leaks for the whole latency.
    """
    c = ctx.chip
    always_on = (c.tiles * (c.tile.router.leakage_w + c.tile.shared_memory.leakage_w)
                 + global_buffer(ctx.p).leakage_w)
    if not ctx.p.b("power_gating"):
        return (c.leakage_w + global_buffer(ctx.p).leakage_w) * latency_s
    busy = sum([s.busy_leakage_j for s in stages.values()]) * ctx.graph.layers
    return always_on * latency_s + busy


#: What :func:`arithmetic` reads.
_ARITH_KEYS = ("lut_exp", "array_rows", "array_cell_bits", "dac_bits", "adc_bits", "weight_bits",
               "input_bits", "vfu_exp_residual", "array_lut_entries")
_arithmetics: _KeyedCache[Arithmetic] = _KeyedCache(1024)


def arithmetic(p: ParamSet) -> Arithmetic:
    """INT8 matmuls as analog MVMs of the arrays (rows, cell bits, DAC and ADC from the
    parameters); the table exponent (with its residual and size) when ``lut_exp`` is on."""
    return _arithmetics.get(p.values_of(_ARITH_KEYS), lambda: _arithmetic(p))


def _arithmetic(p: ParamSet) -> Arithmetic:
    analog = {
        "analog": True,
        "array_rows": p.i("array_rows"),
        "cell_bits": p.i("array_cell_bits"),
        "dac_bits": p.i("dac_bits"),
        "adc_bits": p.i("adc_bits"),
        "weight_bits": p.i("weight_bits"),
        "input_bits": p.i("input_bits"),
    }
    if p.b("lut_exp"):
        return Arithmetic(matmul="int8", softmax="lut", exp_residual=p.s("vfu_exp_residual"),
                          lut_entries=p.i("array_lut_entries"), **analog)  # type: ignore[arg-type]
    return Arithmetic(matmul="int8", softmax="exact", **analog)  # type: ignore[arg-type]


@hookimpl
def hastily_register_accelerators(register: Any) -> None:
    for name, spec in presets()["accelerators"].items():
        register(
            AcceleratorSpec(
                name=name,
                description=spec["description"],
                params=preset_params(name),
                estimate=estimate,
                arithmetic=arithmetic,
                default=bool(spec.get("default", False)),
                family="cim",
                reference=spec.get("reference", ""),
                check_params=check_params,
                ablation=tuple((step["label"], dict(step["overrides"]))
                               for step in spec.get("ablation", ())),
            )
        )


__all__ = ["clear_caches", "SCHEDULES", "Schedule", "PipelineSchedule", "MatrixSchedule", "estimate", "arithmetic",
           "map_model", "softmax_mapping", "stages_of", "chip"]
