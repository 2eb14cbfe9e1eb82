"""GPU model: devices as hardware, one power law for the sustained clock, per-op roofline.

Accelerators are named ``<device>-<stack>`` (``a40-hf-bnb``, ``a100-40gb-tensorrt``);
devices, stacks and the physics shared by all devices are data in ``gpus.toml``,
with a source for every value.

Hardware (:class:`Device`)
--------------------------
A device is SMs, base and boost clocks, tensor-core operations per clock per SM
(INT8, FP16), CUDA-core FP32 flops per clock per SM, memory size, type and
bandwidth, power limit and idle power, die area and process node. Peaks are
derived: ``peak = SMs x ops/clock/SM x clock``.

Sustained clock (:func:`sustained_clock_hz`), the same law for every device
---------------------------------------------------------------------------
Dynamic energy is counted per event: one SM-cycle of full tensor-core (or
CUDA-core) activity costs ``e_cycle x v(f)``, a byte of DRAM traffic
``memory_energy_pj_per_bit x 8``, and a busy board draws a floor
``activity_floor x (tdp - idle) x (f / f_boost) x v(f)`` for clocks, control and
caches. ``e_cycle = sm_cycle_energy_7nm_j x (process_nm / 7)^process_energy_exponent``
(one constant for all boards, anchored on the A100). ``v(f)`` is the energy per
cycle relative to the boost clock: ``(max(f, f_base) / f_boost)^(a - 1)`` with
``a = dvfs_power_exponent`` (3: ``P = C V^2 f`` with the voltage rising with the
clock above the base clock; flat below it). The board power for a clock is
``idle + dynamic energy / latency``; the sustained clock is the highest clock at
or below the boost clock whose power fits in ``tdp_w`` (bisection; the power
rises monotonically with the clock). A 70 W card with a 1.59 GHz boost clock
therefore runs its tensor cores well below the clock its datasheet peak assumes,
and a 700 W card follows the same law.

Timing, per op of the graph (and per layer), at the sustained clock ``f``::

    cycles    = waves x (tile_m x tile_n x k x 2) / (ops/clock/SM) / compute_efficiency
    waves     = ceil(instances x ceil(m / tile_m) x ceil(n / tile_n) / SMs)
    t_compute = cycles / f
    t_memory  = bytes moved / (bandwidth x memory_efficiency)
    t_op      = max(t_compute, t_memory) + kernels x (kernel_overhead_s + kernel_overhead_cycles / f)

The per-SM rate is fixed, so fewer SMs give at least as many waves (never
faster), and more bandwidth never makes a point slower (the tests check both
over random parameters). The fixed cost of a kernel has a host side (``kernel_overhead_s``: eager
PyTorch's dispatch) and a GPU side counted in SM clock cycles
(``kernel_overhead_cycles``: launch, prologue, tail and drain of a TensorRT
kernel), which shrinks on a faster-clocked board. Non-linear ops (softmax, LayerNorm, GELU) run on CUDA
cores at ``vector_flops_per_element``. With ``fused_attention`` the scores never
reach memory (TensorRT's fused MHA); without it (eager PyTorch) the score and
probability matrices are written and read at ``score_bytes``.

Energy: the same events as the clock law, at the sustained clock (the floor
only while the GPU is busy: host-side dispatch gaps draw idle power), plus idle
power x latency when ``count_idle_power``. ``false`` reproduces the paper's
"nvidia-smi minus idle power" measurement: its idle is a board in P0 with the CUDA
context loaded, clocks up, so the busy floor is subtracted with it (the clock law
still counts the floor: the power limit sees the whole board).

Ops are costed by type (and, for matrix products, role) through a
:class:`~hastily_bench.costing.CostRules` registry; an op type without a rule
makes the point ``unsupported``.

Memory: weights (at the matmul format's width) plus the peak over ops of the
live activations (residual stream, the op's inputs and outputs in their stored
widths; unfused attention holds both the score and probability matrices,
O(h l^2)). More than the card's memory makes the point ``unsupported``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from hastily_bench.api import (
    GELU,
    AcceleratorSpec,
    Arithmetic,
    CostRules,
    Estimate,
    EstimateBuilder,
    LayerNorm,
    MatMul,
    Op,
    OpGraph,
    ParamSet,
    Role,
    Softmax,
    Unsupported,
    UsageError,
    default_category,
    hookimpl,
    load_package_toml,
    params_from_mapping,
)

PRESETS = "gpus.toml"
FORMAT_BYTES = {"int8": 1, "fp16": 2}
GIB = 1024**3


@lru_cache(maxsize=1)
def presets() -> dict[str, Any]:
    """The parsed ``gpus.toml``: ``{"physics": ..., "devices": {...}, "stacks": {...}}``."""
    return load_package_toml("hastily_bench.plugins", PRESETS)


def _stack_table(stacks: Mapping[str, Any], stack: str) -> dict[str, Any]:
    """A stack's parameters, after those of the stack it ``inherits`` from."""
    st = stacks[stack]
    table = _stack_table(stacks, st["inherits"]) if "inherits" in st else {}
    table.update(st["params"])
    return table


