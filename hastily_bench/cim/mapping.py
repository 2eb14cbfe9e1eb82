"""Mapping helpers: matrices onto cell arrays, and capacity against a chip.

Pure functions of shapes and components. A ``k x n`` matrix of
``value_bits``-bit values (the MVM's input dimension ``k`` on the rows, its
outputs ``n`` on the columns) is cut into ``ceil(k / rows) x ceil(n / cols)``
blocks; each block needs ``ceil(value_bits / cell_bits)`` arrays (bit slices).
A block's slices sit in one macro (``ceil(slices / arrays_per_macro)`` macros
per block) unless ``pack=True``, which fills macros with slices of several
blocks. Policy (scale the chip, stream, refuse) is the caller's: these
functions only count and report.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

from ..errors import UsageError
from .chip import Chip
from .components import CellArray


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


@dataclass(frozen=True)
class MatrixMapping:
    """How one ``k x n`` matrix lies on arrays (one copy)."""

    k: int
    n: int
    value_bits: int
    slices: int
    row_blocks: int
    col_blocks: int
    arrays: int
    macros: int

    @property
    def blocks(self) -> int:
        return self.row_blocks * self.col_blocks

    def times(self, copies: int) -> MatrixMapping:
        """``copies`` of this matrix (e.g. one per layer, head or sequence)."""
        return MatrixMapping(self.k, self.n, self.value_bits, self.slices, self.row_blocks,
                             self.col_blocks, self.arrays * copies, self.macros * copies)


def map_matrix(k: int, n: int, value_bits: int, array: CellArray, arrays_per_macro: int,
               *, pack: bool = False) -> MatrixMapping:
    """Arrays and macros holding a ``k x n`` matrix of ``value_bits``-bit values."""
    return _map_matrix(k, n, value_bits, array.rows, array.cols, array.slices(value_bits), arrays_per_macro, pack)


@lru_cache(maxsize=4096, typed=True)  # typed: a float or bool count is not an int's entry
def _map_matrix(k: int, n: int, value_bits: int, rows: int, cols: int, slices: int, arrays_per_macro: int,
                pack: bool) -> MatrixMapping:
    """:func:`map_matrix` on the array's shape (a sweep maps the same few matrices on
    thousands of chips that differ elsewhere)."""
    for name, v in (("k", k), ("n", n), ("value_bits", value_bits), ("arrays_per_macro", arrays_per_macro)):
        if v < 1:
            raise UsageError(f"{name} must be at least 1, got {v}")
    rb, cb = _ceil_div(k, rows), _ceil_div(n, cols)
    arrays = rb * cb * slices
    macros = _ceil_div(arrays, arrays_per_macro) if pack else rb * cb * _ceil_div(slices, arrays_per_macro)
    return MatrixMapping(k, n, value_bits, slices, rb, cb, arrays, macros)


#: Alias: weights are the common case.
map_weights = map_matrix


@dataclass(frozen=True)
class KVMapping:
    """K^T and V of one layer written into arrays, for ``heads x batch`` (head, sequence) pairs.

    K^T is ``head_dim x seq_len`` (the query drives ``head_dim`` rows), V is
    ``seq_len x head_dim``. Each new token writes its key and value: with K^T
    written by address remapping (HASTILY) a key lands as one row write per
    ``rows``-long piece per bit slice, like a value row, so per token and head
    ``k_row_writes = ceil(head_dim / rows) x slices`` and
    ``v_row_writes = ceil(head_dim / cols) x slices``.
    """

    k: MatrixMapping  # one (head, sequence)
    v: MatrixMapping
    pairs: int  # heads x batch
    k_row_writes_per_token: int  # all heads
    v_row_writes_per_token: int

    @property
    def arrays(self) -> int:
        return self.pairs * (self.k.arrays + self.v.arrays)

    @property
    def macros(self) -> int:
        return self.pairs * (self.k.macros + self.v.macros)

    @property
    def row_writes_per_token(self) -> int:
        return self.k_row_writes_per_token + self.v_row_writes_per_token


def map_kv(head_dim: int, seq_len: int, heads: int, batch: int, value_bits: int, array: CellArray,
           arrays_per_macro: int, *, pack: bool = False) -> KVMapping:
    """K^T and V of one layer (all heads, all sequences of the batch) on arrays."""
    if heads < 1 or batch < 1:
        raise UsageError(f"heads and batch must be at least 1, got {heads} and {batch}")
    k = map_matrix(head_dim, seq_len, value_bits, array, arrays_per_macro, pack=pack)
    v = map_matrix(seq_len, head_dim, value_bits, array, arrays_per_macro, pack=pack)
    slices = array.slices(value_bits)
    return KVMapping(
        k=k, v=v, pairs=heads * batch,
        k_row_writes_per_token=heads * _ceil_div(head_dim, array.rows) * slices,
        v_row_writes_per_token=heads * _ceil_div(head_dim, array.cols) * slices,
    )


@dataclass(frozen=True)
class CapacityReport:
    """Required vs available macros; the caller decides what to do when it does not fit."""

    required: Mapping[str, int]  # macros per named item
    available_macros: int
    macros_per_tile: int
    tiles_available: int

    @property
    def required_macros(self) -> int:
        return sum(self.required.values())

    @property
    def fits(self) -> bool:
        return self.required_macros <= self.available_macros

    @property
    def shortfall_macros(self) -> int:
        return max(0, self.required_macros - self.available_macros)

    @property
    def tiles_required(self) -> int:
        return _ceil_div(self.required_macros, self.macros_per_tile)

    @property
    def utilisation(self) -> float:
        """Required / available (above 1 when it does not fit)."""
        return self.required_macros / self.available_macros

    def summary(self) -> str:
        """One line: ``needs 23808 macros (weights 20736, kv 3072) of 23808: fits``."""
        parts = ", ".join(f"{k} {v}" for k, v in self.required.items())
        verdict = ("fits" if self.fits else
                   f"does not fit: {self.tiles_required} tiles needed, {self.tiles_available} available")
        return (f"needs {self.required_macros} macros ({parts}) of {self.available_macros} "
                f"({self.utilisation:.0%}): {verdict}")


def capacity(required: Mapping[str, int | MatrixMapping | KVMapping], *, macros_per_tile: int,
             tiles: int) -> CapacityReport:
    """Compare required macros (ints or mappings, by name) with a chip of ``tiles`` tiles.

    ``Chip`` users: ``capacity(items, macros_per_tile=chip.macros_per_tile, tiles=chip.tiles)``
    or :func:`chip_capacity`.
    """
    req = {name: (v if isinstance(v, int) else v.macros) for name, v in required.items()}
    for name, v in req.items():
        if v < 0:
            raise UsageError(f"capacity: {name} requires a negative number of macros ({v})")
    return CapacityReport(required=req, available_macros=tiles * macros_per_tile,
                          macros_per_tile=macros_per_tile, tiles_available=tiles)


def chip_capacity(chip: Chip, required: Mapping[str, int | MatrixMapping | KVMapping]) -> CapacityReport:
    """:func:`capacity` against a :class:`~hastily_bench.cim.Chip`."""
    return capacity(required, macros_per_tile=chip.macros_per_tile, tiles=chip.tiles)
