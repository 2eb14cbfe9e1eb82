"""Typed operations: what a model is asked to cost.

Every operation of a graph is an instance of one of the small frozen dataclasses
below. Models dispatch on the *type* of an op (and, for matrix products, on its
:class:`Role`), never on its ``name``: names are labels for tables and breakdowns
and may change without changing any number.

The families, and the kinds inside them:

* :class:`MatMul`: ``instances`` independent (m x k) @ (k x n) products, with a
  :class:`Role` saying what the right-hand operand is (trained weights, the keys
  of attention, or its values).
* :class:`RowOp`: an operation over independent rows that needs a whole row
  (a reduction): :class:`Softmax`, :class:`LayerNorm`, :class:`RMSNorm`.
* :class:`Elementwise`: independent work per element: :class:`GELU`,
  :class:`SiLU`, :class:`ResidualAdd`, :class:`Multiply` (SwiGLU's gate),
  :class:`Rotary` (rotary position embedding of Q and K).

Counts are exact and for the whole batch of one layer (the graph repeats the
layer). Byte counts are at the workload's precision; an accelerator decides how
wide it stores intermediates such as attention scores.

Dependencies are part of each op (:class:`Dep`): ``barrier=True`` means the op
cannot produce its first row before the producer has produced *all* of its rows
for the sequence (attention's Q K^T needs every key), ``barrier=False`` means it
can stream row by row behind the producer. Schedules are derived from this,
never from names.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, fields
from typing import Any, ClassVar


class Role(enum.StrEnum):
    """What the right-hand operand of a :class:`MatMul` is."""

    #: Trained weights: stationary across tokens and inferences.
    WEIGHT = "weight"
    #: Attention scores Q K^T: the right-hand operand is K^T, one per (sequence, K/V head).
    SCORES = "scores"
    #: Attention context S V: the right-hand operand is V, one per (sequence, K/V head).
    CONTEXT = "context"


#: Breakdown categories, a closed set (see ``docs/plugins.md``).
CATEGORIES: tuple[str, ...] = ("matmul", "attention", "softmax", "vector", "memory", "overhead")


@dataclass(frozen=True)
class Dep:
    """A dependency of an op on another op of the same layer.

    Parameters
    ----------
    op
        Name of the producing op.
    barrier
        ``True`` when the consumer needs all of the producer's rows (for the
        whole sequence) before it can start; ``False`` when it can consume row
        by row as they are produced.
    """

    op: str
    barrier: bool = False


@dataclass(frozen=True, kw_only=True)
class Op:
    """Base of every operation.

    Parameters
    ----------
    name
        Label for tables and breakdowns (``qkv_proj``...). Unique within a layer.
    deps
        What this op consumes from earlier ops of the same layer. The first op of
        a layer implicitly consumes the previous layer's last op, row by row.
    input_bytes, output_bytes
        Activation bytes read and written, at the workload's precision.
    """

    #: Short lowercase label of the op type (``matmul``, ``softmax``...), for tables and JSON.
    kind: ClassVar[str] = "op"

    name: str
    deps: tuple[Dep, ...] = ()
    input_bytes: int = 0
    output_bytes: int = 0

    @property
    def macs(self) -> int:
        """Multiply-accumulates (0 except for matrix products)."""
        return 0

    @property
    def ops(self) -> int:
        """Arithmetic operations, 2 per MAC."""
        return 2 * self.macs

    @property
    def weight_bytes(self) -> int:
        """Bytes of trained weights read (0 except for weight products)."""
        return 0

    @property
    def elements(self) -> int:
        """Elements processed by a row or element-wise op (0 for matrix products)."""
        return 0

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON: the kind, every field, and the derived counts."""
        d: dict[str, Any] = {"kind": self.kind}
        for f in fields(self):
            v = getattr(self, f.name)
            if f.name == "deps":
                v = [{"op": dep.op, "barrier": dep.barrier} for dep in v]
            elif isinstance(v, enum.Enum):
                v = v.value
            d[f.name] = v
        d.update(macs=self.macs, weight_bytes=self.weight_bytes, elements=self.elements)
        return d


