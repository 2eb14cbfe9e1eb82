"""Workloads: transformer encoder shapes, from built-in TOML files or Hugging Face configs.

A workload is only the shape of an encoder stack (layers, hidden size, heads, FFN
width, precision). Embeddings, pooler and classifier heads are not modelled: they
are a few percent of BERT's work at the sequence lengths studied and the paper's
throughput figures count the encoder's matrix products only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from .errors import UsageError
from .params import check_schema_version, load_json, load_toml

WORKLOAD_SCHEMA_VERSION = 1

#: Largest dimension accepted in a workload file; beyond this a file is surely wrong.
MAX_DIM = 1 << 20
PRECISIONS = {"int8": 1, "fp16": 2, "fp32": 4}


@dataclass(frozen=True)
class Workload:
    """Shape of a BERT-style encoder.

    Parameters
    ----------
    name
        Identifier (``bert-base``).
    layers, hidden, heads, ffn
        Encoder layers, model width d, attention heads h, FFN inner width.
    precision
        Numeric format of weights and activations (``int8`` in every paper figure).
    description, source
        Free text: what the model is and where its shape comes from.
    weight_layers
        Distinct layers of weights: ``layers`` (the default, given as 0) unless layers share
        weights. ALBERT repeats ``num_hidden_groups`` layers of weights (one, in the
        published models) over all ``layers`` layers of computation; a chip holding weights
        in place holds each distinct layer once. After ``dataclasses.replace(w, layers=1)``
        it may exceed ``layers``: read :attr:`distinct_weight_layers` (or take the minimum).
    """

    name: str
    layers: int
    hidden: int
    heads: int
    ffn: int
    precision: str = "int8"
    description: str = ""
    source: str = ""
    weight_layers: int = 0

    def __post_init__(self) -> None:
        check_name(self.name)
        if self.weight_layers == 0:  # the default: every layer has its own weights
            object.__setattr__(self, "weight_layers", self.layers)
        for field in ("layers", "hidden", "heads", "ffn", "weight_layers"):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, int):
                raise UsageError(f"workload {self.name!r}: {field} must be an integer, got {value!r}")
            if value < 1:
                raise UsageError(f"workload {self.name!r}: {field} must be >= 1, got {value}")
            if value > MAX_DIM:
                raise UsageError(f"workload {self.name!r}: {field} = {value} exceeds the limit {MAX_DIM}")
        if self.hidden % self.heads:
            raise UsageError(
                f"workload {self.name!r}: hidden size {self.hidden} is not divisible by "
                f"{self.heads} heads"
            )
        if self.precision not in PRECISIONS:
            raise UsageError(
                f"workload {self.name!r}: precision {self.precision!r} is not one of "
                f"{', '.join(PRECISIONS)}"
            )

    @property
    def distinct_weight_layers(self) -> int:
        """Layers of weights a chip must hold: ``layers`` unless layers share weights."""
        return min(self.weight_layers, self.layers)

    @property
    def head_dim(self) -> int:
        """Per-head width d / h."""
        return self.hidden // self.heads

    @property
    def bytes_per_element(self) -> int:
        """Bytes of one weight or activation element at this precision."""
        return PRECISIONS[self.precision]

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "layers": self.layers,
            "hidden": self.hidden,
            "heads": self.heads,
            "ffn": self.ffn,
            "precision": self.precision,
            # only when layers share weights, so every other workload's output is unchanged
            **({"weight_layers": self.weight_layers} if self.distinct_weight_layers != self.layers else {}),
        }


#: Longest workload name; names are table cells, Markdown headings and file-name parts.
MAX_NAME_LEN = 100


def check_name(name: object, what: str = "workload") -> None:
    """Refuse a name that would break a table, a Markdown heading or a CSV row.

    A name is a non-empty string of at most :data:`MAX_NAME_LEN` printable characters
    without ``|``, backquote, or leading/trailing spaces. ``what`` names it in the
    message (workloads, accelerators and ablation steps follow the same rule).
    """
    if not isinstance(name, str) or not name:
        raise UsageError(f"{what} name must be a non-empty string, got {name!r}")
    if len(name) > MAX_NAME_LEN:
        raise UsageError(f"{what} name {name[:20]!r}... is longer than {MAX_NAME_LEN} characters")
    bad = [c for c in name if c in "|`" or not c.isprintable()]
    if bad:
        raise UsageError(f"{what} name {name!r} contains {bad[0]!r}; use letters, digits, "
                         "'-', '_', '.' or spaces")
    if name != name.strip():
        raise UsageError(f"{what} name {name!r} starts or ends with a space")


def _int_field(doc: Mapping[str, Any], key: str, origin: str) -> int:
    if key not in doc:
        raise UsageError(f"{origin}: missing field {key!r}")
    value = doc[key]
    if isinstance(value, bool) or not isinstance(value, int):
        raise UsageError(f"{origin}: field {key!r} must be an integer, got {value!r}")
    return value


def _weight_layers(doc: Mapping[str, Any], origin: str) -> int:
    if "weight_layers" not in doc:
        return 0
    value, layers = _int_field(doc, "weight_layers", origin), _int_field(doc, "layers", origin)
    if not 1 <= value <= layers:
        raise UsageError(f"{origin}: weight_layers must be between 1 and layers ({layers}), got {value}")
    return value


def workload_from_toml(path: Path | str, *, name: str | None = None) -> Workload:
    """Read a workload TOML file (see ``workloads/bert-base.toml`` for the format)."""
    origin = str(path)
    doc = load_toml(path)
    check_schema_version(doc, WORKLOAD_SCHEMA_VERSION, origin)
    known = {"schema_version", "name", "layers", "hidden", "heads", "ffn", "precision",
             "description", "source", "weight_layers"}
    unknown = set(doc) - known
    if unknown:
        raise UsageError(f"{origin}: unknown fields {sorted(unknown)}")
    hidden = _int_field(doc, "hidden", origin)
    ffn = _int_field(doc, "ffn", origin) if "ffn" in doc else 4 * hidden
    wname = doc.get("name", name or Path(path).stem)
    if not isinstance(wname, str) or not wname:
        raise UsageError(f"{origin}: field 'name' must be a non-empty string")
    for key in ("precision", "description", "source"):
        if key in doc and not isinstance(doc[key], str):
            raise UsageError(f"{origin}: field {key!r} must be a string, got {doc[key]!r}")
    try:
        return Workload(
            name=wname,
            layers=_int_field(doc, "layers", origin),
            hidden=hidden,
            heads=_int_field(doc, "heads", origin),
            ffn=ffn,
            precision=str(doc.get("precision", "int8")),
            description=str(doc.get("description", "")),
            source=str(doc.get("source", origin)),
            weight_layers=_weight_layers(doc, origin),
        )
    except UsageError as exc:
        raise UsageError(f"{origin}: {exc}") from None


# Field names per architecture family in Hugging Face config.json files.
_HF_FIELDS = {
    "distilbert": ("n_layers", "dim", "n_heads", "hidden_dim"),
    "default": ("num_hidden_layers", "hidden_size", "num_attention_heads", "intermediate_size"),
}
_HF_MODEL_TYPES = {"bert", "roberta", "xlm-roberta", "distilbert", "albert", "electra",
                   "camembert", "deberta", "deberta-v2", "mpnet"}


def workload_from_hf_config(path: Path | str, *, precision: str = "int8") -> Workload:
    """Read a Hugging Face ``config.json`` of a BERT-family encoder.

    Understands the field names of BERT, RoBERTa, ALBERT and ELECTRA
    (``num_hidden_layers``, ``hidden_size``, ``num_attention_heads``,
    ``intermediate_size``) and of DistilBERT (``n_layers``, ``dim``, ``n_heads``,
    ``hidden_dim``). The workload is modelled at ``precision`` (INT8 by default,
    as in the paper), whatever ``torch_dtype`` the checkpoint stores.
    """
    p = Path(path)
    origin = str(p)
    doc = load_json(p)
    if not isinstance(doc, dict):
        raise UsageError(f"{origin}: expected a JSON object")
    model_type = str(doc.get("model_type") or "").lower()
    _refuse_decoder(doc, model_type, origin)
    family = "distilbert" if model_type == "distilbert" or "n_layers" in doc else "default"
    if model_type and model_type not in _HF_MODEL_TYPES:
        raise UsageError(
            f"{origin}: model_type {model_type!r} is not a supported encoder "
            f"({', '.join(sorted(_HF_MODEL_TYPES))})"
        )
    layers_key, hidden_key, heads_key, ffn_key = _HF_FIELDS[family]
    hidden = _int_field(doc, hidden_key, origin)
    ffn = _int_field(doc, ffn_key, origin) if ffn_key in doc else 4 * hidden
    name = p.parent.name if p.name == "config.json" and p.parent.name else p.stem
    layers = _int_field(doc, layers_key, origin)
    weight_layers = 0
    if model_type == "albert":
        # ALBERT: num_hidden_layers passes, each through one of num_hidden_groups groups of
        # inner_group_num layers; weights are shared across the passes of a group.
        groups = _int_field(doc, "num_hidden_groups", origin) if "num_hidden_groups" in doc else 1
        inner = _int_field(doc, "inner_group_num", origin) if "inner_group_num" in doc else 1
        for key, v in (("num_hidden_groups", groups), ("inner_group_num", inner)):
            if v < 1:
                raise UsageError(f"{origin}: {key} must be >= 1, got {v}")
        if groups > layers:
            raise UsageError(f"{origin}: num_hidden_groups ({groups}) exceeds num_hidden_layers ({layers})")
        layers, weight_layers = layers * inner, groups * inner
    try:
        return Workload(
            name=name,
            weight_layers=weight_layers,
            layers=layers,
            hidden=hidden,
            heads=_int_field(doc, heads_key, origin),
            ffn=ffn,
            precision=precision,
            description=f"{model_type or 'encoder'} from Hugging Face config",
            source=origin,
        )
    except UsageError as exc:
        raise UsageError(f"{origin}: {exc}") from None


#: Hugging Face model types of decoder (causal or encoder-decoder) families: not encoders.
_HF_DECODER_TYPES = {"gpt2", "gpt_neo", "gpt_neox", "gptj", "llama", "mistral", "mixtral",
                     "qwen2", "qwen3", "gemma", "gemma2", "phi", "phi3", "falcon", "opt",
                     "bloom", "mpt", "t5", "bart", "mbart", "pegasus", "marian", "whisper",
                     "codegen", "starcoder2", "olmo", "stablelm", "persimmon", "xglm",
                     "transfo-xl", "ctrl", "openai-gpt", "biogpt", "bert-generation"}


def _refuse_decoder(doc: Mapping[str, Any], model_type: str, origin: str) -> None:
    """One line for a decoder's config: only encoders are modelled."""
    arch = doc.get("architectures")
    archs = [a for a in arch if isinstance(a, str)] if isinstance(arch, list) else []
    reason = ""
    if doc.get("is_decoder") is True:
        reason = "is_decoder is true"
    elif doc.get("is_encoder_decoder") is True:
        reason = "is_encoder_decoder is true"
    elif model_type in _HF_DECODER_TYPES:
        reason = f"model_type {model_type!r} is a decoder family"
    else:
        causal = [a for a in archs if a.endswith(("ForCausalLM", "LMHeadModel", "ForConditionalGeneration"))]
        if causal:
            reason = f"architectures lists {causal[0]!r}"
    if reason:
        raise UsageError(f"{origin}: a decoder model ({reason}); only encoder workloads "
                         "(BERT family) are supported")


def builtin_workload_files() -> list[Path]:
    """The TOML files shipped in :mod:`hastily_bench.workloads`."""
    root = resources.files("hastily_bench.workloads")
    return sorted(
        Path(str(entry)) for entry in root.iterdir() if entry.name.endswith(".toml")
    )


def load_workload_file(path: Path | str) -> Workload:
    """Load a workload from a ``.toml`` or Hugging Face ``.json`` file."""
    p = Path(path)
    if p.suffix.lower() == ".json":
        return workload_from_hf_config(p)
    if p.suffix.lower() == ".toml":
        return workload_from_toml(p)
    raise UsageError(f"{p}: workload files must end in .toml or .json")
