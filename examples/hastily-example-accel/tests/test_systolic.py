"""Tests of the systolic-128 plugin, written with hastily_bench.testing."""

from __future__ import annotations

import pytest
from hastily_example_accel import plugin
from hastily_example_accel.model import matmul_cycles

from hastily_bench.api import RunRequest, Unsupported, Workload, build_graph, run
from hastily_bench.testing import (
    check_accelerator_spec,
    check_estimate,
    make_host,
    tiny_graph,
)


@pytest.fixture(scope="module")
def host():  # type: ignore[no-untyped-def]
    return make_host(plugin)


def test_registered_under_its_name(host) -> None:  # type: ignore[no-untyped-def]
    reg = host.accelerator("systolic-128")
    assert reg.plugin.name == "hastily_example_accel.plugin"
    assert reg.spec.default is False
    # make_host registers the module directly; an installed copy's entry point is
    # listed as "disabled" because make_host does not autoload
    statuses = {p.name: p.status for p in host.plugins()}
    assert statuses.pop("hastily_example_accel.plugin") == "loaded"
    assert set(statuses.values()) <= {"disabled"}


def test_spec_follows_conventions() -> None:
    check_accelerator_spec(plugin.spec())


@pytest.mark.parametrize("seq_len", [16, 128])
def test_estimate_is_sane_on_tiny_and_bert_base(host, seq_len: int) -> None:  # type: ignore[no-untyped-def]
    spec = host.accelerator("systolic-128").spec
    check_estimate(spec, tiny_graph(seq_len))
    check_estimate(spec, build_graph(host.workload("bert-base"), seq_len))


def test_qkv_projection_cycles_by_hand(host) -> None:  # type: ignore[no-untyped-def]
    # BERT-Base l=128: (128 x 768) @ (768 x 2304) -> 6 x 18 tiles of 128 x 128,
    # 128 rows streamed through each, plus 128 + 128 cycles of fill and drain.
    op = build_graph(host.workload("bert-base"), 128).op("qkv_proj")
    assert matmul_cycles(op, 128, 128) == 6 * 18 * 128 + 256


def test_never_faster_than_peak(host) -> None:  # type: ignore[no-untyped-def]
    doc = run(
        RunRequest(
            workloads=["bert-base", "bert-large"],
            accelerators=["systolic-128"],
            seq_lens=[128, 512],
            batches=[1, 2],
            numerics="off",
        ),
        host=host,
    )
    for r in doc.results:
        assert r.status == "ok", r.error
        assert r.tops is not None and 0 < r.tops <= r.extra["peak_tops"]


def test_weights_stream_from_dram_only_when_they_do_not_fit(host) -> None:  # type: ignore[no-untyped-def]
    spec = host.accelerator("systolic-128").spec
    tiny = check_estimate(spec, build_graph(host.workload("bert-tiny"), 128))
    base = check_estimate(spec, build_graph(host.workload("bert-base"), 128))
    assert tiny.extra["weights_resident"] is True and tiny.extra["dram_bytes"] == 0
    assert base.extra["weights_resident"] is False
    assert base.extra["dram_bytes"] >= build_graph(host.workload("bert-base"), 128).weight_bytes
    assert any("weight buffer" in n for n in base.notes)


def test_dram_energy_matters_only_with_dram_traffic(host) -> None:  # type: ignore[no-untyped-def]
    spec = host.accelerator("systolic-128").spec
    dearer = spec.params.override("dram_energy_per_byte_j", 1e-9)
    g_tiny = build_graph(host.workload("bert-tiny"), 128)
    g_base = build_graph(host.workload("bert-base"), 128)
    assert spec.estimate(g_tiny, dearer).energy_j == spec.estimate(g_tiny, spec.params).energy_j
    assert spec.estimate(g_base, dearer).energy_j > spec.estimate(g_base, spec.params).energy_j


def test_fp16_workload_is_unsupported() -> None:
    fp16 = Workload(name="fp16-enc", layers=1, hidden=64, heads=4, ffn=256, precision="fp16")
    with pytest.raises(Unsupported, match="INT8 only"):
        plugin.spec().estimate(build_graph(fp16, 16), plugin.default_params())


@pytest.mark.parametrize(
    ("exp", "softmax", "residual"),
    [
        ("exact", "exact", "linear"),
        ("lut-none", "lut", "none"),
        ("lut-linear", "lut", "linear"),
    ],
)
def test_arithmetic_follows_softmax_exp(exp: str, softmax: str, residual: str) -> None:
    params = plugin.default_params().override("softmax_exp", exp)
    arith = plugin.arithmetic(params)
    assert (arith.matmul, arith.softmax, arith.exp_residual) == ("int8", softmax, residual)
