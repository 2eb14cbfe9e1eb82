"""The hastily-bench plugin: registers ``systolic-128``.

Found by hastily-bench through the entry point declared in ``pyproject.toml``::

    [project.entry-points.hastily_bench]
    example-accel = "hastily_example_accel.plugin"
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from importlib import resources
from pathlib import Path

from hastily_bench.api import AcceleratorSpec, Arithmetic, ParamSet, hookimpl, load_params

from .model import estimate

NAME = "systolic-128"
PRESET = "systolic.toml"


@lru_cache(maxsize=1)
def default_params() -> ParamSet:
    """The preset shipped inside the package (``systolic.toml``)."""
    path = Path(str(resources.files("hastily_example_accel").joinpath(PRESET)))
    return load_params(path)


def arithmetic(params: ParamSet) -> Arithmetic:
    """INT8 products with int32 sums; the exponent as chosen by ``softmax_exp``."""
    exp = params.s("softmax_exp")
    if exp == "exact":
        return Arithmetic(matmul="int8", softmax="exact")
    return Arithmetic(matmul="int8", softmax="lut", exp_residual=exp.removeprefix("lut-"))


def spec() -> AcceleratorSpec:
    """The ``systolic-128`` accelerator."""
    return AcceleratorSpec(
        name=NAME,
        description="weight-stationary INT8 systolic array, 128 x 128 PEs at 1 GHz, "
        "8 MiB weight buffer, LPDDR5 DRAM",
        params=default_params(),
        estimate=estimate,
        arithmetic=arithmetic,
        default=False,
        family="systolic",
        reference="example plugin: analytic TPU-like model, Horowitz ISSCC 2014 energies",
    )


@hookimpl
def hastily_register_accelerators(register: Callable[[AcceleratorSpec], None]) -> None:
    register(spec())
