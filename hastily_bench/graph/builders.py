"""Builders: the one place where a workload's work is counted.

:func:`build_graph` turns (workload, seq_len, batch) into the ops of one encoder
layer, repeated ``layers`` times; :func:`op_graph` builds the operation-level
graphs of ``hastily-bench op`` from the same layer; :func:`decoder_layer` shows
that the same op types express a decoder block (pre-norm, RMSNorm, SwiGLU, rotary
embeddings, grouped-query attention, causal masking, a KV cache, prefill and
decode). Decoder workloads and their models are a later step; the contract does
not change for them.

Counting conventions
--------------------
* ``ops = 2 x MACs`` over every matrix product: the weight products and the two
  activation-activation products of attention (Q K^T and S V). Masked (causal)
  products are not executed and not counted.
* Byte counts are at the workload's precision (1 byte for INT8). Attention scores
  are counted as elements; an accelerator decides how wide it stores them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from ..errors import UsageError
from ..workload import Workload
from .ops import (
    GELU,
    Dep,
    LayerNorm,
    MatMul,
    Multiply,
    Op,
    ResidualAdd,
    RMSNorm,
    Role,
    Rotary,
    SiLU,
    Softmax,
)
from .structure import Level, OpGraph, Phase, check_point

#: Operation-level studies of ``hastily-bench op``.
OP_LEVEL_KINDS = ("softmax", "attention", "mvm")
#: Largest ``--rows`` / ``--cols`` of an op-level matrix.
MAX_OP_DIM = 1 << 20


def weight_matmul(name: str, tokens: int, k: int, n: int, elem: int,
                  deps: tuple[Dep, ...] = ()) -> MatMul:
    """A (tokens x k) @ (k x n) product with trained weights."""
    return MatMul(
        name=name, role=Role.WEIGHT, instances=1, m=tokens, k=k, n=n, operands=1,
        elem_bytes=elem, deps=deps,
        input_bytes=tokens * k * elem, output_bytes=tokens * n * elem,
    )


def add_layernorm(name: str, tokens: int, d: int, elem: int, deps: tuple[Dep, ...]) -> LayerNorm:
    """Residual add + LayerNorm: reads the residual and the branch, writes one row per token."""
    return LayerNorm(
        name=name, rows=tokens, row_len=d, residual=True, deps=deps,
        input_bytes=2 * tokens * d * elem, output_bytes=tokens * d * elem,
    )


def encoder_layer(workload: Workload, seq_len: int, batch: int) -> tuple[Op, ...]:
    """The ops of one post-norm BERT encoder layer for ``batch`` sequences of ``seq_len``."""
    w = workload
    d, h, f, dh, elem = w.hidden, w.heads, w.ffn, w.head_dim, w.bytes_per_element
    tokens = batch * seq_len
    heads_total = batch * h
    score_elems = heads_total * seq_len * seq_len
    qkv = Dep("qkv_proj", barrier=True)  # attention needs every key and value of the sequence
    return (
        weight_matmul("qkv_proj", tokens, d, 3 * d, elem),
        MatMul(
            name="attn_scores", role=Role.SCORES, instances=heads_total, m=seq_len, k=dh,
            n=seq_len, operands=heads_total, deps=(qkv,),
            input_bytes=2 * tokens * d * elem, output_bytes=score_elems * elem,
        ),
        Softmax(
            name="softmax", rows=heads_total * seq_len, row_len=seq_len, matrices=heads_total,
            deps=(Dep("attn_scores"),),
            input_bytes=score_elems * elem, output_bytes=score_elems * elem,
        ),
        MatMul(
            name="attn_context", role=Role.CONTEXT, instances=heads_total, m=seq_len, k=seq_len,
            n=dh, operands=heads_total, deps=(Dep("softmax"), qkv),
            input_bytes=score_elems * elem + tokens * d * elem, output_bytes=tokens * d * elem,
        ),
        weight_matmul("out_proj", tokens, d, d, elem, (Dep("attn_context"),)),
        add_layernorm("add_layernorm_1", tokens, d, elem, (Dep("out_proj"),)),
        weight_matmul("ffn_up", tokens, d, f, elem, (Dep("add_layernorm_1"),)),
        GELU(name="gelu", count=tokens * f, deps=(Dep("ffn_up"),),
             input_bytes=tokens * f * elem, output_bytes=tokens * f * elem),
        weight_matmul("ffn_down", tokens, f, d, elem, (Dep("gelu"),)),
        add_layernorm("add_layernorm_2", tokens, d, elem,
                      (Dep("ffn_down"), Dep("add_layernorm_1"))),
    )


def build_graph(workload: Workload, seq_len: int, batch: int = 1) -> OpGraph:
    """The encoder graph of ``workload`` for ``batch`` sequences of ``seq_len`` tokens."""
    check_point(seq_len, batch)
    return OpGraph(workload=workload, seq_len=seq_len, batch=batch,
                   layer_ops=encoder_layer(workload, seq_len, batch))


def op_graph(
    kind: str,
    workload: Workload,
    *,
    seq_len: int,
    batch: int = 1,
    rows: int | None = None,
    cols: int | None = None,
) -> OpGraph:
    """An operation-level graph: selected ops of one layer of ``workload``.

    The result has ``level = Level.OP``, one layer, and ``within`` = the model graph at
    the same point (every layer), so a model can place the whole model (as the chip that
    runs it would) and cost only the ops given.

    ``softmax``
        The score softmax: ``rows`` score rows of length ``seq_len`` (default: every
        row of the layer, ``batch x heads x seq_len``).
    ``attention``
        Q K^T, softmax and S V of one layer.
    ``mvm``
        One ``rows x cols`` weight matrix (default hidden x hidden) applied to
        ``batch x seq_len`` tokens (``seq_len = 1`` is one matrix-vector product).
    """
    if kind not in OP_LEVEL_KINDS:
        raise UsageError(f"unknown operation {kind!r}; choose one of {', '.join(OP_LEVEL_KINDS)}")
    one_layer = replace(workload, layers=1)
    full = build_graph(workload, seq_len, batch)
    ops: tuple[Op, ...]
    if kind == "mvm":
        k = workload.hidden if rows is None else rows
        n = workload.hidden if cols is None else cols
        for label, v in (("--rows", k), ("--cols", n)):
            _check_dim(label, v, MAX_OP_DIM)
        ops = (weight_matmul("mvm", seq_len * batch, k, n, workload.bytes_per_element),)
    elif kind == "softmax":
        if cols is not None:
            raise UsageError("--cols applies to 'mvm' only")
        sm = next(full.of_type(Softmax))
        if rows is not None:
            _check_dim("--rows", rows, sm.rows)
            elem = workload.bytes_per_element
            sm = replace(sm, rows=rows, matrices=max(1, math.ceil(rows / seq_len)),
                         input_bytes=rows * seq_len * elem, output_bytes=rows * seq_len * elem)
        ops = (sm,)
    else:
        if rows is not None or cols is not None:
            raise UsageError("--rows and --cols apply to 'mvm' and 'softmax' only")
        ops = tuple(op for op in full.layer_ops
                    if isinstance(op, Softmax)
                    or (isinstance(op, MatMul) and op.role is not Role.WEIGHT))
    return OpGraph(workload=one_layer, seq_len=seq_len, batch=batch, layer_ops=ops,
                   level=Level.OP, within=full)


def _check_dim(label: str, value: int, limit: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= limit:
        raise UsageError(f"{label} must be between 1 and {limit}, got {value!r}")


# --- decoder blocks ------------------------------------------------------------------------

@dataclass(frozen=True)
class DecoderShape:
    """Shape of a decoder block (GPT-2 or Llama style).

    Parameters
    ----------
    hidden, heads, ffn
        Model width, query heads, MLP inner width.
    kv_heads
        K/V heads (``heads`` for multi-head attention, fewer for grouped-query).
    norm
        ``"layernorm"`` (GPT-2) or ``"rmsnorm"`` (Llama); always pre-norm.
    mlp
        ``"gelu"`` (up, GELU, down) or ``"swiglu"`` (gate and up, SiLU, multiply, down).
    rotary
        Rotary position embeddings applied to Q and K.
    bytes_per_element
        Precision of weights and activations.
    """

    hidden: int
    heads: int
    ffn: int
    kv_heads: int | None = None
    norm: str = "rmsnorm"
    mlp: str = "swiglu"
    rotary: bool = True
    bytes_per_element: int = 1

    @property
    def head_dim(self) -> int:
        return self.hidden // self.heads

    @property
    def kv(self) -> int:
        return self.heads if self.kv_heads is None else self.kv_heads


def decoder_layer(
    shape: DecoderShape, *, batch: int, phase: Phase, seq_len: int, context_len: int = 0
) -> tuple[Op, ...]:
    """The ops of one pre-norm decoder block.

    ``phase=PREFILL``: ``seq_len`` prompt tokens per sequence, causal attention
    among them (``context_len`` must be 0). ``phase=DECODE``: ``seq_len`` new
    tokens (usually 1) per sequence attending to ``context_len`` cached tokens and
    to themselves, causally.
    """
    if phase is Phase.ENCODE:
        raise ValueError("decoder_layer builds prefill or decode steps")
    if phase is Phase.PREFILL and context_len:
        raise ValueError("a prefill step starts with an empty KV cache")
    s, elem = shape, shape.bytes_per_element
    d, h, kv, dh, f = s.hidden, s.heads, s.kv, s.head_dim, s.ffn
    tokens = batch * seq_len
    keys = context_len + seq_len
    norm_type = RMSNorm if s.norm == "rmsnorm" else LayerNorm

    def norm(name: str, dep: tuple[Dep, ...]) -> Op:
        return norm_type(name=name, rows=tokens, row_len=d, residual=False, deps=dep,
                         input_bytes=tokens * d * elem, output_bytes=tokens * d * elem)

    ops: list[Op] = [norm("norm_1", ()),
                     weight_matmul("qkv_proj", tokens, d, (h + 2 * kv) * dh, elem, (Dep("norm_1"),))]
    last = "qkv_proj"
    if s.rotary:
        ops.append(Rotary(name="rotary", count=tokens * (h + kv) * dh, deps=(Dep("qkv_proj"),),
                          input_bytes=tokens * (h + kv) * dh * elem,
                          output_bytes=tokens * (h + kv) * dh * elem))
        last = "rotary"
    kv_dep = Dep(last, barrier=True)
    ops += [
        MatMul(name="attn_scores", role=Role.SCORES, instances=batch * h, m=seq_len, k=dh, n=keys,
               operands=batch * kv, causal=True, context_offset=context_len, deps=(kv_dep,),
               input_bytes=(tokens * h + batch * keys * kv) * dh * elem,
               output_bytes=batch * h * seq_len * keys * elem),
        Softmax(name="softmax", rows=batch * h * seq_len, row_len=keys, causal=True,
                context_offset=context_len, matrices=batch * h, deps=(Dep("attn_scores"),)),
        MatMul(name="attn_context", role=Role.CONTEXT, instances=batch * h, m=seq_len, k=keys, n=dh,
               operands=batch * kv, causal=True, context_offset=context_len,
               deps=(Dep("softmax"), kv_dep), output_bytes=tokens * d * elem),
        weight_matmul("out_proj", tokens, d, d, elem, (Dep("attn_context"),)),
        ResidualAdd(name="residual_1", count=tokens * d, deps=(Dep("out_proj"),)),
        norm("norm_2", (Dep("residual_1"),)),
    ]
    if s.mlp == "swiglu":
        ops += [
            weight_matmul("ffn_gate_up", tokens, d, 2 * f, elem, (Dep("norm_2"),)),
            SiLU(name="silu", count=tokens * f, deps=(Dep("ffn_gate_up"),)),
            Multiply(name="gate_mul", count=tokens * f, deps=(Dep("silu"), Dep("ffn_gate_up"))),
            weight_matmul("ffn_down", tokens, f, d, elem, (Dep("gate_mul"),)),
        ]
    else:
        ops += [
            weight_matmul("ffn_up", tokens, d, f, elem, (Dep("norm_2"),)),
            GELU(name="gelu", count=tokens * f, deps=(Dep("ffn_up"),)),
            weight_matmul("ffn_down", tokens, f, d, elem, (Dep("gelu"),)),
        ]
    ops.append(ResidualAdd(name="residual_2", count=tokens * d,
                           deps=(Dep("ffn_down"), Dep("residual_1"))))
    return tuple(ops)


def decoder_graph(
    workload: Workload, shape: DecoderShape, *, batch: int, phase: Phase, seq_len: int,
    context_len: int = 0,
) -> OpGraph:
    """A decoder step as an :class:`OpGraph` (``workload`` gives the name and layer count)."""
    check_point(seq_len, batch)
    return OpGraph(workload=workload, seq_len=seq_len, batch=batch,
                   layer_ops=decoder_layer(shape, batch=batch, phase=phase, seq_len=seq_len,
                                           context_len=context_len),
                   phase=phase, context_len=context_len)
