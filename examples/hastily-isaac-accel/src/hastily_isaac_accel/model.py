"""isaac-reram: an ISAAC-style ReRAM accelerator, written on ``hastily_bench.cim``.

Everything physical comes from the component library: the chip (tiles of 12
IMAs, each 8 crossbars of 128 x 128 2-bit cells with 8-bit ADCs, eDRAM and a
router per tile) is ``Chip.from_params``; weights, K and V are placed with
``map_weights`` / ``map_kv`` (INT8 on 2-bit cells: 4 bit slices, packed two
blocks per IMA); capacity is ``chip_capacity``. What is left here is the
schedule and the policy, which are this model's own choices:

* **Capacity.** All weights of every layer stay in crossbars, plus K and V of
  the layer being computed. A model that needs more IMAs than the chip has
  gets a chip scaled to fit (``model_scale_to_fit``, flagged in notes and
  ``extra``), or is ``unsupported``.
* **Schedule: matrix by matrix.** Each op runs over all tokens before the next
  starts, layer after layer. A weight product streams its ``m`` input rows
  through the IMAs holding the matrix (all blocks in parallel), one MVM each:
  ``m x max(T_MVM, partial-sum adds)`` plus one ``T_MVM`` to drain. Q K^T and
  S V run the same way on K^T and V written into crossbars (every head at
  once); each token's key and value are written first (a row write per
  crossbar, all crossbars in parallel).
* **Vector work** (softmax, LayerNorm, GELU) runs on the IMAs' VFUs, spread
  over the IMAs of one layer; the exponent is the VFU's exponent routine, and
  softmax adds max, subtract, sum and divide; LayerNorm is 4 adds, 3
  multiplies and a divide per element; GELU (tanh form) is an exponent plus
  4 multiplies, 2 adds and a divide.
* **Energy**: MVMs (ADC, DAC, crossbar, S&H, shift-add), crossbar writes, VFU
  ops, eDRAM traffic of every op's inputs and outputs (scores at
  ``model_score_bytes``), network traffic of outputs over ``router_avg_hops``,
  and the chip's leakage over the run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from hastily_bench.api import (
    GELU,
    Chip,
    CostRules,
    Estimate,
    EstimateBuilder,
    LayerNorm,
    MatMul,
    OpGraph,
    ParamSet,
    Role,
    Softmax,
    Unsupported,
    chip_capacity,
    default_category,
    map_kv,
    map_weights,
)

#: Elementary VFU steps per element besides the exponent (see the module docstring).
SOFTMAX_STEPS = {"max": 1, "sub": 1, "add": 1, "div": 1}
LAYERNORM_STEPS = {"add": 4, "mul": 3, "div": 1}
GELU_STEPS = {"mul": 4, "add": 2, "div": 1}
#: The model's own parameters (besides the chip's), read from ``[params.model]``.
MODEL_KEYS = frozenset({"model_input_bits", "model_weight_bits", "model_score_bytes", "model_scale_to_fit"})


@dataclass(frozen=True)
class Ctx:
    """What every cost rule needs: the (possibly scaled) chip and the precisions."""

    chip: Chip
    input_bits: int
    weight_bits: int
    score_bytes: int
    tokens: int
    cores_per_layer: int

    @property
    def t_mvm_s(self) -> float:
        return self.chip.macro.mvm_s(self.input_bits)


@dataclass(frozen=True)
class Cost:
    latency_s: float
    energy_j: float


rules: CostRules[Cost] = CostRules("isaac-reram")


def _traffic_j(ctx: Ctx, nbytes: float) -> float:
    """eDRAM write + read and the network hop of ``nbytes`` moved between ops."""
    tile = ctx.chip.tile
    return 2 * tile.shared_memory.energy_j(nbytes) + tile.router.transfer_energy_j(nbytes)


@rules.register(MatMul, role=Role.WEIGHT)
def _weights(op: MatMul, ctx: Ctx) -> Cost:
    chip, vfu = ctx.chip, ctx.chip.core.vfu
    m = map_weights(op.k, op.n, ctx.weight_bits, chip.array, chip.macro.arrays, pack=True)
    mvm = chip.macro.mvm_energy(ctx.input_bits, active_arrays=m.slices)
    # partial sums of the row blocks are added on the VFUs of the IMAs holding the matrix
    adds = (m.row_blocks - 1) * op.n
    add_s = vfu.time_s(math.ceil(adds / max(1, m.macros)), vfu.op_cycles("add")) if adds else 0.0
    rows = op.instances * op.m
    latency = rows * max(ctx.t_mvm_s, add_s) + ctx.t_mvm_s
    energy = (rows * m.blocks * mvm.total_j + rows * adds * vfu.op_energy_j("add")
              + _traffic_j(ctx, op.input_bytes + op.output_bytes))
    return Cost(latency, energy)


@rules.register(MatMul, role=Role.SCORES)
@rules.register(MatMul, role=Role.CONTEXT)
def _attention(op: MatMul, ctx: Ctx) -> Cost:
    chip = ctx.chip
    scores = op.role is Role.SCORES
    head_dim, seq = (op.k, op.n) if scores else (op.n, op.k)
    kv = map_kv(head_dim, seq, op.operands, 1, ctx.weight_bits, chip.array, chip.macro.arrays, pack=True)
    one = kv.k if scores else kv.v
    mvm = chip.macro.mvm_energy(ctx.input_bits, active_arrays=one.slices)
    writes = kv.k_row_writes_per_token if scores else kv.v_row_writes_per_token
    # per token: write its key (value) row, then every head's MVM in parallel
    per_token = chip.array.write_row_s + ctx.t_mvm_s
    queries = op.m * (op.instances // op.operands)  # query rows per K/V operand
    latency = queries * per_token + ctx.t_mvm_s
    out_bytes = op.output_bytes * (ctx.score_bytes if scores else 1)
    energy = (op.instances * op.m * one.blocks * mvm.total_j + ctx.tokens * writes * chip.array.write_energy_j
              + _traffic_j(ctx, op.input_bytes + out_bytes))
    return Cost(latency, energy)


def _vector(op: Softmax | LayerNorm | GELU, ctx: Ctx, steps: dict[str, int], with_exp: bool,
            in_bytes_per_elem: int) -> Cost:
    vfu = ctx.chip.core.vfu
    cycles = vfu.routine_cycles(steps) + (vfu.exp_cycles() if with_exp else 0)
    energy_per = vfu.routine_energy_j(steps) + (vfu.exp_energy_j() if with_exp else 0.0)
    elements = op.elements
    latency = vfu.time_s(math.ceil(elements / ctx.cores_per_layer), cycles)
    return Cost(latency, elements * energy_per + _traffic_j(ctx, elements * in_bytes_per_elem + op.output_bytes))


@rules.register(Softmax)
def _softmax(op: Softmax, ctx: Ctx) -> Cost:
    return _vector(op, ctx, SOFTMAX_STEPS, True, ctx.score_bytes)


@rules.register(LayerNorm)
def _layernorm(op: LayerNorm, ctx: Ctx) -> Cost:
    return _vector(op, ctx, LAYERNORM_STEPS, False, 1)


@rules.register(GELU)
def _gelu(op: GELU, ctx: Ctx) -> Cost:
    return _vector(op, ctx, GELU_STEPS, True, 1)


def place(graph: OpGraph, p: ParamSet) -> tuple[Chip, list[str], dict[str, int | bool]]:
    """The chip holding ``graph``'s model: all weights plus one layer's K and V."""
    chip = Chip.from_params(p)
    model = graph.model
    wb = p.i("model_weight_bits")
    per_layer = sum(map_weights(op.k, op.n, wb, chip.array, chip.macro.arrays, pack=True).macros
                    for op in model.of_type(MatMul) if op.role is Role.WEIGHT)
    w = model.workload
    kv = map_kv(w.head_dim, model.seq_len, w.heads, model.batch, wb, chip.array, chip.macro.arrays, pack=True)
    report = chip_capacity(chip, {"weights": model.layers * per_layer, "kv": kv.macros})
    notes: list[str] = []
    if not report.fits:
        if not p.b("model_scale_to_fit"):
            raise Unsupported(f"{report.summary()}; set model_scale_to_fit=true to scale the chip")
        chip = chip.with_tiles(report.tiles_required)
        notes.append(f"chip scaled from {report.tiles_available} to {chip.tiles} tiles: {report.summary()}")
    extra: dict[str, int | bool] = {
        "imas_required": report.required_macros, "imas_available": report.available_macros,
        "tiles": chip.tiles, "chip_scaled": not report.fits,
    }
    return chip, notes, extra


def estimate(graph: OpGraph, p: ParamSet) -> Estimate:
    """Latency, energy, area and memory of ``graph`` on the ISAAC-style chip."""
    if graph.workload.precision != "int8":
        raise Unsupported(f"isaac-reram runs INT8 models; {graph.workload.name!r} is {graph.workload.precision}")
    rules.check(graph)
    chip, notes, extra = place(graph, p)
    ctx = Ctx(chip=chip, input_bits=p.i("model_input_bits"), weight_bits=p.i("model_weight_bits"),
              score_bytes=p.i("model_score_bytes"), tokens=graph.tokens,
              cores_per_layer=max(1, chip.cores // graph.model.layers))
    b = EstimateBuilder()
    for op in graph.layer_ops:
        c = rules(op, ctx)
        b.add(op, graph.layers * c.latency_s, graph.layers * c.energy_j, default_category(op))
    b.static_energy_j = chip.leakage_w * b.latency_s
    b.area_mm2 = chip.area_mm2
    b.notes.extend(notes)
    working = max(op.input_bytes + op.output_bytes for op in graph.layer_ops)
    return b.build(memory_bytes=int(working), extra={**extra, "t_mvm_s": ctx.t_mvm_s,
                                                     "adc_energy_j": chip.macro.adc.energy_j})