@dataclass(frozen=True, kw_only=True)
class MatMul(Op):
    """``instances`` independent products of an (m x k) by (k x n) matrix.

    Parameters
    ----------
    role
        What the right-hand operand is (:class:`Role`).
    instances
        Independent products (1 for a weight product over all tokens of the batch;
        ``batch x heads`` for attention).
    m, k, n
        Shape of each product.
    operands
        Distinct right-hand matrices: 1 for weights (shared by every token), and
        ``batch x kv_heads`` for attention (fewer than ``instances`` with
        grouped-query attention, where several query heads share one K/V head).
    causal
        Attention with a causal mask: the products of masked positions are not
        executed and not counted.
    context_offset
        For causal attention over a KV cache: keys that precede the first query
        row (``n = context_offset + m``). Query row ``i`` sees
        ``context_offset + i + 1`` keys.
    elem_bytes
        Bytes of one weight element (weight products).
    """

    kind: ClassVar[str] = "matmul"

    role: Role
    instances: int = 1
    m: int = 0
    k: int = 0
    n: int = 0
    operands: int = 1
    causal: bool = False
    context_offset: int = 0
    elem_bytes: int = 1

    @property
    def weight_stationary(self) -> bool:
        """True when the right-hand operand is a trained weight matrix."""
        return self.role is Role.WEIGHT

    @property
    def macs(self) -> int:
        if not self.causal:
            return self.instances * self.m * self.k * self.n
        if self.role is Role.SCORES:
            # row i computes scores against the keys it may see
            visible = _causal_visible(self.m, self.n, self.context_offset)
            return self.instances * self.k * visible
        # S V: row i sums over the keys it may see; the product has n = head width
        visible = _causal_visible(self.m, self.k, self.context_offset)
        return self.instances * self.n * visible

    @property
    def weight_bytes(self) -> int:
        return self.k * self.n * self.elem_bytes if self.role is Role.WEIGHT else 0


def _causal_visible(rows: int, keys: int, offset: int) -> int:
    """Sum over query rows of the keys each may see (at most ``keys``)."""
    # row i (0-based) sees min(keys, offset + i + 1)
    full_from = max(0, keys - offset)  # rows from here on see every key
    partial = min(rows, full_from)
    return partial * offset + partial * (partial + 1) // 2 + (rows - partial) * keys


@dataclass(frozen=True, kw_only=True)
class RowOp(Op):
    """An operation over ``rows`` independent rows of ``row_len`` that needs whole rows."""

    kind: ClassVar[str] = "row"

    rows: int = 0
    row_len: int = 0

    @property
    def elements(self) -> int:
        return self.rows * self.row_len


@dataclass(frozen=True, kw_only=True)
class Softmax(RowOp):
    """Numerically stable softmax of score rows (max, subtract, exp, sum, divide).

    With ``causal``, row ``i`` holds only its ``context_offset + i + 1`` visible
    scores (``rows`` counts every (sequence, head, query) row); ``elements``
    counts the visible ones.
    """

    kind: ClassVar[str] = "softmax"

    causal: bool = False
    context_offset: int = 0
    #: Independent score matrices (batch x heads); rows per matrix = rows / matrices.
    matrices: int = 1

    @property
    def elements(self) -> int:
        if not self.causal:
            return self.rows * self.row_len
        per = self.rows // max(1, self.matrices)
        return self.matrices * _causal_visible(per, self.row_len, self.context_offset)


@dataclass(frozen=True, kw_only=True)
class LayerNorm(RowOp):
    """LayerNorm over rows of the model width; ``residual`` when the residual add is fused in."""

    kind: ClassVar[str] = "layernorm"

    residual: bool = True


@dataclass(frozen=True, kw_only=True)
class RMSNorm(RowOp):
    """RMSNorm over rows of the model width (decoders); ``residual`` as for :class:`LayerNorm`."""

    kind: ClassVar[str] = "rmsnorm"

    residual: bool = False


@dataclass(frozen=True, kw_only=True)
class Elementwise(Op):
    """Independent work on ``count`` elements."""

    kind: ClassVar[str] = "elementwise"

    count: int = 0

    @property
    def elements(self) -> int:
        return self.count


@dataclass(frozen=True, kw_only=True)
class GELU(Elementwise):
    """GELU activation."""

    kind: ClassVar[str] = "gelu"


@dataclass(frozen=True, kw_only=True)
class SiLU(Elementwise):
    """SiLU (swish) activation, the gate of SwiGLU."""

    kind: ClassVar[str] = "silu"


@dataclass(frozen=True, kw_only=True)
class ResidualAdd(Elementwise):
    """Residual addition (when not fused into a norm)."""

    kind: ClassVar[str] = "add"


@dataclass(frozen=True, kw_only=True)
class Multiply(Elementwise):
    """Element-wise product (SwiGLU: silu(gate) * up)."""

    kind: ClassVar[str] = "mul"


@dataclass(frozen=True, kw_only=True)
class Rotary(Elementwise):
    """Rotary position embedding applied to Q and K (``count`` elements rotated)."""

    kind: ClassVar[str] = "rotary"


#: Every op type defined here, by kind label.
OP_TYPES: dict[str, type[Op]] = {
    t.kind: t
    for t in (MatMul, Softmax, LayerNorm, RMSNorm, GELU, SiLU, ResidualAdd, Multiply, Rotary)
}
