from __future__ import annotations

import json
from pathlib import Path

import pytest

from hastily_bench.errors import UsageError
from hastily_bench.workload import (
    Workload,
    load_workload_file,
    workload_from_hf_config,
    workload_from_toml,
)

BUILTIN = {
    "bert-tiny": (2, 128, 2, 512),
    "bert-mini": (4, 256, 4, 1024),
    "bert-small": (4, 512, 8, 2048),
    "bert-medium": (8, 512, 8, 2048),
    "bert-base": (12, 768, 12, 3072),
    "bert-large": (24, 1024, 16, 4096),
    "minilm-l6": (6, 384, 12, 1536),
}


@pytest.mark.parametrize("name", sorted(BUILTIN))
def test_builtin_shapes(host, name: str) -> None:
    w = host.workload(name)
    assert (w.layers, w.hidden, w.heads, w.ffn) == BUILTIN[name]
    assert w.precision == "int8"


def _write(tmp_path: Path, text: str, name: str = "w.toml") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def test_toml_ffn_defaults_to_4x(tmp_path: Path) -> None:
    p = _write(tmp_path, 'schema_version = 1\nname = "x"\nlayers = 2\nhidden = 64\nheads = 4\n')
    w = workload_from_toml(p)
    assert w.ffn == 256 and w.head_dim == 16


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('schema_version = 1\nlayers = 2\nhidden = 64\nheads = 4\nffn = [', "malformed TOML"),
        ("layers = 2\nhidden = 64\nheads = 4\n", "missing 'schema_version'"),
        ("schema_version = 2\nlayers = 2\nhidden = 64\nheads = 4\n", "schema_version 2"),
        ("schema_version = 1\nhidden = 64\nheads = 4\n", "missing field 'layers'"),
        ('schema_version = 1\nlayers = "two"\nhidden = 64\nheads = 4\n', "'layers' must be an integer"),
        ("schema_version = 1\nlayers = 2.5\nhidden = 64\nheads = 4\n", "'layers' must be an integer"),
        ("schema_version = 1\nlayers = 0\nhidden = 64\nheads = 4\n", "layers must be >= 1"),
        ("schema_version = 1\nlayers = 2\nhidden = -64\nheads = 4\n", "hidden must be >= 1"),
        ("schema_version = 1\nlayers = 2\nhidden = 65\nheads = 4\n", "not divisible by 4 heads"),
        ("schema_version = 1\nlayers = 2\nhidden = 64\nheads = 4\nwidth = 3\n", "unknown fields"),
        ("schema_version = 1\nlayers = 2\nhidden = 4194304\nheads = 4\n", "exceeds the limit"),
        ('schema_version = 1\nlayers = 2\nhidden = 64\nheads = 4\nprecision = "int3"\n', "precision"),
    ],
)
def test_toml_errors(tmp_path: Path, body: str, message: str) -> None:
    p = _write(tmp_path, body)
    with pytest.raises(UsageError, match=message) as exc:
        workload_from_toml(p)
    assert "\n" not in str(exc.value)
    assert str(p) in str(exc.value)


HF = {
    "bert": {"model_type": "bert", "num_hidden_layers": 12, "hidden_size": 768,
             "num_attention_heads": 12, "intermediate_size": 3072},
    "roberta": {"model_type": "roberta", "num_hidden_layers": 6, "hidden_size": 768,
                "num_attention_heads": 12, "intermediate_size": 3072},
    "distilbert": {"model_type": "distilbert", "n_layers": 6, "dim": 768, "n_heads": 12,
                   "hidden_dim": 3072},
    "albert": {"model_type": "albert", "num_hidden_layers": 12, "hidden_size": 4096,
               "num_attention_heads": 64, "intermediate_size": 16384, "embedding_size": 128},
    "electra": {"model_type": "electra", "num_hidden_layers": 12, "hidden_size": 256,
                "num_attention_heads": 4, "intermediate_size": 1024},
}


@pytest.mark.parametrize("family", sorted(HF))
def test_hf_configs(tmp_path: Path, family: str) -> None:
    d = tmp_path / family
    d.mkdir()
    (d / "config.json").write_text(json.dumps(HF[family]))
    w = load_workload_file(d / "config.json")
    assert w.name == family
    cfg = HF[family]
    assert w.layers == cfg.get("num_hidden_layers", cfg.get("n_layers"))
    assert w.hidden == cfg.get("hidden_size", cfg.get("dim"))
    assert w.ffn == cfg.get("intermediate_size", cfg.get("hidden_dim"))


def test_hf_errors(tmp_path: Path) -> None:
    p = tmp_path / "c.json"
    p.write_text("{not json")
    with pytest.raises(UsageError, match="malformed JSON"):
        workload_from_hf_config(p)
    p.write_text(json.dumps({"model_type": "vit", "n_layer": 12}))
    with pytest.raises(UsageError, match="not a supported encoder"):
        workload_from_hf_config(p)
    p.write_text(json.dumps({"model_type": "bert", "hidden_size": 768}))
    with pytest.raises(UsageError, match="missing field 'num_hidden_layers'"):
        workload_from_hf_config(p)
    with pytest.raises(UsageError, match="no such file"):
        workload_from_hf_config(tmp_path / "absent.json")


def test_workload_is_validated_on_construction() -> None:
    with pytest.raises(UsageError, match="heads"):
        Workload("x", layers=1, hidden=10, heads=3, ffn=40)
