"""CIM component library: components, a chip composed of them, and mapping helpers.

Public API (also re-exported from :mod:`hastily_bench.api`); see
``docs/cim-components.md``::

    from hastily_bench.api import Chip, load_component_preset, example_preset_path, map_weights

    params = load_component_preset(example_preset_path("hastily-paper"), consumers=[Chip.param_keys()])
    chip = Chip.from_params(params)
    chip.area_mm2, chip.macro.mvm_s(8), chip.macro.adc.energy_j
"""

from __future__ import annotations

from .chip import Chip, Core, Macro, MvmEnergy, Tile
from .components import (
    ADC,
    ADC_RATE_LAWS,
    CELL_KINDS,
    CLOCK_KEY,
    DAC,
    EXP_METHODS,
    EXP_RESIDUALS,
    TECH_KEYS,
    VFU,
    VFU_OPS,
    CellArray,
    Component,
    ExpRoutine,
    OffChipMemory,
    RegisterFile,
    Router,
    SampleHold,
    SharedMemory,
    ShiftAdd,
    exp_table_max_rel_error,
    survey_adc_area_mm2,
    survey_adc_energy_j,
    tech_from_params,
)
from .loading import (
    check_consumed,
    example_preset_path,
    flatten_params,
    load_component_params,
    load_component_preset,
)
from .mapping import (
    CapacityReport,
    KVMapping,
    MatrixMapping,
    capacity,
    chip_capacity,
    map_kv,
    map_matrix,
    map_weights,
)
from .tech import Tech, area_factor, energy_factor

__all__ = [
    "ADC", "ADC_RATE_LAWS", "CELL_KINDS", "CLOCK_KEY", "DAC", "EXP_METHODS", "EXP_RESIDUALS",
    "TECH_KEYS", "VFU", "VFU_OPS", "CellArray", "Component", "ExpRoutine", "OffChipMemory", "RegisterFile", "Router",
    "SampleHold", "SharedMemory", "ShiftAdd", "exp_table_max_rel_error", "survey_adc_area_mm2", "survey_adc_energy_j",
    "tech_from_params", "Chip", "Core", "Macro", "MvmEnergy", "Tile", "check_consumed",
    "example_preset_path", "flatten_params", "load_component_params", "load_component_preset",
    "CapacityReport", "KVMapping", "MatrixMapping", "capacity", "chip_capacity", "map_kv",
    "map_matrix", "map_weights", "Tech", "area_factor", "energy_factor",
]