def device_params(device: str, stack: str) -> ParamSet:
    """Merged parameters of ``device`` running ``stack`` (physics, device, stack)."""
    doc = presets()
    table = dict(doc["physics"]["params"])
    table.update(doc["devices"][device]["params"])
    table.update(_stack_table(doc["stacks"], stack))
    return params_from_mapping(table, origin=f"{PRESETS}:{device}-{stack}")


# --- hardware ---------------------------------------------------------------------


@dataclass(frozen=True)
class Device:
    """The hardware of one board, from its parameters (see :func:`device_from_params`)."""

    sm_count: int
    base_hz: float
    boost_hz: float
    ops_per_clock_per_sm: Mapping[str, int]  # tensor cores: "int8", "fp16"
    fp32_flops_per_clock_per_sm: int
    memory_bytes: float
    bandwidth_bps: float
    power_limit_w: float
    idle_w: float
    sm_cycle_energy_j: float  # at the boost clock's voltage
    dvfs_power_exponent: float
    memory_energy_j_per_byte: float
    area_mm2: float

    def peak_ops_per_s(self, fmt: str, clock_hz: float | None = None) -> float:
        """Tensor-core peak in ``fmt`` at ``clock_hz`` (the boost clock by default)."""
        f = self.boost_hz if clock_hz is None else clock_hz
        return self.sm_count * self.ops_per_clock_per_sm[fmt] * f

    def cycle_energy_factor(self, clock_hz: float) -> float:
        """Energy per SM-cycle at ``clock_hz`` relative to the boost clock (``v(f)``)."""
        return float((max(clock_hz, self.base_hz) / self.boost_hz) ** (self.dvfs_power_exponent - 1.0))


def check_params(params: ParamSet) -> None:
    """Cross-parameter bounds (single-parameter bounds are the presets' ``min``/``max``).

    Raises :class:`UsageError` with one line naming the parameters.
    """
    tdp, idle = params.f("tdp_w"), params.f("idle_w")
    if idle > tdp:
        raise UsageError(f"idle_w ({idle:g} W) exceeds tdp_w ({tdp:g} W)")
    base, boost = params.f("base_clock_mhz"), params.f("boost_clock_mhz")
    if base > boost:
        raise UsageError(f"base_clock_mhz ({base:g}) exceeds boost_clock_mhz ({boost:g})")


def device_from_params(params: ParamSet) -> Device:
    """The :class:`Device` a parameter set describes (after :func:`check_params`)."""
    check_params(params)
    node_scale = (params.f("process_nm") / 7.0) ** params.f("process_energy_exponent")
    return Device(
        sm_count=params.i("sm_count"),
        base_hz=params.f("base_clock_mhz") * 1e6,
        boost_hz=params.f("boost_clock_mhz") * 1e6,
        ops_per_clock_per_sm={"int8": params.i("int8_ops_per_clock_per_sm"),
                              "fp16": params.i("fp16_ops_per_clock_per_sm")},
        fp32_flops_per_clock_per_sm=params.i("fp32_flops_per_clock_per_sm"),
        memory_bytes=params.f("memory_gib") * GIB,
        bandwidth_bps=params.f("memory_bandwidth_gbs") * 1e9,
        power_limit_w=params.f("tdp_w"),
        idle_w=params.f("idle_w"),
        sm_cycle_energy_j=params.f("sm_cycle_energy_7nm_j") * node_scale,
        dvfs_power_exponent=params.f("dvfs_power_exponent"),
        memory_energy_j_per_byte=params.f("memory_energy_pj_per_bit") * 8e-12,
        area_mm2=params.f("die_area_mm2"),
    )


# --- work, independent of the clock -----------------------------------------------


