"""The NumPy encoder against a straightforward float64 reference, and its arithmetics."""

from __future__ import annotations

import json
import math
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
from conftest import CONFIG, SENTENCES, write_tiny_checkpoint

from hastily_bench.accelerator import Arithmetic
from hastily_bench.accuracy import FP32, encode, load_checkpoint
from hastily_bench.errors import HastilyError


def _reference(model: Path, sentence: str) -> np.ndarray:
    """BERT + mean pooling + normalisation, one sentence, float64, math.erf, no batching."""
    from safetensors.numpy import load_file
    from tokenizers import Tokenizer

    w = {k: v.astype(np.float64) for k, v in load_file(str(model / "model.safetensors")).items()}
    ids = Tokenizer.from_file(str(model / "tokenizer.json")).encode(sentence).ids
    h, nh = CONFIG["hidden_size"], CONFIG["num_attention_heads"]
    d = h // nh

    def ln(x: np.ndarray, name: str) -> np.ndarray:
        mu = x.mean(-1, keepdims=True)
        var = ((x - mu) ** 2).mean(-1, keepdims=True)
        return (x - mu) / np.sqrt(var + 1e-12) * w[name + ".weight"] + w[name + ".bias"]

    def dense(x: np.ndarray, name: str) -> np.ndarray:
        return x @ w[name + ".weight"].T + w[name + ".bias"]

    x = np.stack([w["embeddings.word_embeddings.weight"][t] + w["embeddings.position_embeddings.weight"][p]
                  + w["embeddings.token_type_embeddings.weight"][0] for p, t in enumerate(ids)])
    x = ln(x, "embeddings.LayerNorm")
    for n in range(CONFIG["num_hidden_layers"]):
        p = f"encoder.layer.{n}."
        q, k, v = (dense(x, p + f"attention.self.{m}") for m in ("query", "key", "value"))
        ctx = np.zeros_like(x)
        for head in range(nh):
            sl = slice(head * d, (head + 1) * d)
            s = q[:, sl] @ k[:, sl].T / math.sqrt(d)
            e = np.exp(s - s.max(1, keepdims=True))
            ctx[:, sl] = (e / e.sum(1, keepdims=True)) @ v[:, sl]
        x = ln(x + dense(ctx, p + "attention.output.dense"), p + "attention.output.LayerNorm")
        f = dense(x, p + "intermediate.dense")
        f = f * 0.5 * (1 + np.vectorize(math.erf)(f / math.sqrt(2)))
        x = ln(x + dense(f, p + "output.dense"), p + "output.LayerNorm")
    e = x.mean(0)
    return e / np.linalg.norm(e)


