"""A CIM chip composed of components: chip -> tiles -> cores -> macros -> arrays.

A *macro* is the MVM unit of a core (HASTILY's UCLM, ISAAC's IMA crossbar
group): ``arrays`` cell arrays, each with its ``array_adcs`` ADCs, one DAC per
row, one sample-and-hold per column and one shift-and-add. A core has a VFU, a
register file and ``macros_per_core`` macros; a tile has ``cores_per_tile``
cores, a shared memory and a router; the chip has ``tiles`` tiles. Area and
leakage are sums over the components (times ``1 + chip_area_overhead`` for
what no component models: control, wiring, I/O).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cached_property
from typing import ClassVar, Protocol, TypeVar

from ..errors import UsageError
from ..params import ParamSet
from .components import (
    ADC,
    CLOCK_KEY,
    DAC,
    TECH_KEYS,
    VFU,
    CellArray,
    Component,
    OffChipMemory,
    RegisterFile,
    Router,
    SampleHold,
    SharedMemory,
    ShiftAdd,
    tech_from_params,
)
from .tech import Tech

C = TypeVar("C", bound=Component)


class PartMaker(Protocol):
    """Builds the component of a kind (see :meth:`Chip.from_params`)."""

    def __call__(self, kind: type[C], /) -> C: ...


@dataclass(frozen=True)
class MvmEnergy:
    """Energy of one macro MVM (one input vector, all bit steps), by component."""

    adc_j: float
    dac_j: float
    array_j: float
    sample_hold_j: float
    shift_add_j: float

    @property
    def total_j(self) -> float:
        return self.adc_j + self.dac_j + self.array_j + self.sample_hold_j + self.shift_add_j

    @property
    def other_j(self) -> float:
        """Everything but the ADC."""
        return self.total_j - self.adc_j


class _Composite:
    """A part built of parts: its area is the sum of its ``area_breakdown()``."""

    def area_breakdown(self) -> dict[str, float]:
        raise TypeError(f"{type(self).__name__} must define area_breakdown()")

    @cached_property
    def area_mm2(self) -> float:
        return sum(self.area_breakdown().values())


@dataclass(frozen=True)
class Macro(_Composite):
    """``arrays`` cell arrays with their peripherals; one MVM uses them in parallel."""

    array: CellArray
    adc: ADC
    dac: DAC
    sample_hold: SampleHold
    shift_add: ShiftAdd
    arrays: int

    def __post_init__(self) -> None:
        if self.arrays < 1:
            raise UsageError(f"chip_arrays_per_macro must be at least 1, got {self.arrays}")

    def mvm_steps(self, input_bits: int) -> int:
        """Bit-serial input steps of one MVM (``ceil(input_bits / dac_bits)``)."""
        return self.dac.steps(input_bits)

    @property
    def front_s(self) -> float:
        """Drive the rows and sample the columns: DAC latency + sample-and-hold."""
        return self.dac.latency_s + self.sample_hold.hold_s

    @property
    def convert_s(self) -> float:
        """Convert one bit step's columns: ``ceil(cols / adcs)`` conversions per ADC."""
        return self.adc.convert_s(self.array.conversions_per_adc)

    def adc_bound(self) -> bool:
        """True when conversion, not the analog front end, sets the step time."""
        return self.convert_s > self.front_s

    def mvm_s(self, input_bits: int) -> float:
        """One MVM: ``front + steps x max(front, convert) + shift-add``.

        Sample-and-hold lets one step's conversions overlap the next step's
        drive, so the slower of the two sets the pace (the law of today's
        ``plugins/cim.py``).
        """
        return (self.front_s + self.mvm_steps(input_bits) * max(self.front_s, self.convert_s)
                + self.shift_add.add_s)

    def mvm_energy(self, input_bits: int, active_arrays: int | None = None) -> MvmEnergy:
        """Energy of one MVM over ``active_arrays`` arrays (default: all of the macro's)."""
        n = self.arrays if active_arrays is None else active_arrays
        # kept with the macro (a model asks for a few widths, per product of every mapping)
        memo = self.__dict__.get("_mvm_energies")
        if memo is None:
            memo = self.__dict__["_mvm_energies"] = {}
        key = (type(input_bits), input_bits, type(n), n)
        e = memo.get(key)
        if e is None:
            e = memo[key] = self._mvm_energy(input_bits, n)
        return e

    def _mvm_energy(self, input_bits: int, n: int) -> MvmEnergy:
        steps = self.mvm_steps(input_bits)
        rows, cols = self.array.rows, self.array.cols
        return MvmEnergy(
            adc_j=n * steps * cols * self.adc.energy_j,
            dac_j=n * steps * rows * self.dac.energy_j,
            array_j=n * steps * self.array.mvm_energy_j,
            sample_hold_j=n * steps * cols * self.sample_hold.energy_j,
            shift_add_j=n * steps * cols * self.shift_add.energy_j,
        )

    def area_breakdown(self) -> dict[str, float]:
        a = self.array
        return {
            "cells": self.arrays * a.area_mm2,
            "adc": self.arrays * a.adcs * self.adc.area_mm2,
            "dac": self.arrays * a.rows * self.dac.area_mm2,
            "sample_hold": self.arrays * a.cols * self.sample_hold.area_mm2,
            "shift_add": self.arrays * self.shift_add.area_mm2,
        }

    @cached_property
    def leakage_w(self) -> float:
        a = self.array
        return self.arrays * (a.leakage_w + a.adcs * self.adc.leakage_w + a.rows * self.dac.leakage_w
                              + a.cols * self.sample_hold.leakage_w + self.shift_add.leakage_w)

    @property
    def weight_bits_capacity(self) -> int:
        return self.arrays * self.array.bits_capacity


