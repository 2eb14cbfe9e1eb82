"""The third-party example of docs/cim-components.md, run on BERT-Base."""

from __future__ import annotations

import pytest

from hastily_bench.api import (
    Chip,
    MatMul,
    ParamSet,
    PluginHost,
    Role,
    Unsupported,
    build_graph,
    chip_capacity,
    example_preset_path,
    load_component_params,
    load_toml,
    map_kv,
    map_weights,
)
from hastily_bench.graph import OpGraph

MODEL_KEYS = {"weight_bits", "input_bits"}


def load() -> ParamSet:
    table = load_toml(example_preset_path("hastily-paper"))["params"]
    table["weight_bits"] = {"value": 8, "unit": "bits", "source": "paper", "note": "INT8"}
    table["input_bits"] = {"value": 8, "unit": "bits", "source": "paper", "note": "INT8"}
    return load_component_params(table, "example", consumers=[Chip.param_keys(), MODEL_KEYS])


def place(graph: OpGraph, p: ParamSet) -> Chip:
    chip = Chip.from_params(p)
    w = graph.workload
    weights = sum(map_weights(op.k, op.n, p.i("weight_bits"), chip.array, chip.macro.arrays).macros
                  for op in graph.layer_ops if isinstance(op, MatMul) and op.role is Role.WEIGHT)
    kv = map_kv(w.head_dim, graph.seq_len, w.heads, graph.batch, p.i("weight_bits"),
                chip.array, chip.macro.arrays)
    report = chip_capacity(chip, {"weights": graph.layers * weights, "kv": kv.macros})
    if not report.fits:
        raise Unsupported(report.summary())
    return chip


def test_example_places_bert_base_and_refuses_bert_large() -> None:
    host, p = PluginHost(), load()
    chip = place(build_graph(host.workload("bert-base"), 1024, 1), p)
    t = chip.macro.mvm_s(p.i("input_bits"))
    assert t == pytest.approx(93.3e-9, rel=1e-3)  # today's T_MVM with the fitted ADC rate
    with pytest.raises(Unsupported, match="does not fit"):
        place(build_graph(host.workload("bert-large"), 512, 1), p)
