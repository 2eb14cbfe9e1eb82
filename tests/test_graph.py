from __future__ import annotations

import pytest

from hastily_bench.errors import UsageError
from hastily_bench.graph import MATMUL, MAX_BATCH, MAX_SEQ_LEN, build_graph


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
    sm = g.op("softmax")
    assert (sm.rows, sm.row_len, sm.elements) == (h * L, L, h * L * L)
    assert g.op("gelu").elements == L * f


def test_batch_scales_every_count(host) -> None:
    w = host.workload("bert-small")
    g1, g3 = build_graph(w, 256, 1), build_graph(w, 256, 3)
    for a, b in zip(g1.layer_ops, g3.layer_ops, strict=True):
        assert b.macs == 3 * a.macs
        assert b.elements == 3 * a.elements
        assert b.weight_bytes == a.weight_bytes  # weights are shared by the batch


def test_ops_only_count_matmuls(host) -> None:
    g = build_graph(host.workload("bert-tiny"), 128, 2)
    assert g.macs == g.layers * sum(op.macs for op in g.layer_ops if op.kind == MATMUL)
    assert all(op.macs == 0 for op in g.layer_ops if op.kind != MATMUL)


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
