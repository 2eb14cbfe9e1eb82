"""The hastily-bench plugin: registers ``isaac-reram``.

Found through the entry point in ``pyproject.toml``::

    [project.entry-points.hastily_bench]
    isaac-accel = "hastily_isaac_accel.plugin"
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from importlib import resources
from pathlib import Path

from hastily_bench.api import (
    AcceleratorSpec,
    Arithmetic,
    Chip,
    ParamSet,
    hookimpl,
    load_component_preset,
)

from .model import MODEL_KEYS, estimate

NAME = "isaac-reram"
PRESET = "isaac.toml"


@lru_cache(maxsize=1)
def default_params() -> ParamSet:
    """The preset shipped in the package; every key is read by the chip or the model."""
    path = Path(str(resources.files("hastily_isaac_accel").joinpath(PRESET)))
    return load_component_preset(path, consumers=[Chip.param_keys(), MODEL_KEYS])


def arithmetic(params: ParamSet) -> Arithmetic:
    """INT8 products; the exponent computed on the VFU (exact)."""
    return Arithmetic(matmul="int8", softmax="exact")


def spec() -> AcceleratorSpec:
    return AcceleratorSpec(
        name=NAME,
        description="ISAAC-style ReRAM CIM: 128 x 128 crossbars of 2-bit cells, 8-bit ADCs, "
        "eDRAM tile buffers (built on hastily_bench.cim)",
        params=default_params(),
        estimate=estimate,
        arithmetic=arithmetic,
        default=False,
        family="cim",
        reference="example plugin: ISAAC (Shafiee et al., ISCA 2016) components, matrix-by-matrix schedule",
    )


@hookimpl
def hastily_register_accelerators(register: Callable[[AcceleratorSpec], None]) -> None:
    register(spec())
