"""Technology-node scaling of area, energy and leakage.

The factors follow Stillmaker and Baas, "Scaling equations for the accurate
prediction of CMOS device performance from 180 nm to 7 nm", Integration 58
(2017) 74-81, doi:10.1016/j.vlsi.2017.02.002, in the tabulated form the
Accelergy project ships (``Accelergy-Project/hwcomponents``,
``hwcomponents/scaling/techscaling.py``):

* **area**: relative area of the same design at each node (the 32 nm row of
  the published area table); between tabulated nodes we interpolate linearly
  in log(area) over log(node); beyond the table area scales linearly with the
  node ratio (hwcomponents' rule, after the IRDS 2016/2017 SoC-area trend);
* **energy** (dynamic energy per operation, and leakage power): the per-node
  quadratic ``a Vdd^2 + b Vdd + c`` of the published energy table, evaluated
  at the same supply voltage at both nodes (default 0.8 V, hwcomponents'
  default); beyond the table energy scales with the square root of the node
  ratio (hwcomponents' rule, after IRDS fJ/switch).

Latency is not scaled: the clock is a parameter of its own.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

from ..errors import UsageError

#: Tabulated nodes in nm, largest first.
NODES_NM: tuple[float, ...] = (130.0, 90.0, 65.0, 45.0, 32.0, 20.0, 16.0, 14.0, 10.0, 7.0)
#: Area of a design at each node relative to the same design at 32 nm (Stillmaker & Baas).
_AREA_VS_32NM: tuple[float, ...] = (14.0, 6.1, 3.3, 2.2, 1.0, 0.46, 0.41, 0.38, 0.22, 0.13)
#: Energy polynomial coefficients (a, b, c) per node: energy ~ a Vdd^2 + b Vdd + c.
_ENERGY_POLY: tuple[tuple[float, float, float], ...] = (
    (7.171, -6.709, 2.904),
    (4.762, -4.781, 2.092),
    (3.755, -4.398, 1.975),
    (1.103, -0.362, 0.2767),
    (0.9559, -0.7823, 0.471),
    (0.373, -0.1582, 0.04104),
    (0.2958, -0.1241, 0.03024),
    (0.2363, -0.09675, 0.02239),
    (0.2068, -0.09311, 0.02375),
    (0.1776, -0.09097, 0.02447),
)


def _interp_loglog(node_nm: float, values: tuple[float, ...], beyond_exponent: float) -> float:
    """``values`` at ``node_nm``, log-log interpolated; power law ``beyond_exponent`` outside."""
    if node_nm >= NODES_NM[0]:
        return values[0] * float((node_nm / NODES_NM[0]) ** beyond_exponent)
    if node_nm <= NODES_NM[-1]:
        return values[-1] * float((node_nm / NODES_NM[-1]) ** beyond_exponent)
    for i in range(len(NODES_NM) - 1):
        hi, lo = NODES_NM[i], NODES_NM[i + 1]
        if lo <= node_nm <= hi:
            t = (math.log(node_nm) - math.log(lo)) / (math.log(hi) - math.log(lo))
            return math.exp(math.log(values[i + 1]) + t * (math.log(values[i]) - math.log(values[i + 1])))
    raise AssertionError("unreachable")  # pragma: no cover


def _energy_at(node_nm: float, vdd_v: float) -> float:
    table = tuple(a * vdd_v**2 + b * vdd_v + c for a, b, c in _ENERGY_POLY)
    if min(table) <= 0:
        raise UsageError(f"tech_vdd_v={vdd_v}: outside the range the energy scaling table covers")
    return _interp_loglog(node_nm, table, 0.5)


@lru_cache(maxsize=1024)
def area_factor(to_nm: float, from_nm: float) -> float:
    """Multiply an area given at ``from_nm`` by this to get it at ``to_nm``."""
    return _interp_loglog(to_nm, _AREA_VS_32NM, 1.0) / _interp_loglog(from_nm, _AREA_VS_32NM, 1.0)


@lru_cache(maxsize=1024)
def energy_factor(to_nm: float, from_nm: float, vdd_v: float = 0.8) -> float:
    """Multiply a dynamic energy (or leakage power) given at ``from_nm`` by this for ``to_nm``."""
    return _energy_at(to_nm, vdd_v) / _energy_at(from_nm, vdd_v)


@dataclass(frozen=True)
class Tech:
    """The technology node a chip is evaluated at, and the node its component values are given at.

    Parameters
    ----------
    node_nm
        Node of the chip being modelled (``tech_node_nm``).
    ref_node_nm
        Node at which the preset's per-component energies and areas are given
        (``tech_ref_node_nm``; 32 nm for PUMA-simulator values).
    vdd_v
        Supply voltage used by the energy scaling (``tech_vdd_v``).
    """

    node_nm: float = 32.0
    ref_node_nm: float = 32.0
    vdd_v: float = 0.8

    @property
    def area(self) -> float:
        """Area factor from the reference node to the chip's node."""
        return area_factor(self.node_nm, self.ref_node_nm)

    @property
    def energy(self) -> float:
        """Dynamic-energy factor from the reference node to the chip's node."""
        return energy_factor(self.node_nm, self.ref_node_nm, self.vdd_v)

    @property
    def leakage(self) -> float:
        """Leakage-power factor (scales as energy, as in hwcomponents)."""
        return self.energy
