"""Where a sweep point's time goes: the accelerator model vs the sweep harness.

Run: python tools/bench_sweep.py [--points N] [--accelerator NAME] [--repeats R]

Times, side by side in one process (best of R, CPU microseconds per point), over the
first N points of a sweep of the built-in CIM model's VFU width, clock and ADC
resolution at four sequence lengths:

* model: the plugin's own work, ``spec.check_params(params)`` (when it has one) and
  ``spec.estimate(graph, params)``, parameters already built;
* estimate_point: the public API's point (checks, params_hash, result);
* row: the JSON Lines row (``Result.json_line``);

Points repeat ``--repeats`` times (best of), so memoised chips, mappings and stages are
warm: this is the floor of a point's cost. A sweep's single pass meets each memo key a few
times only; ``hastily-bench sweep`` prints the end-to-end figure.
* chunk: the whole worker path (``Evaluator.run_chunk``: all of the above, the
  feasibility test and the chunk's Pareto front).

``harness = chunk - model``. End-to-end points/s with executors and the parent
writing rows: ``hastily-bench sweep ...`` prints them (docs/sweeps.md).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

from hastily_bench.api import PluginHost, estimate_point
from hastily_bench.sweep import prepare


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--points", type=int, default=2000)
    ap.add_argument("--accelerator", default="hastily")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    host = PluginHost()
    a = args.accelerator
    params = host.accelerator(a).spec.params

    def pick(*names: str) -> str:
        return next(n for n in names if n in params)

    grid = [f"{a}.{pick('adc_bits')}=4:8:+1", f"{a}.{pick('vfu_lanes')}=8:128:x2",
            f"{a}.{pick('clock_hz', 'chip_clock_hz')}=0.5e9:2e9:40"]
    spec, ev = prepare(host, workloads=["bert-base"], accelerators=[a],
                       seq_lens=[256, 512, 1024, 2048], grid=grid)
    n = min(args.points, spec.total)
    pts = list(spec.iter_range(0, n))
    built = []
    for wi, si, bi, ai, d in pts:
        reg, base, per_axis = ev.accels[ai]
        built.append((reg, base.replacing([per_axis[k][x] for k, x in enumerate(d)]), ev.graph(wi, si, bi)))
    results = [estimate_point(reg, p, g) for reg, p, g in built]

    def model() -> None:
        for reg, p, g in built:
            if reg.spec.check_params is not None:
                reg.spec.check_params(p)
            reg.spec.estimate(g, p)

    def point() -> None:
        for reg, p, g in built:
            estimate_point(reg, p, g)

    def row() -> None:
        for r, (_, p, _) in zip(results, built, strict=True):
            r.json_line(p.to_json())  # as the worker does

    def chunk() -> None:
        ev.run_chunk(0, n)

    best: dict[str, float] = {}
    timers: list[tuple[str, Callable[[], None]]] = [
        ("model", model), ("estimate_point", point), ("row", row), ("chunk", chunk)]
    for _ in range(args.repeats):  # interleaved, so load changes hit every timer alike
        for name, f in timers:
            t = time.process_time()  # CPU time: on a shared machine, wall time mostly measures the neighbours
            f()
            us = (time.process_time() - t) / n * 1e6
            best[name] = min(best.get(name, us), us)
    for name, us in best.items():
        print(f"{name:15s} {us:8.1f} us/point")
    m, c = best["model"], best["chunk"]
    print(f"harness         {c - m:8.1f} us/point ({(c - m) / c:.0%} of the worker path); "
          f"one core: {1e6 / c:,.0f} points/s, model alone {1e6 / m:,.0f} points/s")


if __name__ == "__main__":
    main()
