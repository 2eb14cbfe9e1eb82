"""Analytic model of a weight-stationary INT8 systolic array.

The array has ``pe_rows x pe_cols`` multiply-accumulate cells. A matrix product
``(m x k) @ (k x n)`` is cut into ``ceil(k / pe_rows) x ceil(n / pe_cols)``
weight tiles. Each tile is loaded into the cells (one row per cycle, double
buffered so it hides behind the previous tile) and the ``m`` input rows stream
through it, one per cycle::

    cycles = instances x tiles x max(m, pe_rows) + (pe_rows + pe_cols)

``max(m, pe_rows)``: with fewer rows than the array is tall, the next tile's
weights are not loaded in time. ``pe_rows + pe_cols`` fills and drains the
skewed pipeline once per op. Q K^T and S V run the same way with K^T and V as
the stationary operand (read from the activation buffer, not DRAM); with a head
width of 64 only half of a 128-row array is busy, which the tile count shows.

Memory traffic per op:

* weights come from DRAM every inference unless *all* of the model's weights
  fit in ``weight_sram_bytes`` (then they stay resident, as on a chip that
  holds one model);
* an op whose inputs and outputs together exceed ``act_sram_bytes`` spills
  them to DRAM (written once, read once);
* the array reads each weight once, re-reads each input row once per column
  tile, and read-modify-writes ``accumulator_bytes`` partial sums once per
  row tile.

An op takes ``max(compute, DRAM transfer)``: transfers are double buffered.
Softmax, LayerNorm and GELU run on a ``vector_lanes``-wide FP32 unit. Energy is
MACs, vector ops, SRAM and DRAM bytes at their per-unit energies, plus
``static_power_w`` for the whole time. Peak memory is the residual stream plus
the largest op's inputs and outputs: the full ``h x l x l`` score matrix is
materialised, so memory grows as O(l^2).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from hastily_bench.api import (
    GELU,
    CostRules,
    Elementwise,
    Estimate,
    EstimateBuilder,
    LayerNorm,
    MatMul,
    OpGraph,
    ParamSet,
    RowOp,
    Softmax,
    Unsupported,
    default_category,
)


@dataclass(frozen=True)
class OpWork:
    """Work of one op for one layer, before it is turned into time and energy."""

    cycles: float
    macs: int
    vector_ops: float
    sram_bytes: float
    dram_bytes: float


def matmul_cycles(op: MatMul, rows: int, cols: int) -> float:
    """Array cycles of a matrix-product op (see the module docstring)."""
    tiles = math.ceil(op.k / rows) * math.ceil(op.n / cols)
    return op.instances * tiles * max(op.m, rows) + (rows + cols)


#: Cost rules by op type: an op type without a rule makes the point ``unsupported``.
rules: CostRules[OpWork] = CostRules("systolic-array model")


def _dram(op: MatMul | RowOp | Elementwise, params: ParamSet) -> float:
    spill = op.input_bytes + op.output_bytes > params.i("act_sram_bytes")
    return float(op.input_bytes + op.output_bytes) if spill else 0.0


@rules.register(MatMul)
def _matmul(op: MatMul, params: ParamSet, *, weights_resident: bool) -> OpWork:
    rows, cols = params.i("pe_rows"), params.i("pe_cols")
    dram = _dram(op, params)
    col_tiles = math.ceil(op.n / cols)
    row_tiles = math.ceil(op.k / rows)
    stationary = op.instances * op.k * op.n  # each stationary element read once
    inputs = op.instances * op.m * op.k * col_tiles
    partials = op.instances * op.m * op.n * row_tiles * 2 * params.i("accumulator_bytes")
    sram = float(stationary + inputs + partials + op.output_bytes)
    if op.weight_stationary and not weights_resident:
        dram += op.weight_bytes
    return OpWork(matmul_cycles(op, rows, cols), op.macs, 0.0, sram, dram)


def _vector_rule(per_element_param: str):  # type: ignore[no-untyped-def]
    def rule(op: RowOp | Elementwise, params: ParamSet, *, weights_resident: bool) -> OpWork:
        vector_ops = op.elements * params.f(per_element_param)
        cycles = vector_ops / params.i("vector_lanes")
        return OpWork(cycles, 0, vector_ops, float(op.input_bytes + op.output_bytes),
                      _dram(op, params))
    return rule


rules.register(Softmax)(_vector_rule("softmax_ops_per_element"))
rules.register(LayerNorm)(_vector_rule("layernorm_ops_per_element"))
rules.register(GELU)(_vector_rule("gelu_ops_per_element"))


def estimate(graph: OpGraph, params: ParamSet) -> Estimate:
    """Latency, energy and peak memory of ``graph`` on the systolic array.

    Raises
    ------
    Unsupported
        For a workload that is not INT8: the array multiplies INT8 only.
    """
    if graph.workload.precision != "int8":
        raise Unsupported(
            f"the systolic array multiplies INT8 only; workload {graph.workload.name!r} "
            f"is {graph.workload.precision}"
        )
    clock = params.f("clock_hz")
    bandwidth = params.f("dram_bandwidth_gbs") * 1e9
    scale = params.f("logic_energy_scale")
    e_mac = params.f("mac_energy_45nm_j") * scale
    e_vec = params.f("vector_op_energy_45nm_j") * scale
    e_sram = params.f("sram_energy_per_byte_45nm_j") * scale
    e_dram = params.f("dram_energy_per_byte_j")
    static_w = params.f("static_power_w")
    rules.check(graph)  # unsupported, naming the op, before any work
    weights_resident = graph.weight_bytes <= params.i("weight_sram_bytes")
    layers = graph.layers

    b = EstimateBuilder()
    dram_total = 0.0
    dram_bound_ops = 0
    for op in graph.layer_ops:
        w = rules(op, params, weights_resident=weights_resident)
        t_compute = w.cycles / clock
        t_dram = w.dram_bytes / bandwidth
        t = max(t_compute, t_dram)
        dram_bound_ops += int(t_dram > t_compute)
        energy = (
            w.macs * e_mac
            + w.vector_ops * e_vec
            + w.sram_bytes * e_sram
            + w.dram_bytes * e_dram
            + static_w * t
        )
        b.add(op, layers * t, layers * energy, default_category(op))
        dram_total += layers * w.dram_bytes

    residual = graph.tokens * graph.workload.hidden * graph.workload.bytes_per_element
    peak = residual + max(op.input_bytes + op.output_bytes for op in graph.layer_ops)
    if not weights_resident:
        b.notes.append(
            f"weights ({graph.weight_bytes / 2**20:.1f} MiB) exceed the "
            f"{params.i('weight_sram_bytes') / 2**20:.0f} MiB weight buffer: "
            "streamed from DRAM every inference"
        )
    peak_tops = 2 * params.i("pe_rows") * params.i("pe_cols") * clock / 1e12
    return b.build(
        memory_bytes=int(peak),
        extra={
            "peak_tops": peak_tops,
            "weights_resident": weights_resident,
            "dram_bytes": int(dram_total),
            "dram_bound_ops": dram_bound_ops,
        },
    )
