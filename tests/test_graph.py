from __future__ import annotations

import dataclasses

import pytest

from hastily_bench.errors import UsageError
from hastily_bench.graph import (
    GELU,
    MAX_BATCH,
    MAX_SEQ_LEN,
    OP_TYPES,
    DecoderShape,
    LayerNorm,
    Level,
    MatMul,
    Multiply,
    OpGraph,
    Phase,
    ResidualAdd,
    RMSNorm,
    Role,
    Rotary,
    SiLU,
    Softmax,
    build_graph,
    decoder_graph,
    op_graph,
)
from hastily_bench.workload import Workload


def test_bert_base_counts_are_exact(host) -> None:
    g = build_graph(host.workload("bert-base"), 1024, 1)
    d, f, h, L = 768, 3072, 12, 1024
    per_token_weights = 3 * d * d + d * d + 2 * d * f
    per_layer = L * per_token_weights + 2 * h * L * L * (d // h)
    assert g.macs == 12 * per_layer
    assert g.ops == 2 * g.macs
    assert g.weight_bytes == 12 * per_token_weights  # INT8: one byte per weight
    names = [op.name for op in g.layer_ops]
    assert names == ["qkv_proj", "attn_scores", "softmax", "attn_context", "out_proj",
                     "add_layernorm_1", "ffn_up", "gelu", "ffn_down", "add_layernorm_2"]
    kinds = [type(op) for op in g.layer_ops]
    assert kinds == [MatMul, MatMul, Softmax, MatMul, MatMul, LayerNorm, MatMul, GELU, MatMul,
                     LayerNorm]
    assert [op.role for op in g.matmuls()] == [Role.WEIGHT, Role.SCORES, Role.CONTEXT,
                                               Role.WEIGHT, Role.WEIGHT, Role.WEIGHT]
    sm = next(g.of_type(Softmax))
    assert (sm.rows, sm.row_len, sm.elements) == (h * L, L, h * L * L)
    assert next(g.of_type(GELU)).elements == L * f


def test_batch_scales_every_count(host) -> None:
    w = host.workload("bert-small")
    g1, g3 = build_graph(w, 256, 1), build_graph(w, 256, 3)
    for a, b in zip(g1.layer_ops, g3.layer_ops, strict=True):
        assert b.macs == 3 * a.macs
        assert b.elements == 3 * a.elements
        assert b.weight_bytes == a.weight_bytes  # weights are shared by the batch


def test_ops_only_count_matmuls(host) -> None:
    g = build_graph(host.workload("bert-tiny"), 128, 2)
    assert g.macs == g.layers * sum(op.macs for op in g.matmuls())
    assert all(op.macs == 0 for op in g.layer_ops if not isinstance(op, MatMul))


@pytest.mark.parametrize(("seq", "batch", "msg"), [
    (0, 1, "sequence length must be >= 1"),
    (-5, 1, "sequence length must be >= 1"),
    (MAX_SEQ_LEN + 1, 1, f"exceeds the limit {MAX_SEQ_LEN}"),
    (128, 0, "batch must be >= 1"),
    (128, MAX_BATCH + 1, f"exceeds the limit {MAX_BATCH}"),
])
def test_point_limits(host, seq: int, batch: int, msg: str) -> None:
    with pytest.raises(UsageError, match=msg):
        build_graph(host.workload("bert-tiny"), seq, batch)


def test_the_attention_barrier_is_structure_not_a_name(host) -> None:
    g = build_graph(host.workload("bert-base"), 64, 1)
    assert g.barrier_index() == 1  # Q K^T waits for all of K
    segs = [([op.name for op in seg], rep) for seg, rep in g.stream_segments()]
    pre, post = ["qkv_proj"], [op.name for op in g.layer_ops[1:]]
    assert segs == [(pre, 1), (post + pre, 11), (post, 1)]
    # renaming every op changes no structure
    renamed = OpGraph(g.workload, g.seq_len, g.batch, tuple(
        dataclasses.replace(op, name=f"x{i}", deps=tuple(
            dataclasses.replace(d, op=f"x{[o.name for o in g.layer_ops].index(d.op)}")
            for d in op.deps))
        for i, op in enumerate(g.layer_ops)))
    assert renamed.barrier_index() == 1
    assert [rep for _, rep in renamed.stream_segments()] == [1, 11, 1]


def test_graph_refuses_duplicate_names_and_forward_dependencies(host) -> None:
    g = build_graph(host.workload("bert-tiny"), 8, 1)
    with pytest.raises(ValueError, match="unique"):
        OpGraph(g.workload, 8, 1, g.layer_ops + g.layer_ops[:1])
    with pytest.raises(ValueError, match="comes later"):
        OpGraph(g.workload, 8, 1, tuple(reversed(g.layer_ops)))


def test_op_level_graphs_come_from_the_same_layer(host) -> None:
    w = host.workload("bert-base")
    full = build_graph(w, 512, 2)  # the model the ops belong to: every layer
    att = op_graph("attention", w, seq_len=512, batch=2)
    assert att.level is Level.OP and att.within == full and att.layers == 1
    assert [op.name for op in att.layer_ops] == ["attn_scores", "softmax", "attn_context"]
    assert all(op in full.layer_ops for op in att.layer_ops)
    assert att.barrier_index() is None  # Q, K, V are inputs of an op-level graph
    sm = op_graph("softmax", w, seq_len=8192, rows=1)
    (row,) = sm.layer_ops
    assert isinstance(row, Softmax) and (row.rows, row.row_len, row.elements) == (1, 8192, 8192)
    mvm = op_graph("mvm", w, seq_len=1, rows=64, cols=32)
    (m,) = mvm.layer_ops
    assert isinstance(m, MatMul) and m.role is Role.WEIGHT and (m.m, m.k, m.n) == (1, 64, 32)
    assert mvm.model is mvm.within and full.model is full


@pytest.mark.parametrize(("kind", "kw", "msg"), [
    ("conv", {}, "unknown operation"),
    ("mvm", {"rows": 0}, "--rows must be between"),
    ("softmax", {"rows": 10**9}, "--rows must be between"),
    ("softmax", {"cols": 3}, "--cols applies"),
    ("attention", {"rows": 3}, "apply to"),
])
def test_op_graph_errors(host, kind: str, kw: dict[str, int], msg: str) -> None:
    with pytest.raises(UsageError, match=msg):
        op_graph(kind, host.workload("bert-tiny"), seq_len=16, **kw)


def test_every_op_type_serialises() -> None:
    assert set(OP_TYPES) == {"matmul", "softmax", "layernorm", "rmsnorm", "gelu", "silu", "add",
                             "mul", "rotary"}
    g = build_graph(Workload("w", 1, 64, 4, 128), 4, 1)
    d = g.layer_ops[1].to_dict()
    assert d["kind"] == "matmul" and d["role"] == "scores"
    assert d["deps"] == [{"op": "qkv_proj", "barrier": True}] and d["macs"] == 4 * 4 * 16 * 4  # heads x (4 x 16) @ (16 x 4)


# --- decoder blocks: the contract expresses them without change -------------------------------

def _sum_visible(rows: int, keys: int, offset: int) -> int:
    return sum(min(keys, offset + i + 1) for i in range(rows))


def test_gpt2_style_block_counts_by_hand() -> None:
    # GPT-2 small: d = 768, 12 heads, FFN 3072, LayerNorm, GELU MLP, no rotary, causal MHA
    shape = DecoderShape(hidden=768, heads=12, ffn=3072, norm="layernorm", mlp="gelu", rotary=False)
    w = Workload("gpt2", 12, 768, 12, 3072)
    B, L, d, f, h, dh = 2, 100, 768, 3072, 12, 64
    g = decoder_graph(w, shape, batch=B, phase=Phase.PREFILL, seq_len=L)
    weights = B * L * (3 * d * d + d * d + 2 * d * f)
    visible = L * (L + 1) // 2  # causal: row i sees i + 1 keys
    attention = 2 * B * h * dh * visible
    assert sum(op.macs for op in g.layer_ops) == weights + attention
    assert [type(op) for op in g.layer_ops] == [LayerNorm, MatMul, MatMul, Softmax, MatMul, MatMul,
                                                ResidualAdd, LayerNorm, MatMul, GELU, MatMul,
                                                ResidualAdd]
    sm = next(g.of_type(Softmax))
    assert sm.elements == B * h * visible
    assert g.phase is Phase.PREFILL and g.barrier_index() == 2


def test_llama_style_block_counts_by_hand() -> None:
    # Llama-like: d = 4096, 32 query heads, 8 K/V heads (GQA), SwiGLU 11008, RMSNorm, rotary
    shape = DecoderShape(hidden=4096, heads=32, kv_heads=8, ffn=11008)
    w = Workload("llama", 32, 4096, 32, 11008)
    d, f, h, kv, dh = 4096, 11008, 32, 8, 128
    # decode: one new token per sequence against a KV cache of 1000 tokens
    B, ctx = 4, 1000
    g = decoder_graph(w, shape, batch=B, phase=Phase.DECODE, seq_len=1, context_len=ctx)
    qkv_n = (h + 2 * kv) * dh  # 6144: GQA shrinks the K and V projections
    weights = B * (d * qkv_n + d * d + d * 2 * f + f * d)
    attention = 2 * B * h * dh * (ctx + 1)  # the new token sees the cache and itself
    assert sum(op.macs for op in g.layer_ops) == weights + attention
    types = [type(op) for op in g.layer_ops]
    assert types == [RMSNorm, MatMul, Rotary, MatMul, Softmax, MatMul, MatMul, ResidualAdd,
                     RMSNorm, MatMul, SiLU, Multiply, MatMul, ResidualAdd]
    scores = g.matmuls(Role.SCORES)[0]
    assert scores.operands == B * kv and scores.instances == B * h  # K/V shared by 4 heads each
    assert next(g.of_type(Rotary)).elements == B * (h + kv) * dh
    # prefill of 7 tokens: causal counts by hand
    p = decoder_graph(w, shape, batch=1, phase=Phase.PREFILL, seq_len=7)
    att = sum(op.macs for op in p.matmuls(Role.SCORES) + p.matmuls(Role.CONTEXT))
    assert att == 2 * h * dh * _sum_visible(7, 7, 0) == 2 * h * dh * 28


def test_decoder_phase_rules() -> None:
    from hastily_bench.graph import decoder_layer

    shape = DecoderShape(hidden=64, heads=4, ffn=128)
    with pytest.raises(ValueError, match="prefill or decode"):
        decoder_layer(shape, batch=1, phase=Phase.ENCODE, seq_len=4)
    with pytest.raises(ValueError, match="empty KV cache"):
        decoder_layer(shape, batch=1, phase=Phase.PREFILL, seq_len=4, context_len=3)