@dataclass(frozen=True)
class Work:
    """One op's (or fused group's) work for one layer, independent of the clock.

    ``cycles``: clock cycles on the critical path (waves x per-SM cycles);
    ``sm_cycles``: SM-cycles of useful work summed over SMs (what costs energy);
    ``t_memory_s``: DRAM time at the modelled bandwidth; ``bytes_``: DRAM traffic.
    """

    op: Op | str  # an op of the graph, or a name for a fused group
    category: str
    cycles: float
    sm_cycles: float
    t_memory_s: float
    bytes_: float
    kernels: int
    live: float  # live activation bytes while it runs


def _matmul_cycles(op: MatMul, params: ParamSet, dev: Device, fmt: str) -> tuple[float, float]:
    """(critical-path cycles, useful SM-cycles) of a matmul op for one layer."""
    per_sm = dev.ops_per_clock_per_sm[fmt]
    sms = dev.sm_count
    eff = params.f("compute_efficiency")
    tm, tn = params.i("tile_m"), params.i("tile_n")
    tiles = op.instances * math.ceil(op.m / tm) * math.ceil(op.n / tn)
    waves = math.ceil(tiles / sms)
    # a wave runs one tile per SM; tiles are capped at the real matrix size
    tile_ops = 2.0 * min(tm, op.m) * min(tn, op.n) * op.k
    ideal = op.ops / per_sm  # SM-cycles
    return max(waves * tile_ops / per_sm, ideal / sms) / eff, ideal


def _vector_cycles(elements: int, params: ParamSet, dev: Device) -> tuple[float, float]:
    """(critical-path cycles, SM-cycles) of ``elements`` of CUDA-core work."""
    sm_cycles = elements * params.f("vector_flops_per_element") / dev.fp32_flops_per_clock_per_sm
    return sm_cycles / dev.sm_count, sm_cycles


@dataclass
class _Ctx:
    """Everything the cost rules need for one point."""

    graph: OpGraph
    params: ParamSet
    dev: Device
    act: float  # stored activation width over the workload's element width
    score: float  # stored score width over the workload's element width
    wbytes: float  # stored weight width over the workload's element width
    bw: float  # reached bandwidth, bytes/s
    #: GELU ops fused into the weight product that produces them (TensorRT epilogues)
    fused_epilogue: dict[str, Op]

    @property
    def residual_bytes(self) -> float:
        g = self.graph
        return g.tokens * g.workload.hidden * self.act * g.workload.bytes_per_element


rules: CostRules[Work] = CostRules("GPU model")