def _cos(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sum(a * b, 1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


def test_fp32_equals_straightforward_reference(tiny_model: Path) -> None:
    got = encode(tiny_model, SENTENCES, FP32)
    want = np.stack([_reference(tiny_model, s) for s in SENTENCES])
    assert got.shape == (len(SENTENCES), CONFIG["hidden_size"]) and got.dtype == np.float32
    assert np.all(1 - _cos(got, want) < 1e-5)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1, rtol=1e-6)  # Normalize module


ARITHMETICS = [
    Arithmetic(matmul="fp16"),
    Arithmetic(matmul="int8"),
    Arithmetic(matmul="int8", weight_scale="tensor"),
    Arithmetic(matmul="int8", softmax="lut", exp_residual="none"),
    Arithmetic(matmul="int8", softmax="lut", analog=True, adc_bits=5),
    Arithmetic(matmul="int8", analog=True, array_rows=16, cell_bits=2, dac_bits=2, adc_bits=7),
]


@pytest.mark.parametrize("arith", ARITHMETICS, ids=lambda a: a.detail())
def test_each_sentence_as_at_batch_one(tiny_model: Path, arith: Arithmetic) -> None:
    together = encode(tiny_model, SENTENCES, arith)
    alone = np.concatenate([encode(tiny_model, [s], arith) for s in SENTENCES[:3]])
    np.testing.assert_array_equal(together[:3], alone)
    # not fp32: the arithmetic really ran (close to it unless a narrow ADC ruins it)
    ref = encode(tiny_model, SENTENCES, FP32)
    cos = _cos(together, ref)
    assert np.all(cos > (0.2 if arith.analog else 0.9)) and np.any(cos < 1 - 1e-9)


def test_analog_with_lossless_adc_equals_int8(tiny_model: Path) -> None:
    # 64 rows x 1-bit cells x 1-bit DAC: partial sums 0..64 need 7 bits
    int8 = encode(tiny_model, SENTENCES, Arithmetic(matmul="int8", softmax="lut"))
    wide = encode(tiny_model, SENTENCES, Arithmetic(matmul="int8", softmax="lut", analog=True, adc_bits=7))
    np.testing.assert_array_equal(int8, wide)
    narrow = encode(tiny_model, SENTENCES, Arithmetic(matmul="int8", softmax="lut", analog=True, adc_bits=4))
    assert not np.array_equal(int8, narrow)


def test_fp16_is_closer_than_int8(tiny_model: Path) -> None:
    ref = encode(tiny_model, SENTENCES, FP32)
    fp16 = _cos(encode(tiny_model, SENTENCES, Arithmetic(matmul="fp16")), ref)
    int8 = _cos(encode(tiny_model, SENTENCES, Arithmetic(matmul="int8")), ref)
    assert fp16.min() > 0.9999 and 1 - fp16.mean() < 1 - int8.mean()


def test_zip_and_prefixed_weights_load_the_same(tiny_model: Path, tmp_path: Path) -> None:
    archive = tmp_path / "model.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for f in tiny_model.rglob("*"):
            if f.is_file():
                zf.write(f, "inner/" + str(f.relative_to(tiny_model)))
    prefixed = write_tiny_checkpoint(tmp_path / "prefixed", prefix="bert.")
    base = encode(tiny_model, SENTENCES[:4], FP32)
    np.testing.assert_array_equal(encode(archive, SENTENCES[:4], FP32), base)
    np.testing.assert_array_equal(encode(prefixed, SENTENCES[:4], FP32), base)


def test_truncation_to_max_seq_length(tiny_model: Path) -> None:
    ck = load_checkpoint(tiny_model)
    long = " ".join(["items"] * 200)
    assert ck.max_seq_length == 48 and len(ck.tokenize([long])[0]) == 48
    assert encode(tiny_model, [long], FP32).shape == (1, CONFIG["hidden_size"])


@pytest.mark.parametrize(("edit", "message"), [
    (lambda p: (p / "model.safetensors").unlink(), "model.safetensors is missing"),
    (lambda p: (p / "config.json").write_text(json.dumps(dict(CONFIG, model_type="gpt2"))), "model_type is 'gpt2'"),
    (lambda p: (p / "config.json").write_text("{"), "config.json is not valid JSON"),
    (lambda p: (p / "tokenizer.json").write_text("[]"), "tokenizer.json cannot be read"),
    (lambda p: (p / "config.json").write_text(json.dumps(dict(CONFIG, hidden_size=48, vocab_size=99))), "has shape"),
])
def test_bad_checkpoints_are_one_line_errors(tiny_model: Path, tmp_path: Path, edit, message: str) -> None:  # type: ignore[no-untyped-def]
    broken = tmp_path / "broken"
    shutil.copytree(tiny_model, broken)
    edit(broken)
    with pytest.raises(HastilyError, match=message) as exc:
        load_checkpoint(broken)
    assert "\n" not in str(exc.value)


def test_missing_path(tmp_path: Path) -> None:
    with pytest.raises(HastilyError, match="no such file"):
        load_checkpoint(tmp_path / "nope")


def test_a_bare_string_is_refused_not_split_into_characters(tiny_model: Path) -> None:
    with pytest.raises(ValueError, match="expected a list of strings, got one str"):
        encode(tiny_model, "one sentence")
    assert encode(tiny_model, ["one sentence"]).shape[0] == 1
