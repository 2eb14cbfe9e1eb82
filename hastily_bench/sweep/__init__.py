"""Design-space sweeps: grids of ``run`` points, Pareto fronts, local or Dask executors.

The library side of ``hastily-bench sweep`` (see docs/sweeps.md)::

    from hastily_bench.api import PluginHost
    from hastily_bench.sweep import prepare, run_sweep

    host = PluginHost()
    chip = host.default_accelerators()[0]
    spec, ev = prepare(host, workloads=["bert-base"], accelerators=[chip],
                       grid=[f"{chip}.adc_bits=4,6,8", f"{chip}.vfu_lanes=8:64:x2"])
    outcome = run_sweep(spec, ev, output=Path("sweep.jsonl"), jobs=2)  # under __main__
"""

from __future__ import annotations

from .engine import ChunkResult, Evaluator, evaluate_chunk
from .executors import EXECUTORS, default_jobs
from .grid import Axis, SweepFile, SweepSpec, expand_values, is_sweep_file, load_sweep_file
from .pareto import (
    DEFAULT_OBJECTIVES,
    RESULT_METRICS,
    Constraint,
    FrontAccumulator,
    FrontPoint,
    Objective,
    dominates,
    front_indices,
    front_mask,
    merge_fronts,
    parse_constraint,
    parse_objective,
    small_front_indices,
)
from .runner import (
    SweepOutcome,
    is_sweep_output,
    load_summary,
    prepare,
    read_rows,
    run_sweep,
    summary_path,
)

__all__ = [
    "ChunkResult", "Evaluator", "evaluate_chunk", "EXECUTORS", "default_jobs", "Axis", "SweepFile",
    "SweepSpec", "expand_values", "is_sweep_file", "load_sweep_file", "DEFAULT_OBJECTIVES",
    "RESULT_METRICS", "Constraint", "FrontAccumulator", "FrontPoint", "Objective", "dominates",
    "front_indices", "front_mask", "merge_fronts", "parse_constraint", "parse_objective",
    "small_front_indices",
    "SweepOutcome", "is_sweep_output", "load_summary", "prepare", "read_rows", "run_sweep",
    "summary_path",
]
