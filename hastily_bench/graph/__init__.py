"""The op graph: typed operations, graph structure, and the builders that count work.

See :mod:`hastily_bench.graph.ops` (op types), :mod:`hastily_bench.graph.structure`
(:class:`OpGraph`, phases, barriers) and :mod:`hastily_bench.graph.builders`
(encoder, decoder and operation-level graphs; the only place work is counted).
"""

from __future__ import annotations

from .builders import (
    OP_LEVEL_KINDS,
    DecoderShape,
    add_layernorm,
    build_graph,
    decoder_graph,
    decoder_layer,
    encoder_layer,
    op_graph,
    weight_matmul,
)
from .ops import (
    CATEGORIES,
    GELU,
    OP_TYPES,
    Dep,
    Elementwise,
    LayerNorm,
    MatMul,
    Multiply,
    Op,
    ResidualAdd,
    RMSNorm,
    Role,
    Rotary,
    RowOp,
    SiLU,
    Softmax,
)
from .structure import MAX_BATCH, MAX_SEQ_LEN, Level, OpGraph, Phase, check_point

__all__ = [
    "CATEGORIES", "GELU", "OP_LEVEL_KINDS", "OP_TYPES", "MAX_BATCH", "MAX_SEQ_LEN", "Dep",
    "DecoderShape", "Elementwise", "LayerNorm", "Level", "MatMul", "Multiply", "Op", "OpGraph",
    "Phase", "RMSNorm", "ResidualAdd", "Role", "Rotary", "RowOp", "SiLU", "Softmax",
    "add_layernorm", "build_graph", "check_point", "decoder_graph", "decoder_layer",
    "encoder_layer", "op_graph", "weight_matmul",
]
