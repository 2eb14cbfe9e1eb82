"""The op graph: the one place where a workload's work is counted.

:func:`build_graph` turns (workload, seq_len, batch) into the ordered operations of
one encoder layer, repeated ``layers`` times. Every accelerator model consumes this
graph; none recounts MACs or bytes itself, so two models always agree on how much
work a point is.

Counting conventions
--------------------
* ``ops = 2 x MACs`` over every matrix product: the weight products and the two
  activation-activation products of attention (Q K^T and S V).
* Byte counts are at the workload's precision (1 byte for INT8). Attention scores
  are counted as elements; an accelerator decides how wide it stores them.
* Non-linear ops (softmax, GELU, residual + LayerNorm) carry element counts, and
  softmax and LayerNorm carry rows x row length.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .errors import UsageError
from .workload import Workload

#: Inclusive limits on a point; larger values are surely a typo and would only
#: produce meaningless numbers (the paper's sweep stops at 8192 tokens).
MAX_SEQ_LEN = 1 << 18
MAX_BATCH = 1 << 12

MATMUL = "matmul"
SOFTMAX = "softmax"
LAYERNORM = "layernorm"
GELU = "gelu"
OP_KINDS = (MATMUL, SOFTMAX, LAYERNORM, GELU)


@dataclass(frozen=True)
class Op:
    """One operation of an encoder layer, with exact counts for the whole batch.

    Attributes
    ----------
    name
        Stable identifier, also the breakdown key (``qkv_proj``, ``attn_scores``...).
    kind
        One of :data:`OP_KINDS`.
    weight_stationary
        For matmuls: True when the right operand is a trained weight matrix,
        False for Q K^T and S V (both operands are activations).
    instances, m, k, n
        For matmuls: ``instances`` independent products of an (m x k) by (k x n)
        matrix (``instances = batch x heads`` for attention). Zero for other kinds.
    macs
        Multiply-accumulates, ``instances x m x k x n``.
    weight_bytes
        Bytes of trained weights the op reads (0 for activation products).
    input_bytes, output_bytes
        Activation bytes read and written at the workload's precision.
    elements
        Elements processed by a non-linear op (0 for matmuls).
    rows, row_len
        For softmax and LayerNorm: independent rows and their length.
    """

    name: str
    kind: str
    weight_stationary: bool = False
    instances: int = 0
    m: int = 0
    k: int = 0
    n: int = 0
    macs: int = 0
    weight_bytes: int = 0
    input_bytes: int = 0
    output_bytes: int = 0
    elements: int = 0
    rows: int = 0
    row_len: int = 0

    @property
    def ops(self) -> int:
        """Arithmetic operations (2 per MAC) for one layer."""
        return 2 * self.macs

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@dataclass(frozen=True)
class OpGraph:
    """All work of one inference of ``batch`` sequences of ``seq_len`` tokens.

    ``layer_ops`` is one encoder layer; the stack repeats it ``workload.layers``
    times.
    """

    workload: Workload
    seq_len: int
    batch: int
    layer_ops: tuple[Op, ...]

    @property
    def layers(self) -> int:
        return self.workload.layers

    @property
    def tokens(self) -> int:
        """Tokens in the batch, ``batch x seq_len``."""
        return self.batch * self.seq_len

    @property
    def macs(self) -> int:
        """Multiply-accumulates of the whole stack."""
        return self.layers * sum(op.macs for op in self.layer_ops)

    @property
    def ops(self) -> int:
        """Operations of the whole stack, 2 per MAC."""
        return 2 * self.macs

    @property
    def weight_bytes(self) -> int:
        """Trained weight bytes of the whole stack."""
        return self.layers * sum(op.weight_bytes for op in self.layer_ops)

    def op(self, name: str) -> Op:
        for op in self.layer_ops:
            if op.name == name:
                return op
        raise KeyError(name)

    def matmuls(self) -> tuple[Op, ...]:
        return tuple(op for op in self.layer_ops if op.kind == MATMUL)


def check_point(seq_len: int, batch: int) -> None:
    """Raise :class:`UsageError` for a sequence length or batch outside the limits."""
    for label, value, limit in (("sequence length", seq_len, MAX_SEQ_LEN),
                                ("batch", batch, MAX_BATCH)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise UsageError(f"{label} must be an integer, got {value!r}")
        if value < 1:
            raise UsageError(f"{label} must be >= 1, got {value}")
        if value > limit:
            raise UsageError(f"{label} {value} exceeds the limit {limit}")


def _weight_matmul(name: str, tokens: int, k: int, n: int, elem: int) -> Op:
    return Op(
        name=name,
        kind=MATMUL,
        weight_stationary=True,
        instances=1,
        m=tokens,
        k=k,
        n=n,
        macs=tokens * k * n,
        weight_bytes=k * n * elem,
        input_bytes=tokens * k * elem,
        output_bytes=tokens * n * elem,
    )


def _add_layernorm(name: str, tokens: int, d: int, elem: int) -> Op:
    """Residual add + LayerNorm: reads the residual and the branch, writes one row per token."""
    return Op(
        name=name,
        kind=LAYERNORM,
        elements=tokens * d,
        rows=tokens,
        row_len=d,
        input_bytes=2 * tokens * d * elem,
        output_bytes=tokens * d * elem,
    )


def build_graph(workload: Workload, seq_len: int, batch: int = 1) -> OpGraph:
    """Return the op graph of ``workload`` for ``batch`` sequences of ``seq_len`` tokens."""
    check_point(seq_len, batch)
    w = workload
    d, h, f, dh, elem = w.hidden, w.heads, w.ffn, w.head_dim, w.bytes_per_element
    tokens = batch * seq_len
    heads_total = batch * h
    score_elems = heads_total * seq_len * seq_len
    ops = (
        _weight_matmul("qkv_proj", tokens, d, 3 * d, elem),
        Op(
            name="attn_scores",  # Q K^T per head
            kind=MATMUL,
            instances=heads_total,
            m=seq_len,
            k=dh,
            n=seq_len,
            macs=heads_total * seq_len * dh * seq_len,
            input_bytes=2 * tokens * d * elem,
            output_bytes=score_elems * elem,
        ),
        Op(
            name="softmax",
            kind=SOFTMAX,
            elements=score_elems,
            rows=heads_total * seq_len,
            row_len=seq_len,
            input_bytes=score_elems * elem,
            output_bytes=score_elems * elem,
        ),
        Op(
            name="attn_context",  # S V per head
            kind=MATMUL,
            instances=heads_total,
            m=seq_len,
            k=seq_len,
            n=dh,
            macs=heads_total * seq_len * seq_len * dh,
            input_bytes=score_elems * elem + tokens * d * elem,
            output_bytes=tokens * d * elem,
        ),
        _weight_matmul("out_proj", tokens, d, d, elem),
        _add_layernorm("add_layernorm_1", tokens, d, elem),
        _weight_matmul("ffn_up", tokens, d, f, elem),
        Op(
            name="gelu",
            kind=GELU,
            elements=tokens * f,
            input_bytes=tokens * f * elem,
            output_bytes=tokens * f * elem,
        ),
        _weight_matmul("ffn_down", tokens, f, d, elem),
        _add_layernorm("add_layernorm_2", tokens, d, elem),
    )
    return OpGraph(workload=workload, seq_len=seq_len, batch=batch, layer_ops=ops)