@rules.register(MatMul)
def _matmul(op: MatMul, ctx: _Ctx) -> Work:
    p, graph = ctx.params, ctx.graph
    fmt = p.s("weight_matmul_format") if op.role is Role.WEIGHT else p.s("attention_matmul_format")
    cyc, ideal = _matmul_cycles(op, p, ctx.dev, fmt)
    in_b = op.input_bytes * ctx.act
    out_b = op.output_bytes * ctx.act
    if op.role is Role.SCORES:
        out_b = op.output_bytes * ctx.score
    elif op.role is Role.CONTEXT:
        # probabilities (score width) and V (activation width)
        v_bytes = graph.tokens * graph.workload.hidden * graph.workload.bytes_per_element
        in_b = (op.input_bytes - v_bytes) * ctx.score + v_bytes * ctx.act
    moved = op.weight_bytes * ctx.wbytes + in_b + out_b
    epilogue = ctx.fused_epilogue.get(op.name)
    if epilogue is not None:
        cv, iv = _vector_cycles(epilogue.elements, p, ctx.dev)
        cyc, ideal = cyc + cv, ideal + iv
    kernels = p.i("kernels_per_weight_matmul") if op.role is Role.WEIGHT else max(
        1, p.i("kernels_per_attention") // 2)
    return Work(op, default_category(op), cyc, ideal, moved / ctx.bw, moved, kernels,
                ctx.residual_bytes + in_b + out_b)


def _vector_rule(kernels_param: str | None, width: str) -> Any:
    def rule(op: Op, ctx: _Ctx) -> Work:
        p = ctx.params
        w = ctx.score if width == "score" else ctx.act
        # softmax: scores in, probabilities out (a separate scale/mask pass is folded into
        # kernels_per_attention); LayerNorm: residual + x in, y out
        moved = (op.input_bytes + op.output_bytes) * w
        cyc, ideal = _vector_cycles(op.elements, p, ctx.dev)
        live = ctx.residual_bytes + (op.input_bytes * w * 2 if width == "score" else moved)
        kernels = 1 if kernels_param is None else p.i(kernels_param)
        return Work(op, default_category(op), cyc, ideal, moved / ctx.bw, moved, kernels, live)
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


def layer_work(graph: OpGraph, params: ParamSet, dev: Device) -> list[Work]:
    """The work of one layer, op by op (fused groups as one entry), independent of the clock."""
    rules.check(graph)
    elem = graph.workload.bytes_per_element
    fused_epilogue: dict[str, Op] = {}
    if params.b("fused_epilogues"):
        for gelu in graph.of_type(GELU):
            for producer in graph.producers(gelu):
                if isinstance(producer, MatMul) and producer.role is Role.WEIGHT:
                    fused_epilogue[producer.name] = gelu
    ctx = _Ctx(graph, params, dev, params.i("activation_bytes") / elem,
               params.i("score_bytes") / elem, FORMAT_BYTES[params.s("weight_matmul_format")] / elem,
               dev.bandwidth_bps * params.f("memory_efficiency"), fused_epilogue)
    works: list[Work] = []
    skip: list[Op] = list(fused_epilogue.values())  # ops costed inside another kernel
    fused = _fused_attention(graph) if params.b("fused_attention") else None
    if fused is not None:
        # One kernel: both products and the softmax; scores stay on chip.
        qk, sm, sv = fused
        fmt = params.s("attention_matmul_format")
        c1, i1 = _matmul_cycles(qk, params, dev, fmt)
        c2, i2 = _matmul_cycles(sv, params, dev, fmt)
        cv, iv = _vector_cycles(sm.elements, params, dev)
        moved = 3 * graph.tokens * graph.workload.hidden * elem * ctx.act + sv.output_bytes * ctx.act
        works.append(Work("attention", "attention",
                          (c1 + c2) / params.f("attention_efficiency") + cv, i1 + i2 + iv,
                          moved / ctx.bw, moved, params.i("kernels_per_attention"),
                          ctx.residual_bytes + moved))
        skip += [qk, sm, sv]
    works.extend(rules(op, ctx) for op in graph.layer_ops if not any(op is x for x in skip))
    return works


# --- the clock law ----------------------------------------------------------------


def kernel_overhead_s(params: ParamSet, clock_hz: float) -> float:
    """Fixed cost of one kernel: host-side seconds plus GPU-side cycles at the SM clock."""
    return params.f("kernel_overhead_s") + params.f("kernel_overhead_cycles") / clock_hz


def _latency_s(works: list[Work], layers: int, overhead_s: float, clock_hz: float) -> float:
    return layers * sum(max(w.cycles / clock_hz, w.t_memory_s) + w.kernels * overhead_s
                        for w in works)


def dynamic_power_w(works: list[Work], layers: int, params: ParamSet, dev: Device,
                    clock_hz: float) -> float:
    """Average dynamic board power (above idle) of running ``works`` at ``clock_hz``."""
    t = _latency_s(works, layers, kernel_overhead_s(params, clock_hz), clock_hz)
    if t <= 0:
        return 0.0
    v = dev.cycle_energy_factor(clock_hz)
    events = layers * sum(w.sm_cycles * dev.sm_cycle_energy_j * v
                          + w.bytes_ * dev.memory_energy_j_per_byte for w in works)
    host_s = layers * sum(w.kernels for w in works) * params.f("kernel_overhead_s")
    return (events + _floor_power_w(params, dev, clock_hz) * (t - host_s)) / t


def _floor_power_w(params: ParamSet, dev: Device, clock_hz: float) -> float:
    """Clocks, control and caches of a busy board: a share of the dynamic range, scaled by f V^2."""
    return (params.f("activity_floor") * (dev.power_limit_w - dev.idle_w)
            * clock_hz / dev.boost_hz * dev.cycle_energy_factor(clock_hz))


def sustained_clock_hz(works: list[Work], layers: int, params: ParamSet, dev: Device) -> float:
    """The highest clock <= boost whose board power fits the power limit (the law above).

    Power rises monotonically with the clock (more energy per cycle, less time), so
    bisection finds it; a board that cannot fit even at 1% of its boost clock runs there.
    """
    budget = dev.power_limit_w - dev.idle_w
    if dynamic_power_w(works, layers, params, dev, dev.boost_hz) <= budget:
        return dev.boost_hz
    lo, hi = 0.01 * dev.boost_hz, dev.boost_hz
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        if dynamic_power_w(works, layers, params, dev, mid) <= budget:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-6 * dev.boost_hz:
            break
    return lo


def full_load_clock_hz(params: ParamSet, dev: Device) -> float:
    """The clock the law gives with every SM's tensor cores busy and no memory traffic.

    A property of the board (reported as ``extra.clock_full_load_mhz``): the T4 and L4
    sit far below their boost clocks there, the A100 (the anchor) near its boost clock.
    """
    cycles = 1e6
    busy = Work("full load", "matmul", cycles, cycles * dev.sm_count, 0.0, 0.0, 0, 0.0)
    return sustained_clock_hz([busy], 1, params, dev)


# --- memory capacity --------------------------------------------------------------


def weight_bytes(graph: OpGraph, params: ParamSet) -> float:
    """Bytes of the whole stack's weights at the weight matmuls' format."""
    return graph.weight_bytes * FORMAT_BYTES[params.s("weight_matmul_format")] / (
        graph.workload.bytes_per_element)


def check_memory(graph: OpGraph, params: ParamSet, dev: Device, working_bytes: float) -> float:
    """Weights plus working memory, in bytes; :class:`Unsupported` when above the card's memory."""
    weights = weight_bytes(graph, params)
    required = weights + working_bytes
    if required > dev.memory_bytes:
        raise Unsupported(
            f"needs {required / 1e9:.3g} GB of GPU memory (weights {weights / 1e9:.3g} GB + working "
            f"{working_bytes / 1e9:.3g} GB) but the card has {dev.memory_bytes / 1e9:.3g} GB "
            f"({int(required)} > {int(dev.memory_bytes)} bytes)")
    return required


# --- the estimate -----------------------------------------------------------------


def estimate(graph: OpGraph, params: ParamSet) -> Estimate:
    """Latency, energy and memory of ``graph`` on a GPU described by ``params``."""
    dev = device_from_params(params)
    layers = graph.layers
    works = layer_work(graph, params, dev)
    peak_live = max((w.live for w in works), default=0.0)
    required = check_memory(graph, params, dev, peak_live)
    limited = params.b("power_limited")
    clock = sustained_clock_hz(works, layers, params, dev) if limited else dev.boost_hz
    full_load = full_load_clock_hz(params, dev) if limited else dev.boost_hz
    overhead = kernel_overhead_s(params, clock)
    v = dev.cycle_energy_factor(clock)
    # The paper's convention (count_idle_power = false) subtracts the power of the board
    # sitting in P0 with its context loaded: idle plus the busy floor of clocks and control.
    whole_board = params.b("count_idle_power")
    idle_counted = dev.idle_w if whole_board else 0.0
    floor = _floor_power_w(params, dev, clock) if whole_board else 0.0

    b = EstimateBuilder()
    total_kernels = 0
    for w in works:
        t = max(w.cycles / clock, w.t_memory_s)
        e = w.sm_cycles * dev.sm_cycle_energy_j * v + w.bytes_ * dev.memory_energy_j_per_byte
        b.add(w.op, layers * t, layers * (e + (floor + idle_counted) * t), w.category)
        total_kernels += w.kernels
    # Host-side dispatch leaves the GPU waiting at idle power; GPU-side kernel cycles draw the floor.
    t_host = layers * total_kernels * params.f("kernel_overhead_s")
    t_gpu = layers * total_kernels * (overhead - params.f("kernel_overhead_s"))
    if t_host + t_gpu > 0:
        b.add("kernel_overhead", t_host + t_gpu,
              t_host * idle_counted + t_gpu * (floor + idle_counted), "overhead")
    if not whole_board:
        b.notes.append("energy excludes idle power and the busy floor (board power minus P0 idle, "
                       "as the paper measured)")
    b.area_mm2 = dev.area_mm2
    return b.build(memory_bytes=int(round(peak_live)),
                   extra={"kernels": layers * total_kernels, "clock_mhz": round(clock / 1e6, 1),
                          "clock_full_load_mhz": round(full_load / 1e6, 1),
                          "memory_required_bytes": int(round(required)),
                          "memory_available_bytes": int(dev.memory_bytes)})


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
                        else "NVIDIA TensorRT BERT demo, A100 INT8 latencies (fitted); other "
                             "boards and FP16: validation" if stack.startswith("tensorrt")
                        else "datasheet roofline"
                    ),
                )
            )
