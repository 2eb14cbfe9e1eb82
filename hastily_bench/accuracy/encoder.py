"""A BERT sentence encoder in NumPy whose matrix products and softmax follow an :class:`Arithmetic`.

Every sentence is computed as at batch 1 (as the accelerators' latency models assume): the
tokens of many sentences are packed into one matrix for the weight products, attention runs
over each sentence alone (no padding, no mask), and every dynamic quantisation scale is taken
per token (weight products) or per sentence (attention), so a sentence's embedding does not
depend on which others are encoded with it.

Arithmetics (``docs/accuracy.md``)
----------------------------------
* **fp32** (:data:`FP32`, the reference): float32 everywhere, exact softmax.
* **fp16**: operands of every matrix product (weights, activations, Q, K, V, probabilities)
  rounded to float16, products accumulated in float32; LayerNorm, GELU and softmax in float32.
* **int8**: weights symmetric int8 with one scale per output channel or per tensor,
  activations symmetric int8 with a dynamic per-token scale, products exact in integers;
  attention through :func:`hastily_bench.kernels.attention_int8` (Q, K, V int8 with one
  scale per sentence, the exact or table exponent as the arithmetic says).
* **analog**: as int8, with ``weight_bits``/``input_bits`` and every weight product computed
  by :func:`hastily_bench.accuracy.analog.analog_mvm` (the arrays' bit-serial, bit-sliced,
  ADC-quantised MVM). Attention products as int8.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from .. import kernels
from ..accelerator import Arithmetic
from .analog import AnalogConfig, AnalogMatrix, _float_matmul
from .checkpoint import Checkpoint

__all__ = ["FP32", "Encoder", "gelu_erf"]

F32 = NDArray[np.float32]
#: Sentinel arithmetic for the float32 reference (``Arithmetic`` has no float32 matmul).
FP32 = "fp32"
#: Tokens per stacked batch (bounds memory).
_BATCH_TOKENS = 4096
LINEARS = ("attention.self.query", "attention.self.key", "attention.self.value",
           "attention.output.dense", "intermediate.dense", "output.dense")


def _erf(x: F32) -> F32:
    """erf by Abramowitz & Stegun 7.1.26 (absolute error below 1.5e-7, the size of float32
    rounding), evaluated in float32 in place: NumPy has no erf."""
    z = np.abs(x)
    t = np.float32(0.3275911) * z
    t += np.float32(1.0)
    np.reciprocal(t, out=t)
    poly = t * np.float32(1.061405429)
    for c in (-1.453152027, 1.421413741, -0.284496736, 0.254829592):
        poly += np.float32(c)
        poly *= t
    z *= z
    np.negative(z, out=z)
    np.exp(z, out=z)
    poly *= z  # erfc(|x|)
    np.subtract(np.float32(1.0), poly, out=poly)  # erf(|x|)
    return np.copysign(poly, x)


def gelu_erf(x: F32) -> F32:
    """BERT's GELU, ``x * (1 + erf(x / sqrt 2)) / 2`` (erf within 1.5e-7), in float32."""
    return (np.float32(0.5) * x * (np.float32(1.0) + _erf(x * np.float32(0.7071067811865476)))).astype(np.float32)


def _gelu_tanh(x: F32) -> F32:
    return (0.5 * x * (1.0 + np.tanh(0.7978845608028654 * (x + 0.044715 * x**3)))).astype(np.float32)


def _layer_norm(x: F32, g: F32, b: F32, eps: float) -> F32:
    mu = x.mean(axis=-1, keepdims=True)
    xc = x - mu
    var = (xc * xc).mean(axis=-1, keepdims=True)
    return (xc / np.sqrt(var + np.float32(eps)) * g + b).astype(np.float32)


def _quantize_tokens(x: F32, bits: int) -> tuple[NDArray[np.float32], NDArray[np.float64]]:
    """Symmetric quantisation of (T, H) with one dynamic scale per token (row); the integer
    values are returned as float32 (exact below 2^24)."""
    qmax = (1 << (bits - 1)) - 1
    amax = np.abs(x).max(axis=1).astype(np.float64)
    scale = np.where(amax > 0, amax / qmax, 1.0)
    q = np.clip(np.rint(x / scale[:, None].astype(np.float32)), -qmax, qmax).astype(np.float32)
    return q, scale


def _quantize_weight(w: F32, bits: int, per: str) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    """Symmetric quantisation of a (out, in) weight: scale per output channel or per tensor."""
    qmax = (1 << (bits - 1)) - 1
    amax = (np.abs(w).max(axis=1) if per == "channel" else np.full(w.shape[0], np.abs(w).max()))
    scale = np.where(amax > 0, amax.astype(np.float64) / qmax, 1.0)
    q = np.clip(np.rint(w / scale[:, None]), -qmax, qmax).astype(np.int64)
    return q, scale


@dataclass
class _Linear:
    w: F32  # (in, out) float (fp32/fp16 operands)
    bias: F32
    wq: NDArray[np.float32] | None = None  # (in, out) integer values
    wscale: NDArray[np.float64] | None = None  # (out,)
    array: AnalogMatrix | None = None


