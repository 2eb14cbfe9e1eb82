"""GPU model: a per-operation roofline with wave quantisation, launch overhead and stacks.

Accelerators are named ``<device>-<stack>`` (``a40-hf-bnb``, ``a100-40gb-tensorrt``);
devices and stacks are data in ``gpus.toml`` with a source for every value.

Timing, per op of the graph (and per layer)::

    t_compute = waves x (tile_m x tile_n x k x 2) / (peak / SMs) / compute_efficiency
    waves     = ceil(instances x ceil(m / tile_m) x ceil(n / tile_n) / SMs)
    t_memory  = bytes moved / (bandwidth x memory_efficiency)
    t_op      = max(t_compute, t_memory) + kernels x kernel_overhead_s

Wave quantisation is what makes small batches slow on a big GPU: a 128-token
matrix product fills few of the SMs. Non-linear ops (softmax, LayerNorm, GELU)
run on CUDA cores at ``vector_flops_per_element``. With ``fused_attention`` the
scores never reach memory (TensorRT's fused MHA); without it (eager PyTorch) the
score and probability matrices are written and read at ``score_bytes``.

Energy: the board draws ``idle_w`` plus ``(tdp_w - idle_w) x activity``, with
``activity = activity_floor + (1 - activity_floor) x utilisation``, with
``utilisation = (t_compute_ideal + memory_power_fraction x t_memory_ideal) / t_op``
(ideal = at peak rate): tensor cores at full tilt draw the whole dynamic range,
a kernel streaming memory at full bandwidth draws ``memory_power_fraction`` of
it. Launch overhead draws the floor only. ``count_idle_power = false`` reproduces the
paper's "nvidia-smi minus idle power" measurement.

Memory: the peak over ops of the live activations (residual stream, the op's
inputs and outputs in their stored widths); unfused attention holds both the
score and probability matrices, O(h l^2).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from hastily_bench.api import (
    GELU,
    AcceleratorSpec,
    Arithmetic,
    CostRules,
    EstimateBuilder,
    Estimate,
    LayerNorm,
    MatMul,
    Op,
    OpGraph,
    ParamSet,
    Role,
    Softmax,
    UsageError,
    default_category,
    hookimpl,
    load_package_toml,
    params_from_mapping,
)

PRESETS = "gpus.toml"



@lru_cache(maxsize=1)
def presets() -> dict[str, Any]:
    """The parsed ``gpus.toml``: ``{"devices": {...}, "stacks": {...}}``."""
    return load_package_toml("hastily_bench.plugins", PRESETS)


def device_params(device: str, stack: str) -> ParamSet:
    """Merged parameters of ``device`` running ``stack``."""
    doc = presets()
    table = dict(doc["devices"][device]["params"])
    table.update(doc["stacks"][stack]["params"])
    return params_from_mapping(table, origin=f"{PRESETS}:{device}-{stack}")


def _peak_ops_per_s(params: ParamSet, fmt: str) -> float:
    return params.f("peak_int8_tops") * 1e12 if fmt == "int8" else params.f("peak_fp16_tflops") * 1e12


def _matmul_compute_s(op: Op, params: ParamSet, fmt: str) -> tuple[float, float]:
    """(modelled, ideal) compute seconds of a matmul op for one layer."""
    peak = _peak_ops_per_s(params, fmt)
    sms = params.i("sm_count")
    tm, tn = params.i("tile_m"), params.i("tile_n")
    tiles = op.instances * math.ceil(op.m / tm) * math.ceil(op.n / tn)
    waves = math.ceil(tiles / sms)
    # a wave runs one tile per SM; tiles are capped at the real matrix size
    tile_ops = 2.0 * min(tm, op.m) * min(tn, op.n) * op.k
    modelled = waves * tile_ops / (peak / sms) / params.f("compute_efficiency")
    return max(modelled, op.ops / peak / params.f("compute_efficiency")), op.ops / peak


def _vector_compute_s(elements: int, params: ParamSet) -> float:
    return elements * params.f("vector_flops_per_element") / (params.f("peak_fp32_tflops") * 1e12)


@dataclass
class _Ctx:
    """Everything the cost rules need for one point."""

    graph: OpGraph
    params: ParamSet
    act: float  # stored activation width over the workload's element width
    score: float  # stored score width over the workload's element width
    bw: float
    mem_eff: float
    #: GELU ops fused into the weight product that produces them (TensorRT epilogues)
    fused_epilogue: dict[str, Op]


@dataclass(frozen=True)
class _Cost:
    """One op's time (at the modelled rate), its ideal compute and memory times, kernels and
    live bytes."""

    t: float
    t_comp: float
    t_mem: float
    kernels: int
    live: float


rules: CostRules[_Cost] = CostRules("GPU model")


@rules.register(MatMul)
def _matmul(op: MatMul, ctx: _Ctx) -> _Cost:
    p, graph = ctx.params, ctx.graph
    fmt = p.s("weight_matmul_format") if op.role is Role.WEIGHT else p.s("attention_matmul_format")
    t_c, t_i = _matmul_compute_s(op, p, fmt)
    in_b = op.input_bytes * ctx.act
    out_b = op.output_bytes * ctx.act
    if op.role is Role.SCORES:
        out_b = op.output_bytes * ctx.score
    elif op.role is Role.CONTEXT:
        # probabilities (score width) and V (activation width)
        v_bytes = graph.tokens * graph.workload.hidden * graph.workload.bytes_per_element
        in_b = (op.input_bytes - v_bytes) * ctx.score + v_bytes * ctx.act
    moved = op.weight_bytes + in_b + out_b
    epilogue = ctx.fused_epilogue.get(op.name)
    if epilogue is not None:
        t_c += _vector_compute_s(epilogue.elements, p)
    kernels = p.i("kernels_per_weight_matmul") if op.role is Role.WEIGHT else max(
        1, p.i("kernels_per_attention") // 2)
    t = max(t_c, moved / (ctx.bw * ctx.mem_eff))
    residual = graph.tokens * graph.workload.hidden * ctx.act * graph.workload.bytes_per_element
    return _Cost(t, t_i, moved / ctx.bw, kernels, residual + in_b + out_b)


def _vector_rule(kernels_param: str | None, width: str) -> Any:
    def rule(op: Op, ctx: _Ctx) -> _Cost:
        p, graph = ctx.params, ctx.graph
        w = ctx.score if width == "score" else ctx.act
        # softmax: scores in, probabilities out (a separate scale/mask pass is folded into
        # kernels_per_attention); LayerNorm: residual + x in, y out
        moved = (op.input_bytes + op.output_bytes) * w
        t_c = _vector_compute_s(op.elements, p)
        t = max(t_c, moved / (ctx.bw * ctx.mem_eff))
        residual = graph.tokens * graph.workload.hidden * ctx.act * graph.workload.bytes_per_element
        live = residual + (op.input_bytes * w * 2 if width == "score" else moved)  # softmax: scores and probs alive
        kernels = 1 if kernels_param is None else p.i(kernels_param)
        return _Cost(t, t_c, moved / ctx.bw, kernels, live)
    return rule


rules.register(Softmax)(_vector_rule(None, "score"))
rules.register(LayerNorm)(_vector_rule("kernels_per_layernorm", "act"))
rules.register(GELU)(_vector_rule("kernels_per_gelu", "act"))


def _fused_attention(graph: OpGraph) -> tuple[MatMul, Softmax, MatMul] | None:
    """Q K^T, its softmax and S V, when all three are in the graph (one fused kernel)."""
    scores = graph.matmuls(Role.SCORES)
    context = graph.matmuls(Role.CONTEXT)
    softmax = tuple(graph.of_type(Softmax))
    if len(scores) == len(context) == len(softmax) == 1:
        return scores[0], softmax[0], context[0]
    return None


def estimate(graph: OpGraph, params: ParamSet) -> Estimate:
    """Latency, energy and memory of ``graph`` on a GPU described by ``params``."""
    rules.check(graph)
    elem = graph.workload.bytes_per_element
    act = params.i("activation_bytes") / elem  # graph bytes are at workload precision
    bw = params.f("memory_bandwidth_gbs") * 1e9
    mem_eff = params.f("memory_efficiency")
    tdp, idle = params.f("tdp_w"), params.f("idle_w")
    floor = params.f("activity_floor")
    idle_counted = idle if params.b("count_idle_power") else 0.0
    mem_frac = params.f("memory_power_fraction")
    layers = graph.layers
    residual_bytes = graph.tokens * graph.workload.hidden * act * elem

    fused_epilogue: dict[str, Op] = {}
    if params.b("fused_epilogues"):
        for gelu in graph.of_type(GELU):
            for producer in graph.producers(gelu):
                if isinstance(producer, MatMul) and producer.role is Role.WEIGHT:
                    fused_epilogue[producer.name] = gelu
    ctx = _Ctx(graph, params, act, params.i("score_bytes") / elem, bw, mem_eff, fused_epilogue)

    b = EstimateBuilder()
    total_kernels = 0
    peak_live = 0.0

    def add(op: Op | str, category: str, cost: _Cost) -> None:
        nonlocal total_kernels, peak_live
        util = min(1.0, (cost.t_comp + mem_frac * cost.t_mem) / cost.t) if cost.t > 0 else 0.0
        power = idle_counted + (tdp - idle) * (floor + (1.0 - floor) * util)
        b.add(op, layers * cost.t, layers * cost.t * power, category)
        total_kernels += cost.kernels
        peak_live = max(peak_live, cost.live)

    skip: set[str] = {gelu.name for gelu in fused_epilogue.values()}
    fused = _fused_attention(graph) if params.b("fused_attention") else None
    if fused is not None:
        # One kernel: both products and the softmax; scores stay on chip.
        qk, sm, sv = fused
        fmt = params.s("attention_matmul_format")
        c1, i1 = _matmul_compute_s(qk, params, fmt)
        c2, i2 = _matmul_compute_s(sv, params, fmt)
        vec = _vector_compute_s(sm.elements, params)
        qkv_bytes = 3 * graph.tokens * graph.workload.hidden * elem * act
        out_bytes = sv.output_bytes * act
        t_mem = (qkv_bytes + out_bytes) / (bw * mem_eff)
        t = max((c1 + c2) / params.f("attention_efficiency") + vec, t_mem)
        add("attention", "attention", _Cost(t, i1 + i2, (qkv_bytes + out_bytes) / bw,
                                            params.i("kernels_per_attention"),
                                            residual_bytes + qkv_bytes + out_bytes))
        skip |= {qk.name, sm.name, sv.name}

    for op in graph.layer_ops:
        if op.name not in skip:
            add(op, default_category(op), rules(op, ctx))

    t_overhead = layers * total_kernels * params.f("kernel_overhead_s")
    if t_overhead > 0:
        power = idle_counted + (tdp - idle) * floor
        b.add("kernel_overhead", t_overhead, t_overhead * power, "overhead")
    if not params.b("count_idle_power"):
        b.notes.append("energy excludes idle power (board power minus idle, as the paper measured)")
    b.area_mm2 = params.f("die_area_mm2")
    return b.build(memory_bytes=int(round(peak_live)), extra={"kernels": layers * total_kernels})


def check_params(params: ParamSet) -> None:
    """Cross-parameter bounds a single parameter's range cannot express."""
    tdp, idle = params.f("tdp_w"), params.f("idle_w")
    if idle > tdp:
        raise UsageError(f"idle_w ({idle:g} W) exceeds tdp_w ({tdp:g} W)")


def arithmetic(params: ParamSet) -> Arithmetic:
    """GPUs compute the softmax exponent exactly; matmuls in the stack's format."""
    return Arithmetic(matmul=params.s("attention_matmul_format"), softmax="exact")


@hookimpl
def hastily_register_accelerators(register: Any) -> None:
    doc = presets()
    for device, dev in doc["devices"].items():
        defaults = set(dev.get("default_stacks", ()))
        for stack, st in doc["stacks"].items():
            register(
                AcceleratorSpec(
                    name=f"{device}-{stack}",
                    description=f"{dev['description']}; {st['description']}",
                    params=device_params(device, stack),
                    estimate=estimate,
                    arithmetic=arithmetic,
                    default=stack in defaults,
                    baseline=stack in set(dev.get("baseline_stacks", ())),
                    check_params=check_params,
                    family="gpu",
                    reference=(
                        "HASTILY paper GPU baseline (A40, HF + bitsandbytes)" if stack == "hf-bnb"
                        else "NVIDIA TensorRT BERT demo, A100 INT8 latencies" if stack == "tensorrt"
                        else "datasheet roofline"
                    ),
                )
            )
