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
from functools import lru_cache
from typing import Any

from hastily_bench.api import (
    GELU,
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
    UsageError,
    hookimpl,
    load_package_toml,
    params_from_mapping,
)

PRESETS = "gpus.toml"
ATTENTION_OPS = ("attn_scores", "softmax", "attn_context")



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


def _category(op: Op) -> str:
    if op.kind == MATMUL:
        return "matmul" if op.weight_stationary else "attention"
    if op.kind == SOFTMAX:
        return "softmax"
    return "vector"


def estimate(graph: OpGraph, params: ParamSet) -> Estimate:
    """Latency, energy and memory of ``graph`` on a GPU described by ``params``."""
    elem = graph.workload.bytes_per_element
    act = params.i("activation_bytes") / elem  # graph bytes are at workload precision
    score = params.i("score_bytes") / elem
    bw = params.f("memory_bandwidth_gbs") * 1e9
    mem_eff = params.f("memory_efficiency")
    overhead = params.f("kernel_overhead_s")
    fused_attn = params.b("fused_attention")
    fused_epi = params.b("fused_epilogues")
    tdp, idle = params.f("tdp_w"), params.f("idle_w")
    if idle > tdp:
        raise UsageError(f"idle_w ({idle:g} W) exceeds tdp_w ({tdp:g} W)")
    floor = params.f("activity_floor")
    idle_counted = idle if params.b("count_idle_power") else 0.0
    layers = graph.layers
    residual_bytes = graph.tokens * graph.workload.hidden * act * elem

    breakdown: list[OpCost] = []
    total_kernels = 0
    peak_live = 0.0

    mem_frac = params.f("memory_power_fraction")

    def add(name: str, category: str, t_work: float, t_comp: float, t_mem: float,
            kernels: int) -> None:
        """Record an op; ``t_comp``/``t_mem`` are its ideal (peak-rate) compute and memory times."""
        nonlocal total_kernels
        util = min(1.0, (t_comp + mem_frac * t_mem) / t_work) if t_work > 0 else 0.0
        power = idle_counted + (tdp - idle) * (floor + (1.0 - floor) * util)
        breakdown.append(OpCost(name, layers * t_work, layers * t_work * power, category))
        total_kernels += kernels

    present = {op.name for op in graph.layer_ops}
    fused_attn = fused_attn and all(n in present for n in ATTENTION_OPS)
    fused_epi = fused_epi and "gelu" in present
    if fused_attn:
        # One kernel: both products and the softmax; scores stay on chip.
        fmt = params.s("attention_matmul_format")
        qk, sv, sm = graph.op("attn_scores"), graph.op("attn_context"), graph.op("softmax")
        c1, i1 = _matmul_compute_s(qk, params, fmt)
        c2, i2 = _matmul_compute_s(sv, params, fmt)
        vec = _vector_compute_s(sm.elements, params)
        qkv_bytes = 3 * graph.tokens * graph.workload.hidden * elem * act
        out_bytes = sv.output_bytes * act
        t_mem = (qkv_bytes + out_bytes) / (bw * mem_eff)
        t = max((c1 + c2) / params.f("attention_efficiency") + vec, t_mem)
        add("attention", "attention", t, i1 + i2, (qkv_bytes + out_bytes) / bw,
            params.i("kernels_per_attention"))
        peak_live = max(peak_live, residual_bytes + qkv_bytes + out_bytes)

    for op in graph.layer_ops:
        if fused_attn and op.name in ATTENTION_OPS:
            continue
        if op.kind == MATMUL:
            fmt = params.s("weight_matmul_format") if op.weight_stationary else params.s(
                "attention_matmul_format")
            t_c, t_i = _matmul_compute_s(op, params, fmt)
            in_b = op.input_bytes * act
            out_b = op.output_bytes * act
            if op.name == "attn_scores":
                out_b = op.output_bytes * score
            elif op.name == "attn_context":
                # probabilities (score width) and V (activation width)
                v_bytes = graph.tokens * graph.workload.hidden * elem
                in_b = (op.input_bytes - v_bytes) * score + v_bytes * act
            moved = op.weight_bytes + in_b + out_b
            if op.name == "ffn_up" and fused_epi:
                t_c += _vector_compute_s(graph.op("gelu").elements, params)
            kernels = params.i("kernels_per_weight_matmul") if op.weight_stationary else max(
                1, params.i("kernels_per_attention") // 2)
            t = max(t_c, moved / (bw * mem_eff))
            add(op.name, _category(op), t, t_i, moved / bw, kernels)
            peak_live = max(peak_live, residual_bytes + in_b + out_b)
        else:
            if op.kind == GELU and fused_epi:
                continue
            width = score if op.kind == SOFTMAX else act
            # softmax: scores in, probabilities out (and a separate scale/mask pass
            # is folded into kernels_per_attention); LayerNorm: residual + x in, y out
            moved = (op.input_bytes + op.output_bytes) * width
            kernels = {SOFTMAX: 1, LAYERNORM: params.i("kernels_per_layernorm"),
                       GELU: params.i("kernels_per_gelu")}[op.kind]
            t_c = _vector_compute_s(op.elements, params)
            t = max(t_c, moved / (bw * mem_eff))
            add(op.name, _category(op), t, t_c, moved / bw, kernels)
            live = residual_bytes + moved
            if op.kind == SOFTMAX:
                live = residual_bytes + op.input_bytes * width * 2  # scores and probs alive
            peak_live = max(peak_live, live)

    t_overhead = layers * total_kernels * overhead
    if t_overhead > 0:
        power = idle_counted + (tdp - idle) * floor
        breakdown.append(OpCost("kernel_overhead", t_overhead, t_overhead * power, "overhead"))
    notes = () if params.b("count_idle_power") else (
        "energy excludes idle power (board power minus idle, as the paper measured)",)
    return Estimate.from_breakdown(
        breakdown,
        notes=notes,
        memory_bytes=int(round(peak_live)),
        extra={"kernels": layers * total_kernels, "die_area_mm2": params.f("die_area_mm2")},
    )


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
                    family="gpu",
                    reference=(
                        "HASTILY paper GPU baseline (A40, HF + bitsandbytes)" if stack == "hf-bnb"
                        else "NVIDIA TensorRT BERT demo, A100 INT8 latencies" if stack == "tensorrt"
                        else "datasheet roofline"
                    ),
                )
            )
