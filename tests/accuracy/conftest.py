"""A tiny random-weight BERT checkpoint in the Hugging Face + sentence-transformers layout."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

SENTENCES = [
    "Return the number of items in a container.",
    "Open a file and return a stream.",
    "Return the number of items.",
    "A stream of items in a file.",
    "Open a container.",
    "Return a file.",
    "Items and streams and containers and files are returned in a number of ways, the end.",
    "Close the stream!",
]

CONFIG = {
    "architectures": ["BertModel"], "model_type": "bert", "hidden_size": 32,
    "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 64,
    "hidden_act": "gelu", "layer_norm_eps": 1e-12, "max_position_embeddings": 64,
    "type_vocab_size": 2, "position_embedding_type": "absolute", "vocab_size": 0,
}


def _vocab() -> list[str]:
    words = sorted({w.strip(".,!").lower() for s in SENTENCES for w in s.split()})
    return ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", ",", "!", *words,
            *"abcdefghijklmnopqrstuvwxyz", *(f"##{c}" for c in "abcdefghijklmnopqrstuvwxyz")]


def write_tiny_checkpoint(path: Path, seed: int = 0, *, prefix: str = "") -> Path:
    """Write config.json, model.safetensors, tokenizer.json, modules.json, 1_Pooling/config.json."""
    from safetensors.numpy import save_file
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

    path.mkdir(parents=True, exist_ok=True)
    vocab = _vocab()
    cfg = dict(CONFIG, vocab_size=len(vocab))
    (path / "config.json").write_text(json.dumps(cfg))
    rng = np.random.default_rng(seed)
    h, i, v = cfg["hidden_size"], cfg["intermediate_size"], len(vocab)

    def r(*shape: int, scale: float = 0.3) -> np.ndarray:
        return (rng.standard_normal(shape) * scale).astype(np.float32)

    w: dict[str, np.ndarray] = {
        f"{prefix}embeddings.word_embeddings.weight": r(v, h, scale=1.0),
        f"{prefix}embeddings.position_embeddings.weight": r(cfg["max_position_embeddings"], h),
        f"{prefix}embeddings.token_type_embeddings.weight": r(2, h),
        f"{prefix}embeddings.LayerNorm.weight": 1 + r(h, scale=0.1),
        f"{prefix}embeddings.LayerNorm.bias": r(h, scale=0.1),
        f"{prefix}embeddings.position_ids": np.arange(cfg["max_position_embeddings"])[None],
    }
    for n in range(cfg["num_hidden_layers"]):
        p = f"{prefix}encoder.layer.{n}."
        for m in ("attention.self.query", "attention.self.key", "attention.self.value",
                  "attention.output.dense"):
            w[p + m + ".weight"] = r(h, h, scale=h**-0.5)
            w[p + m + ".bias"] = r(h, scale=0.1)
        w[p + "intermediate.dense.weight"] = r(i, h, scale=h**-0.5)
        w[p + "intermediate.dense.bias"] = r(i, scale=0.1)
        w[p + "output.dense.weight"] = r(h, i, scale=i**-0.5)
        w[p + "output.dense.bias"] = r(h, scale=0.1)
        for ln in ("attention.output.LayerNorm", "output.LayerNorm"):
            w[p + ln + ".weight"] = 1 + r(h, scale=0.1)
            w[p + ln + ".bias"] = r(h, scale=0.1)
    save_file(w, str(path / "model.safetensors"))

    tok = Tokenizer(models.WordPiece({t: k for k, t in enumerate(vocab)}, unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)])
    tok.decoder = decoders.WordPiece()
    tok.save(str(path / "tokenizer.json"))
    (path / "modules.json").write_text(json.dumps([
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
    ]))
    (path / "1_Pooling").mkdir(exist_ok=True)
    (path / "1_Pooling" / "config.json").write_text(json.dumps({
        "word_embedding_dimension": h, "pooling_mode_cls_token": False,
        "pooling_mode_mean_tokens": True, "pooling_mode_max_tokens": False,
        "pooling_mode_mean_sqrt_len_tokens": False}))
    (path / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 48}))
    return path


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("safetensors", reason="needs the accuracy extra (part of the test extra)")
    pytest.importorskip("tokenizers", reason="needs the accuracy extra (part of the test extra)")
    return write_tiny_checkpoint(tmp_path_factory.mktemp("tiny") / "model")