class Encoder:
    """The checkpoint's encoder computed in one arithmetic.

    Parameters
    ----------
    checkpoint
        From :func:`hastily_bench.accuracy.load_checkpoint`.
    arithmetic
        :data:`FP32` or an :class:`Arithmetic` (validated: analog needs ``input_bits`` and
        ``weight_bits`` >= 2).
    """

    def __init__(self, checkpoint: Checkpoint, arithmetic: Arithmetic | str) -> None:
        if not (arithmetic == FP32 or isinstance(arithmetic, Arithmetic)):
            raise ValueError(f"arithmetic: expected 'fp32' or an Arithmetic, got {arithmetic!r}")
        if isinstance(arithmetic, Arithmetic) and arithmetic.softmax == "lut" and arithmetic.lut_entries != 128:
            raise ValueError(f"the kernels execute the 128-entry exponent table, not {arithmetic.lut_entries}")
        self.ck = checkpoint
        self.arith = arithmetic
        self.analog: AnalogConfig | None = None
        bits = 8
        if isinstance(arithmetic, Arithmetic) and arithmetic.analog:
            self.analog = AnalogConfig.from_arithmetic(arithmetic)
        self.matmul = "fp32" if arithmetic == FP32 else arithmetic.matmul  # type: ignore[union-attr]
        cfg = checkpoint.config
        self.linears: list[dict[str, _Linear]] = []
        for n in range(cfg.num_hidden_layers):
            layer: dict[str, _Linear] = {}
            for name in LINEARS:
                key = f"encoder.layer.{n}.{name}"
                w, b = checkpoint.weights[key + ".weight"], checkpoint.weights[key + ".bias"]
                lin = _Linear(w=np.ascontiguousarray(w.T), bias=b)
                if self.matmul == "fp16":
                    lin.w = lin.w.astype(np.float16).astype(np.float32)
                elif self.matmul == "int8":
                    assert isinstance(arithmetic, Arithmetic)
                    wbits = self.analog.weight_bits if self.analog else bits
                    q, s = _quantize_weight(w, wbits, arithmetic.weight_scale)
                    lin.wq, lin.wscale = np.ascontiguousarray(q.T, dtype=np.float32), s
                    if self.analog is not None:
                        lin.array = AnalogMatrix(np.ascontiguousarray(q.T), self.analog)
                layer[name] = lin
            self.linears.append(layer)
        if cfg.hidden_act == "gelu":
            self.act: Callable[[F32], F32] = gelu_erf
        elif cfg.hidden_act == "relu":
            self.act = lambda x: np.maximum(x, 0).astype(np.float32)
        else:
            self.act = _gelu_tanh

    # --- products ------------------------------------------------------------------
    def _linear(self, x: F32, lin: _Linear) -> F32:
        """(T, in) tokens -> (T, out); int8 and analog inputs get one scale per token."""
        if self.matmul == "fp32":
            y = x @ lin.w
        elif self.matmul == "fp16":
            y = x.astype(np.float16).astype(np.float32) @ lin.w
        else:
            assert lin.wq is not None and lin.wscale is not None
            ibits = self.analog.input_bits if self.analog else 8
            wbits = self.analog.weight_bits if self.analog else 8
            xq, xs = _quantize_tokens(x, ibits)
            if lin.array is not None:
                acc = lin.array.matmul_float(xq)
            else:
                acc = _float_matmul(xq, lin.wq, ((1 << (ibits - 1)) - 1) * ((1 << (wbits - 1)) - 1))
            # the exact integer products, dequantised in float32 (as a GPU's int32 -> fp32)
            y = acc.astype(np.float32, copy=False)
            y *= xs.astype(np.float32)[:, None]
            y *= lin.wscale.astype(np.float32)
        return (y + lin.bias).astype(np.float32)

    def _attention(self, q: F32, k: F32, v: F32) -> F32:
        """(B, heads, L, d) -> (B, heads, L, d)."""
        d = q.shape[-1]
        if self.matmul == "int8":
            assert isinstance(self.arith, Arithmetic)
            out = np.empty_like(q)
            for i in range(q.shape[0]):  # per-sentence scales
                q8, qs = kernels.quantize_int8(q[i])
                k8, ks = kernels.quantize_int8(k[i])
                v8, vs = kernels.quantize_int8(v[i])
                out[i] = kernels.attention_int8(
                    q8, k8, v8, max(qs, 1e-30), max(ks, 1e-30), max(vs, 1e-30),
                    softmax=self.arith.softmax,  # type: ignore[arg-type]
                    residual=self.arith.exp_residual,  # type: ignore[arg-type]
                    n_threads=1)
            return out
        if self.matmul == "fp16":
            q, k, v = (a.astype(np.float16).astype(np.float32) for a in (q, k, v))
        s = (q @ np.swapaxes(k, -1, -2)) * np.float32(1.0 / np.sqrt(d))
        s -= s.max(axis=-1, keepdims=True)
        if isinstance(self.arith, Arithmetic) and self.arith.softmax == "lut":
            e = kernels.lut_exp(s, residual=self.arith.exp_residual).astype(np.float32)  # type: ignore[arg-type]
        else:
            e = np.exp(s)
        p = e / e.sum(axis=-1, keepdims=True)
        if self.matmul == "fp16":
            p = p.astype(np.float16).astype(np.float32)
        return (p @ v).astype(np.float32)

    # --- the model -------------------------------------------------------------------
    def _forward(self, ids: NDArray[np.int64], groups: list[tuple[int, int, int]]) -> F32:
        """Packed token ids (T,) of sentences sorted by length -> (sentences, hidden) pooled.

        ``groups`` are (first row, sentences, length) of runs of equal-length sentences: the
        matrix products see all T tokens at once, attention one run at a time.
        """
        ck, cfg, wt = self.ck, self.ck.config, self.ck.weights
        pos = np.concatenate([np.tile(np.arange(length), count) for _, count, length in groups])
        x = (wt["embeddings.word_embeddings.weight"][ids]
             + wt["embeddings.position_embeddings.weight"][pos]
             + wt["embeddings.token_type_embeddings.weight"][0][None])
        x = _layer_norm(x.astype(np.float32), wt["embeddings.LayerNorm.weight"],
                        wt["embeddings.LayerNorm.bias"], cfg.layer_norm_eps)
        nh, hd = cfg.num_attention_heads, cfg.head_dim
        for n, lin in enumerate(self.linears):
            p = f"encoder.layer.{n}."
            q = self._linear(x, lin["attention.self.query"])
            k = self._linear(x, lin["attention.self.key"])
            v = self._linear(x, lin["attention.self.value"])
            ctx = np.empty_like(q)
            for r0, count, length in groups:
                r1 = r0 + count * length

                def heads(t: F32) -> F32:
                    return np.ascontiguousarray(
                        t[r0:r1].reshape(count, length, nh, hd).transpose(0, 2, 1, 3))

                c = self._attention(heads(q), heads(k), heads(v))
                ctx[r0:r1] = c.transpose(0, 2, 1, 3).reshape(count * length, nh * hd)
            a = self._linear(ctx, lin["attention.output.dense"])
            x = _layer_norm(x + a, wt[p + "attention.output.LayerNorm.weight"],
                            wt[p + "attention.output.LayerNorm.bias"], cfg.layer_norm_eps)
            f = self.act(self._linear(x, lin["intermediate.dense"]))
            f = self._linear(f, lin["output.dense"])
            x = _layer_norm(x + f, wt[p + "output.LayerNorm.weight"],
                            wt[p + "output.LayerNorm.bias"], cfg.layer_norm_eps)
        pooled = []
        for r0, count, length in groups:
            t = x[r0 : r0 + count * length].reshape(count, length, -1)
            pooled.append(t[:, 0] if ck.pooling == "cls" else t.max(axis=1) if ck.pooling == "max"
                          else t.mean(axis=1))
        return np.concatenate(pooled).astype(np.float32)

    def encode(self, sentences: list[str], progress: Callable[[int], None] | None = None) -> F32:
        """Embeddings (len(sentences), hidden), float32, in the order given; normalised to unit
        length when the checkpoint has a ``Normalize`` module. ``progress(n)`` is called with
        the number of sentences finished after each pack of about 4096 tokens."""
        if isinstance(sentences, str) or not all(isinstance(s, str) for s in sentences):
            raise ValueError("sentences: expected a list of strings")
        token_ids = self.ck.tokenize(list(sentences))
        out = np.zeros((len(token_ids), self.ck.config.hidden_size), dtype=np.float32)
        order = sorted(range(len(token_ids)), key=lambda i: (len(token_ids[i]), i))
        done = 0
        while done < len(order):
            pack: list[int] = []
            tokens = 0
            while done + len(pack) < len(order) and (not pack or tokens < _BATCH_TOKENS):
                i = order[done + len(pack)]
                pack.append(i)
                tokens += len(token_ids[i])
            groups: list[tuple[int, int, int]] = []
            row = 0
            for i in pack:
                length = len(token_ids[i])
                if groups and groups[-1][2] == length:
                    r0, count, _ = groups[-1]
                    groups[-1] = (r0, count + 1, length)
                else:
                    groups.append((row, 1, length))
                row += length
            ids = np.concatenate([np.asarray(token_ids[i], dtype=np.int64) for i in pack])
            out[pack] = self._forward(ids, groups)
            done += len(pack)
            if progress is not None:
                progress(done)
        if self.ck.normalize:
            norms = np.linalg.norm(out, axis=1, keepdims=True)
            out /= np.maximum(norms, np.float32(1e-12))
        return out


def describe(arith: Arithmetic | str) -> str:
    """Text for the arithmetic column."""
    return "fp32" if arith == FP32 else arith.detail()  # type: ignore[union-attr]