@dataclass(frozen=True)
class Core(_Composite):
    """A VFU, a register file and ``macros`` macros."""

    vfu: VFU
    regfile: RegisterFile
    macro: Macro
    macros: int

    def area_breakdown(self) -> dict[str, float]:
        out = {k: self.macros * v for k, v in self.macro.area_breakdown().items()}
        out["vfu"] = self.vfu.area_mm2
        out["regfile"] = self.regfile.area_mm2
        return out

    @cached_property
    def leakage_w(self) -> float:
        return self.macros * self.macro.leakage_w + self.vfu.leakage_w + self.regfile.leakage_w


@dataclass(frozen=True)
class Tile(_Composite):
    """``cores`` cores, a shared memory and a router."""

    core: Core
    cores: int
    shared_memory: SharedMemory
    router: Router

    def area_breakdown(self) -> dict[str, float]:
        out = {k: self.cores * v for k, v in self.core.area_breakdown().items()}
        out["shared_memory"] = self.shared_memory.area_mm2
        out["router"] = self.router.area_mm2
        return out

    @cached_property
    def leakage_w(self) -> float:
        return self.cores * self.core.leakage_w + self.shared_memory.leakage_w + self.router.leakage_w


@dataclass(frozen=True)
class Chip(_Composite):
    """``tiles`` identical tiles and an off-chip memory; built by :meth:`from_params`.

    Parameters read (besides each component's): ``chip_tiles``,
    ``chip_cores_per_tile``, ``chip_macros_per_core``, ``chip_arrays_per_macro``,
    ``clock_hz`` (ungrouped: every clocked component reads it), ``chip_area_overhead`` and
    ``tech_*``.
    """

    tile: Tile
    tiles: int
    clock_hz: float
    area_overhead: float
    tech: Tech
    offchip: OffChipMemory

    PREFIX: ClassVar[str] = "chip"
    FIELDS: ClassVar[tuple[str, ...]] = (
        "tiles", "cores_per_tile", "macros_per_core", "arrays_per_macro", "area_overhead",
    )
    #: The component classes a chip is built of.
    COMPONENTS: ClassVar[tuple[type[Component], ...]] = (
        ADC, DAC, CellArray, SampleHold, ShiftAdd, VFU, RegisterFile, SharedMemory, Router,
        OffChipMemory,
    )

    def __post_init__(self) -> None:
        if self.tiles < 1:
            raise UsageError(f"chip_tiles must be at least 1, got {self.tiles}")
        if self.area_overhead < 0:
            raise UsageError(f"chip_area_overhead must be >= 0, got {self.area_overhead}")

    @classmethod
    def param_keys(cls) -> frozenset[str]:
        """Every flat parameter name a chip (and its components) reads."""
        keys = {f"{cls.PREFIX}_{k}" for k in cls.FIELDS} | set(TECH_KEYS) | {CLOCK_KEY}
        for c in cls.COMPONENTS:
            keys |= c.param_keys()
        return frozenset(keys)

    @classmethod
    def from_params(cls, p: ParamSet, *, part: PartMaker | None = None) -> Chip:
        """The chip ``p`` describes. ``part(Component)`` builds each component (default:
        ``Component.from_params(p)``): a model that memoises components passes its own."""
        make: PartMaker = part or (lambda k: k.from_params(p))
        macro = Macro(array=make(CellArray), adc=make(ADC), dac=make(DAC), sample_hold=make(SampleHold),
                      shift_add=make(ShiftAdd), arrays=p.i("chip_arrays_per_macro"))
        core = Core(vfu=make(VFU), regfile=make(RegisterFile), macro=macro,
                    macros=p.i("chip_macros_per_core"))
        tile = Tile(core=core, cores=p.i("chip_cores_per_tile"), shared_memory=make(SharedMemory),
                    router=make(Router))
        return cls(tile=tile, tiles=p.i("chip_tiles"), clock_hz=p.f(CLOCK_KEY),
                   area_overhead=p.f("chip_area_overhead"), tech=tech_from_params(p),
                   offchip=make(OffChipMemory))

    def with_tiles(self, tiles: int) -> Chip:
        """The same chip with ``tiles`` tiles (a scaled chip)."""
        return replace(self, tiles=tiles)

    # shortcuts to the parts (kept in the instance: models read them a hundred times a design)
    @cached_property
    def core(self) -> Core:
        return self.tile.core

    @cached_property
    def macro(self) -> Macro:
        return self.tile.core.macro

    @cached_property
    def array(self) -> CellArray:
        return self.tile.core.macro.array

    # counts
    @property
    def cores(self) -> int:
        return self.tiles * self.tile.cores

    @property
    def macros_per_tile(self) -> int:
        return self.tile.cores * self.core.macros

    @property
    def macros(self) -> int:
        return self.tiles * self.macros_per_tile

    @property
    def arrays(self) -> int:
        return self.macros * self.macro.arrays

    @property
    def weight_bits_capacity(self) -> int:
        return self.arrays * self.array.bits_capacity

    def tiles_for(self, macros: int) -> int:
        """Tiles needed to hold ``macros`` macros."""
        return -(-macros // self.macros_per_tile)

    # area and leakage
    def area_breakdown(self) -> dict[str, float]:
        """mm2 per component kind over the whole chip, plus ``overhead``."""
        out = {k: self.tiles * v for k, v in self.tile.area_breakdown().items()}
        out["overhead"] = self.area_overhead * sum(out.values())
        return out

    @cached_property
    def leakage_w(self) -> float:
        return self.tiles * self.tile.leakage_w
