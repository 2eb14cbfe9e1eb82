"""Fuzz every reader of user files: a one-line UsageError or success, never another exception.

Readers: workload TOML, Hugging Face config.json, results JSON (also compared with itself, as
``compare`` would), claims TOML and calibration CSV. Inputs are arbitrary bytes, arbitrary
JSON/TOML documents, and valid files with one field replaced by an arbitrary value (which
reaches the type checks past the syntax). Examples are bounded so the suite stays fast.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hastily_bench.api import RunRequest, run
from hastily_bench.calibrate import load_measurements
from hastily_bench.compare import compare_documents
from hastily_bench.errors import UsageError
from hastily_bench.reproduce import load_claims
from hastily_bench.results import load_document
from hastily_bench.workload import workload_from_hf_config, workload_from_toml

#: HASTILY_FUZZ_EXAMPLES=5000 for a long local run; the default suite stays at a few seconds.
FUZZ = settings(max_examples=int(os.environ.get("HASTILY_FUZZ_EXAMPLES", "40")), deadline=None,
                derandomize=os.environ.get("HASTILY_FUZZ_EXAMPLES") is None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

scalars = (st.none() | st.booleans() | st.integers(min_value=-(10**30), max_value=10**30)
           | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=12))
json_values = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12)
toml_scalars = (st.booleans() | st.integers(min_value=-(10**30), max_value=10**30)
                | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=12))
toml_values = st.recursive(
    toml_scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12)


def toml_value(v: Any) -> str:
    """A TOML literal of ``v`` (inline tables and arrays)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)  # JSON's escapes are valid in TOML basic strings
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    return "{" + ", ".join(f"{json.dumps(k)} = {toml_value(x)}" for k, x in v.items()) + "}"


def toml_doc(d: dict[str, Any]) -> str:
    return "".join(f"{json.dumps(k)} = {toml_value(v)}\n" for k, v in d.items())


def expect_usage_error_or_success(read: Callable[[], object]) -> None:
    try:
        read()
    except UsageError as exc:
        assert "\n" not in str(exc), str(exc)


# -- valid seeds, mutated one field at a time --------------------------------------------------

WORKLOAD = {"schema_version": 1, "name": "w", "layers": 2, "hidden": 64, "heads": 2, "ffn": 256,
            "precision": "int8", "description": "d", "weight_layers": 1}
HF = {"model_type": "bert", "num_hidden_layers": 2, "hidden_size": 64, "num_attention_heads": 2,
      "intermediate_size": 256, "architectures": ["BertModel"], "is_decoder": False,
      "num_hidden_groups": 1}
CLAIMS = {"schema_version": 1,
          "sweep": {"workloads": ["bert-tiny"], "seq_lens": [128], "batches": [1]},
          "claims": [{"id": "x", "claim": "c", "source": "s", "kind": "value", "metric": "tops",
                      "accelerator": "hastily", "workload": "bert-tiny", "seq_len": 128,
                      "published": 1.0, "tolerance": 0.1, "headline": True}]}
CSV_HEADER = "accelerator,workload,seq_len,batch,latency_ms\n"


def _results_seed() -> dict[str, Any]:
    doc = run(RunRequest(workloads=["bert-tiny"], accelerators=["hastily"], seq_lens=[128],
                         numerics="off"))
    return json.loads(doc.to_json())  # type: ignore[no-any-return]


RESULTS = _results_seed()


def mutate(doc: Any, path: list[Any], value: Any) -> Any:
    """A deep copy of ``doc`` with the element at ``path`` (modulo sizes) set to ``value``."""
    doc = json.loads(json.dumps(doc))
    node = doc
    for i, step in enumerate(path):
        if isinstance(node, dict) and node:
            key = sorted(node)[step % len(node)]
        elif isinstance(node, list) and node:
            key = step % len(node)
        else:
            return doc
        if i == len(path) - 1 or not isinstance(node[key], (dict, list)):
            node[key] = value
            return doc
        node = node[key]
    return doc


paths = st.lists(st.integers(min_value=0, max_value=40), min_size=1, max_size=4)


# -- workloads ------------------------------------------------------------------------------------

@FUZZ
@given(data=st.binary(max_size=200))
def test_workload_toml_bytes(tmp_path: Path, data: bytes) -> None:
    p = tmp_path / "w.toml"
    p.write_bytes(data)
    expect_usage_error_or_success(lambda: workload_from_toml(p))


@FUZZ
@given(doc=st.dictionaries(st.text(max_size=8), toml_values, max_size=5) | st.builds(
    mutate, st.just(WORKLOAD), paths, toml_values))
def test_workload_toml_structures(tmp_path: Path, doc: dict[str, Any]) -> None:
    p = tmp_path / "w.toml"
    p.write_text(toml_doc(doc))
    expect_usage_error_or_success(lambda: workload_from_toml(p))


@FUZZ
@given(data=st.binary(max_size=200) | json_values.map(lambda v: json.dumps(v).encode())
       | st.builds(mutate, st.just(HF), paths, json_values).map(lambda v: json.dumps(v).encode()))
def test_hf_config(tmp_path: Path, data: bytes) -> None:
    p = tmp_path / "config.json"
    p.write_bytes(data)
    expect_usage_error_or_success(lambda: workload_from_hf_config(p))


# -- results files, read and compared -------------------------------------------------------------

@FUZZ
@given(data=st.binary(max_size=200) | json_values.map(lambda v: json.dumps(v).encode())
       | st.builds(mutate, st.just(RESULTS), paths, json_values).map(lambda v: json.dumps(v).encode()))
def test_results_file(tmp_path: Path, data: bytes) -> None:
    p = tmp_path / "r.json"
    p.write_bytes(data)

    def read_and_compare() -> None:
        doc = load_document(p)
        compare_documents(doc, doc, {})

    expect_usage_error_or_success(read_and_compare)


# -- claims ---------------------------------------------------------------------------------------

@FUZZ
@given(doc=st.dictionaries(st.text(max_size=8), toml_values, max_size=4)
       | st.builds(mutate, st.just(CLAIMS), paths, toml_values),
       raw=st.binary(max_size=100))
def test_claims(tmp_path: Path, doc: dict[str, Any], raw: bytes) -> None:
    p = tmp_path / "claims.toml"
    claims = doc.get("claims")
    if isinstance(claims, list) and claims and all(isinstance(c, dict) for c in claims):
        text = (toml_doc({k: v for k, v in doc.items() if k != "claims"})
                + "".join("[[claims]]\n" + toml_doc(c) for c in claims))
    else:
        text = toml_doc(doc)
    p.write_text(text)
    expect_usage_error_or_success(lambda: load_claims(p))
    p.write_bytes(raw)
    expect_usage_error_or_success(lambda: load_claims(p))


# -- calibration CSV ------------------------------------------------------------------------------

@FUZZ
@given(body=st.text(alphabet=st.sampled_from('abc,"\n 1.0-e#\'\t\r;x'), max_size=120),
       raw=st.binary(max_size=120))
def test_calibration_csv(tmp_path: Path, body: str, raw: bytes) -> None:
    p = tmp_path / "m.csv"
    p.write_text(CSV_HEADER + body)
    expect_usage_error_or_success(lambda: load_measurements(p))
    p.write_bytes(raw)
    expect_usage_error_or_success(lambda: load_measurements(p))
