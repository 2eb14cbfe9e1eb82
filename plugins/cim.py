"""CIM models: HASTILY (UCLM arrays with table-lookup exponent) and the baseline CIM.

One analytical cost model, built from component parameters (``cim.toml``), with
three ablation switches. ``hastily`` has them on; ``baseline-cim`` is the same
chip with them off, so that switching them one by one walks from one to the other.

Mapping
-------
A ``rows x cols`` block of a weight matrix at ``weight_bits`` occupies
``weight_bits / bits_per_cell`` one-bit arrays, i.e. one UCLM for the paper's
64 x 64 INT8 block on 8 arrays. Every weight matrix of every layer stays on chip.
K^T and V are written into arrays like weights (``live_layers`` layers of them:
two for the pipeline's double buffer, one for the matrix schedule). A workload
that needs more UCLMs than the chip has gets a scaled chip (``scale_to_fit``,
with a note and the required vs available counts in ``extra``) or is
``unsupported``.

Timing
------
One MVM of a UCLM: ``ceil(input_bits / dac_bits)`` bit steps; each step drives the
rows (DAC), samples (S&H), and converts ``cols / adcs_per_array`` columns per
ADC. Sample-and-hold lets the conversions of one step overlap the drive of the
next, so ``T_MVM = t_front + steps x max(t_front, t_convert) + t_shift_add``.
Every op has a per-token *occupancy* (how long its busiest resource is held per
token: arrays for an MVM, lookups included, VFU lanes for vector work) and a
*latency* (tree reductions across cores, hops). Schedules:

* fine-grained pipeline: tokens stream through all ops of a segment at once, one
  token per ``max(occupancy)`` after the first has walked the chain; segments are separated by the Q/K/V barrier
  (attention of layer i needs all of layer i's K and V). Segment 0 is layer 1's
  Q/K/V projection; segment i is layer i's attention to layer i+1's projection.
  Latency = sum over segments of ``(tokens - 1) x max occupancy + sum of
  (occupancy + latency)``,
  which is where the paper's ``(N + 1) x l x T_MVM`` comes from.
* matrix by matrix: each op runs over all tokens before the next starts; softmax
  runs over the whole stored score matrix.

In the pipeline, ops overlap: a segment's streaming time is attributed to its
ops in proportion to their occupancy, so the breakdown sums to the total.

Energy: dynamic energy per event (ADC conversions dominate) plus
``static_power_w_per_mm2 x area x latency``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from hastily_bench.api import (
    LAYERNORM,
    MATMUL,
    SOFTMAX,
    AcceleratorSpec,
    Arithmetic,
    Estimate,
    Op,
    OpCost,
    OpGraph,
    ParamSet,
    Unsupported,
    build_graph,
    hookimpl,
    load_package_toml,
    params_from_mapping,
)

PRESETS = "cim.toml"
#: Op names that sit between the Q/K/V barriers of the pipeline (in layer order).
ATTENTION_SIDE = ("attn_scores", "softmax", "attn_context")



@lru_cache(maxsize=1)
def presets() -> dict[str, Any]:
    """The parsed ``cim.toml``: ``{"params": {...}, "accelerators": {...}}``."""
    return load_package_toml("hastily_bench.plugins", PRESETS)


def preset_params(name: str) -> ParamSet:
    """Parameters of preset ``name`` (``hastily`` or ``baseline-cim``)."""
    doc = presets()
    params = params_from_mapping(doc["params"], origin=PRESETS)
    overrides: Mapping[str, Any] = doc["accelerators"][name].get("overrides", {})
    return params.with_values(dict(overrides), source="assumed") if overrides else params


# --- component level -------------------------------------------------------------------

def cycle_s(p: ParamSet) -> float:
    return 1.0 / p.f("clock_hz")


def mvm_steps(p: ParamSet) -> int:
    """Bit-serial input steps of one MVM."""
    return math.ceil(p.i("input_bits") / p.i("dac_bits"))


def arrays_per_block(p: ParamSet) -> int:
    """One-bit arrays holding one rows x cols weight block (its bit slices)."""
    return math.ceil(p.i("weight_bits") / p.i("bits_per_cell"))


def uclms_per_block(p: ParamSet) -> int:
    return math.ceil(arrays_per_block(p) / p.i("arrays_per_uclm"))


def t_mvm(p: ParamSet) -> float:
    """Seconds for one MVM of a UCLM (all its arrays in parallel)."""
    t_front = p.f("dac_latency_s") + p.i("sample_hold_cycles") * cycle_s(p)
    t_convert = math.ceil(p.i("array_cols") / p.i("adcs_per_array")) / p.f("adc_sample_rate_hz")
    return t_front + mvm_steps(p) * max(t_front, t_convert) + p.i("shift_add_cycles") * cycle_s(p)


def e_mvm(p: ParamSet) -> tuple[float, float]:
    """(ADC energy, other energy) of one block MVM, in joules."""
    arrays, steps = arrays_per_block(p), mvm_steps(p)
    cols, rows = p.i("array_cols"), p.i("array_rows")
    adc = arrays * steps * cols * p.f("adc_energy_j")
    other = arrays * steps * (
        cols * (p.f("shift_add_energy_j") + p.f("sample_hold_energy_j"))
        + rows * p.f("dac_energy_j")
        + p.f("array_mvm_energy_j")
    )
    return adc, other


def t_lookup(p: ParamSet) -> float:
    """Seconds for one table lookup in one array."""
    return p.i("lookup_cycles") * cycle_s(p)


def uclm_area_mm2(p: ParamSet) -> float:
    arrays, rows, cols = p.i("arrays_per_uclm"), p.i("array_rows"), p.i("array_cols")
    return arrays * (
        rows * cols * p.f("cell_area_um2") * 1e-6
        + p.i("adcs_per_array") * p.f("adc_area_mm2")
        + rows * p.f("dac_area_mm2")
        + p.f("shift_add_area_mm2")
    )


def tile_area_mm2(p: ParamSet) -> float:
    core = p.i("uclms_per_core") * uclm_area_mm2(p) + p.i("vfu_lanes") * p.f("vfu_area_mm2")
    return p.i("cores_per_tile") * core + p.f("shared_memory_area_mm2") + p.f("router_area_mm2")


# --- mapping -----------------------------------------------------------------------------

def _blocks(k: int, n: int, p: ParamSet) -> tuple[int, int]:
    """(row blocks, column blocks) of a k x n matrix."""
    return math.ceil(k / p.i("array_rows")), math.ceil(n / p.i("array_cols"))


@dataclass(frozen=True)
class Mapping_:
    weight_uclms: int
    kv_uclms: int
    layer_uclms: int
    tiles: int
    tiles_available: int
    scaled: bool

    @property
    def required_uclms(self) -> int:
        return self.weight_uclms + self.kv_uclms


def map_graph(graph: OpGraph, p: ParamSet) -> Mapping_:
    """Place the whole model on the chip.

    The mapping always covers the full encoder layer of the workload, even when the
    graph holds a single op (``hastily-bench op``): an operation runs on the chip
    that holds the model, with the same cores available to it.
    """
    w, upb = graph.workload, uclms_per_block(p)
    per_layer = 0
    for op in build_graph(w, graph.seq_len, graph.batch).layer_ops:
        if op.kind == MATMUL and op.weight_stationary:
            rb, cb = _blocks(op.k, op.n, p)
            per_layer += rb * cb * upb
    # extra weight matrices of an op-level graph (``op mvm`` with its own shape)
    for op in graph.layer_ops:
        if op.name == "mvm":
            rb, cb = _blocks(op.k, op.n, p)
            per_layer += rb * cb * upb
    live_layers = 2 if p.b("fine_grained_pipeline") else 1
    rb, cb = _blocks(w.head_dim, graph.seq_len, p)
    kv_per_layer = 2 * graph.batch * w.heads * rb * cb * upb
    weight_uclms = graph.layers * per_layer
    kv_uclms = min(live_layers, graph.layers) * kv_per_layer
    per_tile = p.i("cores_per_tile") * p.i("uclms_per_core")
    available = p.i("tiles_per_chip")
    needed = math.ceil((weight_uclms + kv_uclms) / per_tile)
    if needed > available and not p.b("scale_to_fit"):
        raise Unsupported(
            f"needs {weight_uclms + kv_uclms} UCLMs ({needed} tiles), the chip has "
            f"{available * per_tile} ({available} tiles); set scale_to_fit=true to scale the chip"
        )
    return Mapping_(weight_uclms, kv_uclms, per_layer + kv_per_layer, max(needed, available),
                    available, needed > available)


# --- per-op costs --------------------------------------------------------------------------

@dataclass
class OpModel:
    """Per-token occupancy, fill latency and total energy of one op (one layer)."""

    name: str
    category: str
    occupancy_s: float  # per token: how long the op's busiest resource is held
    latency_s: float  # extra fill latency beyond the occupancy (reduction trees, hops)
    energy_j: float
    adc_energy_j: float = 0.0
    whole_s: float | None = None  # matrix mode: time of the op over all tokens, when not tokens x occupancy


def _tree(levels: int, p: ParamSet, payload_cycles: int = 1) -> float:
    return levels * (p.i("hop_cycles") + payload_cycles) * cycle_s(p)


def _vfu_time(elements: float, ops: float, cores: float, p: ParamSet) -> float:
    return math.ceil(elements / cores) * ops * p.i("vfu_op_cycles") / p.i("vfu_lanes") * cycle_s(p)


def model_ops(graph: OpGraph, p: ParamSet, mapping: Mapping_) -> list[OpModel]:
    w = graph.workload
    L, h, dh = graph.seq_len, w.heads, w.head_dim
    lanes = p.i("vfu_lanes")
    upc, cols = p.i("uclms_per_core"), p.i("array_cols")
    T = t_mvm(p)
    e_adc, e_other = e_mvm(p)
    e_vfu = p.f("vfu_energy_j")
    hop_e = p.f("router_energy_j_per_byte") * p.f("avg_hops")
    upb = uclms_per_block(p)
    pipeline = p.b("fine_grained_pipeline")
    cores_layer = max(1, math.ceil(mapping.layer_uclms / upc))
    elem = w.bytes_per_element
    # lookups steal array time: spread over every array of the layer
    layer_arrays = mapping.layer_uclms * p.i("arrays_per_uclm")
    has_softmax = any(o.kind == SOFTMAX for o in graph.layer_ops)
    lookups_per_token = h * L if (p.b("lut_exp") and has_softmax) else 0
    lookup_rounds = math.ceil(lookups_per_token / max(1, layer_arrays)) if lookups_per_token else 0
    # In the pipeline the softmax of one token looks up while the next tokens' MVMs run,
    # on the same arrays; in the matrix schedule softmax runs alone and counts its own lookups.
    t_array = T + (lookup_rounds * t_lookup(p) if pipeline else 0.0)
    tokens = graph.tokens

    out: list[OpModel] = []
    for op in graph.layer_ops:
        if op.kind == MATMUL:
            if op.weight_stationary:
                rb, cb = _blocks(op.k, op.n, p)
                mvms_per_token = rb * cb
                red_elems = (rb - 1) * op.n
                cores = max(1, math.ceil(rb * cb * upb / upc))
                writes = 0
                moved = float(op.output_bytes)
                category = "matmul"
            else:
                # K^T (dh x L) or V (L x dh) written into arrays, one per (sequence, head)
                k, n = (dh, L) if op.name == "attn_scores" else (L, dh)
                rb, cb = _blocks(k, n, p)
                mvms_per_token = h * rb * cb  # every token of a sequence, all heads
                red_elems = h * (rb - 1) * n
                cores = max(1, math.ceil(h * rb * cb * upb / upc))
                # each token writes its key (or value) row into the arrays: one row per bit slice
                writes = h * math.ceil(dh / p.i("array_rows")) * arrays_per_block(p)
                moved = op.output_bytes * (p.i("score_bytes") / elem if op.name == "attn_scores" else 1)
                category = "attention"
            red_occ = _vfu_time(red_elems, 1, cores, p) if red_elems else 0.0
            occ = max(t_array, red_occ)
            # partial sums of the row blocks meet in a tree across cores
            lat = _tree(math.ceil(math.log2(rb)) if rb > 1 else 0, p, math.ceil(cols / lanes))
            adc = tokens * mvms_per_token * e_adc
            energy = (adc + tokens * mvms_per_token * e_other + tokens * red_elems * e_vfu
                      + tokens * writes * p.f("array_write_energy_j") + moved * hop_e)
            if not pipeline and not op.weight_stationary:
                # matrix schedule: int32 scores are stored, INT8 probabilities read back
                sm = graph.op("softmax") if has_softmax else None
                score_elems = sm.elements if sm is not None else 0
                traffic = (score_elems * p.i("score_bytes") if op.name == "attn_scores"
                           else score_elems * elem)
                energy += traffic * p.f("shared_memory_energy_j_per_byte")
            out.append(OpModel(op.name, category, occ, lat, energy, adc))
        elif op.kind == SOFTMAX:
            out.append(_softmax(op, graph, p, cores_layer, pipeline))
        else:
            ops_per = p.i("layernorm_vfu_ops") if op.kind == LAYERNORM else p.i("gelu_vfu_ops")
            trans = 0 if op.kind == LAYERNORM else p.i("vfu_transcendental_cycles")
            row = op.row_len if op.kind == LAYERNORM else w.ffn
            cores = max(1, math.ceil(row / cols))  # the cores that produced the row's column blocks
            occ = _vfu_time(row, ops_per + trans, cores, p)
            levels = math.ceil(math.log2(cores)) if (op.kind == LAYERNORM and cores > 1) else 0
            lat = 2 * _tree(levels, p)  # mean and variance reductions
            energy = op.elements * (ops_per + trans) * e_vfu + op.output_bytes * hop_e
            out.append(OpModel(op.name, "vector", occ, lat, energy))
    return out


def _softmax(op: Op, graph: OpGraph, p: ParamSet, cores_layer: int, pipeline: bool) -> OpModel:
    w = graph.workload
    L, h = graph.seq_len, w.heads
    cyc, lanes = cycle_s(p), p.i("vfu_lanes")
    lut = p.b("lut_exp")
    if lut:
        ops = p.i("softmax_vfu_ops_lut") + (2 if p.s("exp_residual") == "linear" else 0)
    else:
        ops = p.i("softmax_vfu_ops_exact") + p.i("vfu_transcendental_cycles")
    rows_per_token = h  # tokens stream one at a time: h score rows each, whatever the batch
    if p.b("multicore_softmax"):
        # a row spread over the cores of its layer, partial max and sum tree-reduced
        spread = max(1, min(cores_layer // max(1, rows_per_token), math.ceil(L / lanes)))
        groups = max(1, cores_layer // spread)  # rows processed at once
        levels = math.ceil(math.log2(spread)) if spread > 1 else 0
        reduce_lat = 2 * _tree(levels, p)  # max, then sum; broadcasts ride on the same tree
    else:
        spread, groups, levels = 1, cores_layer, 0
        reduce_lat = 0.0
    per_core = math.ceil(L / spread)
    t_vfu = per_core * ops * p.i("vfu_op_cycles") / lanes * cyc
    if lut:
        lookup_arrays = p.i("uclms_per_core") * p.i("arrays_per_uclm")
        t_lut = math.ceil(per_core / lookup_arrays) * t_lookup(p)
    else:
        t_lut = 0.0
    score_bytes = p.i("score_bytes")
    t_mem = 0.0
    if not pipeline:
        # the stored score row is read and the probabilities written back through tile memory
        t_mem = per_core * (score_bytes + 1) / p.i("shared_memory_bytes_per_cycle") * cyc
    row_time = max(t_vfu, t_lut) + t_mem
    elements = op.elements
    energy = elements * ops * p.f("vfu_energy_j")
    if lut:
        energy += elements * p.f("lookup_energy_j")
    energy += op.rows * 2 * spread * 4 * p.f("router_energy_j_per_byte") * max(1, levels)
    if not pipeline:
        energy += elements * (score_bytes + 1) * p.f("shared_memory_energy_j_per_byte")
    # per token: rows_per_token rows on `groups` core groups
    occ = math.ceil(rows_per_token / groups) * row_time
    whole = None
    if not pipeline:
        # a core group starts its next row while the previous row's reduction is in flight
        whole = math.ceil(op.rows / groups) * row_time + reduce_lat
    return OpModel("softmax", "softmax", occ, reduce_lat, energy, 0.0, whole)


# --- schedules -------------------------------------------------------------------------------

def schedule(graph: OpGraph, models: list[OpModel], p: ParamSet) -> dict[str, float]:
    """Latency attributed to each op name, summed over layers."""
    tokens, N = graph.tokens, graph.layers
    by_name = {m.name: m for m in models}
    out = {m.name: 0.0 for m in models}
    if not p.b("fine_grained_pipeline"):
        for m in models:
            t = m.whole_s if m.whole_s is not None else tokens * m.occupancy_s + m.latency_s
            out[m.name] = N * t
        return out
    names = [m.name for m in models]
    has_barrier = "qkv_proj" in by_name and any(n in by_name for n in ATTENTION_SIDE)
    if not has_barrier:
        segments = [(names, N)]
    else:
        after = names[names.index("qkv_proj") + 1:]
        before = names[: names.index("qkv_proj")]
        # segment 0: layer 1's projection; then N segments from attention to the next
        # layer's projection (the last one without it)
        segments = [(["qkv_proj"], 1), (after + before + ["qkv_proj"], N - 1), (after + before, 1)]
    for seg, repeat in segments:
        if repeat == 0 or not seg:
            continue
        occ = {n: by_name[n].occupancy_s for n in seg}
        stage = max(occ.values())
        # the first token walks the whole chain; the others follow one stage apart
        stream = (tokens - 1) * stage
        total_occ = sum(occ.values()) or 1.0
        for n in seg:
            out[n] += repeat * (stream * occ[n] / total_occ + occ[n] + by_name[n].latency_s)
    return out


def memory_bytes(graph: OpGraph, p: ParamSet) -> int:
    """Working memory for activations and attention intermediates."""
    w = graph.workload
    B, L, d, h = graph.batch, graph.seq_len, w.hidden, w.heads
    elem, sb = w.bytes_per_element, p.i("score_bytes")
    if p.b("fine_grained_pipeline"):
        # K and V of two layers in arrays, one score row per head in flight, the layer
        # input, and one token's FFN intermediate
        return 2 * 2 * B * L * d * elem + B * h * L * sb + B * L * d * elem + B * w.ffn * elem
    # one layer: Q, K, V, all scores and probabilities, FFN intermediate
    return B * (3 * L * d * elem + h * L * L * (sb + elem) + L * w.ffn * elem)


def estimate(graph: OpGraph, p: ParamSet) -> Estimate:
    mapping = map_graph(graph, p)
    models = model_ops(graph, p, mapping)
    times = schedule(graph, models, p)
    N = graph.layers
    latency = sum(times.values())
    area = mapping.tiles * tile_area_mm2(p)
    breakdown = [OpCost(m.name, times[m.name], N * m.energy_j, m.category) for m in models]
    static = p.f("static_power_w_per_mm2") * area * latency
    breakdown.append(OpCost("static", 0.0, static, "static"))
    adc = N * sum(m.adc_energy_j for m in models)
    per_tile = p.i("cores_per_tile") * p.i("uclms_per_core")
    notes = [f"chip {area:.0f} mm2 ({area / p.f('paper_area_mm2'):.2f}x the paper's "
             f"{p.f('paper_area_mm2'):.0f} mm2 at 32 nm), {mapping.required_uclms} of "
             f"{mapping.tiles * per_tile} UCLMs used"]
    if mapping.scaled:
        notes.append(f"chip scaled from {mapping.tiles_available} to {mapping.tiles} tiles to hold "
                     f"{mapping.required_uclms} UCLMs (weights {mapping.weight_uclms}, "
                     f"K/V {mapping.kv_uclms}); scale_to_fit=false makes this unsupported")
    est = Estimate.from_breakdown(
        breakdown,
        memory_bytes=memory_bytes(graph, p),
        extra={
            "t_mvm_s": t_mvm(p),
            "area_mm2": area,
            "area_vs_paper": area / p.f("paper_area_mm2"),
            "tiles": mapping.tiles,
            "tiles_available": mapping.tiles_available,
            "uclms_required": mapping.required_uclms,
            "uclms_available": mapping.tiles_available * per_tile,
            "uclms_weights": mapping.weight_uclms,
            "uclms_kv": mapping.kv_uclms,
            "chip_scaled": mapping.scaled,
            "adc_energy_share": adc / max(1e-300, sum(c.energy_j for c in breakdown)),
        },
        notes=tuple(notes),
    )
    return est


def arithmetic(p: ParamSet) -> Arithmetic:
    """INT8 matmuls as analog MVMs of the arrays (rows, cell bits, DAC and ADC from the
    parameters); the table exponent (with its residual) when ``lut_exp`` is on."""
    lut = p.b("lut_exp")
    return Arithmetic(
        matmul="int8",
        softmax="lut" if lut else "exact",
        exp_residual=p.s("exp_residual") if lut else "linear",
        analog=True,
        array_rows=p.i("array_rows"),
        cell_bits=p.i("bits_per_cell"),
        dac_bits=p.i("dac_bits"),
        adc_bits=p.i("adc_bits"),
        weight_bits=p.i("weight_bits"),
        input_bits=p.i("input_bits"),
    )


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
            )
        )
