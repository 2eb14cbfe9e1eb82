"""Reproduce the paper: every published figure next to what the models compute.

Claims live in a data file (``hastily_bench/data/claims.toml``), not in code. Each
names the configuration that reproduces it; nothing is tuned per claim. Range
claims are evaluated over one sweep (the file's ``[sweep]``) shared by all.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

from .api import (
    RunRequest,
    build_graph,
    configured_accelerator,
    estimate_point,
    resolve_workload,
    run,
)
from .errors import UsageError
from .host import PluginHost
from .params import check_schema_version, load_toml
from .plots import FigureConfig
from .results import Result, RunDocument

CLAIMS_SCHEMA_VERSION = 1
KINDS = ("value", "ratio", "range", "exp_error")
#: Latency-like metrics: a ratio of them is reference / accelerator (a speedup).
LOWER_IS_BETTER = {"latency_s", "energy_j", "energy_per_inference_j", "memory_bytes"}
ABLATION_PREFIX = "ablation: "
DEFAULT_CLAIMS = "claims.toml"


@dataclass(frozen=True)
class Claim:
    id: str
    claim: str
    source: str
    kind: str
    unit: str = ""
    metric: str = ""
    accelerator: str = ""
    reference: str = ""
    workload: str = ""
    seq_len: int = 0
    batch: int = 1
    residual: str = ""
    published: float | None = None
    published_low: float | None = None
    published_high: float | None = None
    tolerance: float | str | None = None
    headline: bool = False
    note: str = ""

    def configuration(self, sweep: Mapping[str, Sequence[Any]]) -> str:
        if self.kind == "exp_error":
            return f"kernels.lut_exp(residual={self.residual!r}) vs numpy.exp over [-30, 0]"
        accs = self.accelerator + (f" / {self.reference}" if self.reference else "")
        if self.kind == "range":
            return (f"{accs}; {'+'.join(sweep['workloads'])}; l = {min(sweep['seq_lens'])}"
                    f"..{max(sweep['seq_lens'])}; batch {'/'.join(map(str, sweep['batches']))}")
        return f"{accs}; {self.workload}; l = {self.seq_len}; batch {self.batch}"

    def published_text(self) -> str:
        if self.kind == "range":
            if self.published_low is None:
                return "-"
            return f"{_num(self.published_low)}-{_num(self.published_high)} {self.unit}".strip()
        if self.published is None:
            return "-"
        text = f"{_num(self.published)} {self.unit}".strip()
        return f"<= {text} (derived bound)" if self.tolerance == "bound" else text


@dataclass(frozen=True)
class ClaimResult:
    claim: Claim
    configuration: str
    modelled: float | None = None
    modelled_low: float | None = None
    modelled_high: float | None = None
    rel_error: float | None = None
    verdict: str = ""  # "ok", "off", "overlaps", "disjoint", "info", "error"
    detail: str = ""

    @property
    def failed(self) -> bool:
        return self.claim.headline and self.verdict in ("off", "disjoint", "error")

    def modelled_text(self) -> str:
        u = self.claim.unit
        if self.modelled_low is not None:
            return f"{_num(self.modelled_low)}-{_num(self.modelled_high)} {u}".strip()
        return f"{_num(self.modelled)} {u}".strip() if self.modelled is not None else "-"

    def tolerance_text(self) -> str:
        c = self.claim
        if c.kind == "range" and c.published_low is not None:
            return "overlap"
        if c.tolerance is None:
            return "-"
        return "bound" if c.tolerance == "bound" else f"±{float(c.tolerance):.0%}"

    def error_text(self) -> str:
        return "-" if self.rel_error is None else f"{self.rel_error:+.1%}"

    def verdict_text(self) -> str:
        """The verdict, marked when the claim does not count for ``--check``."""
        headline = self.claim.headline or self.verdict == "info"
        return self.verdict + ("" if headline else " (not headline)")

    def to_dict(self) -> dict[str, Any]:
        c = self.claim
        return {
            "id": c.id, "claim": c.claim, "source": c.source, "kind": c.kind, "unit": c.unit,
            "published": c.published, "published_low": c.published_low,
            "published_high": c.published_high, "tolerance": c.tolerance, "headline": c.headline,
            "configuration": self.configuration, "modelled": self.modelled,
            "modelled_low": self.modelled_low, "modelled_high": self.modelled_high,
            "rel_error": self.rel_error, "verdict": self.verdict, "detail": self.detail,
            "note": c.note,
        }


@dataclass(frozen=True)
class ReproduceReport:
    results: tuple[ClaimResult, ...]
    sweep: Mapping[str, Sequence[Any]]
    document: RunDocument = field(repr=False)

    @property
    def failed(self) -> list[ClaimResult]:
        return [r for r in self.results if r.failed]

    def to_dict(self) -> dict[str, Any]:
        return {"schema_version": 1, "sweep": dict(self.sweep),
                "claims": [r.to_dict() for r in self.results],
                "failed": [r.claim.id for r in self.failed]}


def _num(v: float | None) -> str:
    if v is None or not math.isfinite(v):
        return "-"
    if v != 0 and (abs(v) < 1e-2 or abs(v) >= 1e5):
        return f"{v:.3g}"
    return f"{v:.3g}" if abs(v) < 100 else f"{v:.0f}"


def _claims_doc(path: Path | str | None) -> tuple[dict[str, Any], str]:
    if path is None:
        path = Path(str(resources.files("hastily_bench").joinpath(f"data/{DEFAULT_CLAIMS}")))
    doc = load_toml(path)
    check_schema_version(doc, CLAIMS_SCHEMA_VERSION, str(path))
    return doc, str(path)


def load_claims(path: Path | str | None = None) -> tuple[list[Claim], dict[str, list[Any]]]:
    """Parse a claims file (the built-in one when ``path`` is None)."""
    doc, path = _claims_doc(path)
    sweep = doc.get("sweep")
    if not isinstance(sweep, dict) or not all(k in sweep for k in ("workloads", "seq_lens", "batches")):
        raise UsageError(f"{path}: [sweep] needs workloads, seq_lens and batches")
    for key, kind in (("workloads", str), ("seq_lens", int), ("batches", int)):
        values = sweep[key]
        if (not isinstance(values, list) or not values
                or not all(isinstance(v, kind) and not isinstance(v, bool) for v in values)):
            raise UsageError(f"{path}: [sweep] {key} must be a non-empty list of {kind.__name__}")
    raw = doc.get("claims")
    if not isinstance(raw, list) or not raw:
        raise UsageError(f"{path}: no [[claims]]")
    claims, seen = [], set()
    fields = set(Claim.__dataclass_fields__)
    for i, c in enumerate(raw):
        where = f"{path}: claim {i + 1}"
        if not isinstance(c, dict):
            raise UsageError(f"{where}: a claim must be a table")
        unknown = set(c) - fields
        if unknown:
            raise UsageError(f"{where}: unknown keys {sorted(unknown)}")
        for key in ("id", "claim", "source", "kind"):
            if not isinstance(c.get(key), str) or not c[key]:
                raise UsageError(f"{where}: missing {key!r}")
        if c["kind"] not in KINDS:
            raise UsageError(f"{where} ({c['id']}): kind {c['kind']!r} is not one of {', '.join(KINDS)}")
        if c["id"] in seen:
            raise UsageError(f"{where}: duplicate id {c['id']!r}")
        seen.add(c["id"])
        need = {"value": ("metric", "accelerator", "workload", "seq_len", "published", "tolerance"),
                "ratio": ("metric", "accelerator", "reference", "workload", "seq_len", "published",
                          "tolerance"),
                "range": ("metric", "accelerator"),
                "exp_error": ("residual", "published", "tolerance")}[c["kind"]]
        for key in need:
            if key not in c:
                raise UsageError(f"{where} ({c['id']}): kind {c['kind']!r} needs {key!r}")
        cid = f"{where} ({c['id']})"
        tol = c.get("tolerance")
        if tol == "bound":
            if c["kind"] != "exp_error":
                raise UsageError(f"{cid}: tolerance \"bound\" is only for exp_error claims")
        elif tol is not None and not (_is_number(tol) and tol > 0):
            raise UsageError(f"{cid}: tolerance must be > 0 or \"bound\"")
        for key in ("published", "published_low", "published_high"):
            if key in c and not (_is_number(c[key]) and c[key] > 0):
                raise UsageError(f"{cid}: {key} must be a number > 0, got {c[key]!r}")
        if ("published_low" in c) != ("published_high" in c):
            raise UsageError(f"{cid}: give both published_low and published_high, or neither")
        if "published_low" in c and c["published_low"] > c["published_high"]:
            raise UsageError(f"{cid}: published_low is above published_high")
        if "metric" in c and c["metric"] not in METRICS:
            raise UsageError(f"{cid}: metric {c['metric']!r} is not one of {', '.join(METRICS)}")
        if c["kind"] == "exp_error" and c["residual"] not in ("none", "linear"):
            raise UsageError(f"{cid}: residual must be \"none\" or \"linear\"")
        for key in ("seq_len", "batch"):
            if key in c and (isinstance(c[key], bool) or not isinstance(c[key], int) or c[key] < 1):
                raise UsageError(f"{cid}: {key} must be an integer >= 1")
        if not isinstance(c.get("headline", False), bool):
            raise UsageError(f"{cid}: headline must be true or false")
        claims.append(Claim(**c))
    return claims, sweep


METRICS = ("latency_s", "tops", "inferences_per_s", "energy_j", "energy_per_inference_j",
           "tops_per_w", "memory_bytes", "attn_rel_error")


def _is_number(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _metric(r: Result, metric: str) -> float:
    value = getattr(r, metric, None)
    if value is None:
        raise UsageError(f"metric {metric!r} is not available for {r.accelerator}")
    return float(value)


def _ratio(a: Result, b: Result, metric: str) -> float:
    va, vb = _metric(a, metric), _metric(b, metric)
    return vb / va if metric in LOWER_IS_BETTER else va / vb


def max_exp_error(residual: str, *, lo: float = -30.0, n: int = 200_001) -> float:
    """Largest relative error of the kernels' table exponent against ``numpy.exp`` on [lo, 0]."""
    import numpy as np

    from . import kernels

    x = np.linspace(lo, 0.0, n)
    approx = kernels.lut_exp(x, residual=residual)  # type: ignore[arg-type]
    exact = np.exp(x)
    return float(np.max(np.abs(approx / exact - 1.0)))


def evaluate(claims: Sequence[Claim], sweep: Mapping[str, Sequence[Any]], *,
             host: PluginHost, figures: FigureConfig | None = None) -> ReproduceReport:
    """Run the sweep and every point claim, and judge each claim."""
    accs = sorted({c.accelerator for c in claims if c.accelerator}
                  | {c.reference for c in claims if c.reference})
    doc = run(RunRequest(workloads=list(sweep["workloads"]), accelerators=accs,
                         seq_lens=list(sweep["seq_lens"]), batches=list(sweep["batches"]),
                         numerics="off"), host=host)
    points: dict[tuple[str, str, int, int], Result] = {r.key(): r for r in doc.results}

    def point(acc: str, workload: str, seq: int, batch: int) -> Result:
        key = (workload, acc, seq, batch)
        if key not in points:
            reg, params = configured_accelerator(host, acc)
            points[key] = estimate_point(reg, params, build_graph(resolve_workload(host, workload), seq, batch))
        return points[key]

    out: list[ClaimResult] = []
    for c in claims:
        conf = c.configuration(sweep)
        try:
            out.append(_judge(c, conf, point, sweep))
        except UsageError as exc:
            out.append(ClaimResult(c, conf, verdict="error", detail=str(exc)))
    extra = _ablation_results(host, list(sweep["workloads"]), figures) if figures else ()
    full = RunDocument(results=tuple(points.values()) + extra, metadata=doc.metadata)
    return ReproduceReport(tuple(out), sweep, full)


def _judge(c: Claim, conf: str, point: Any, sweep: Mapping[str, Sequence[Any]]) -> ClaimResult:
    if c.kind == "exp_error":
        value = max_exp_error(c.residual)
        ok = value <= (c.published or 0.0) if c.tolerance == "bound" else math.isclose(
            value, c.published or 0.0, rel_tol=float(c.tolerance or 0))
        return ClaimResult(c, conf, modelled=value,
                           rel_error=None if c.tolerance == "bound" or not c.published
                           else value / c.published - 1,
                           verdict="ok" if ok else "off",
                           detail="within the bound" if ok else "exceeds the bound")
    if c.kind in ("value", "ratio"):
        a = point(c.accelerator, c.workload, c.seq_len, c.batch)
        if not a.ok:
            return ClaimResult(c, conf, verdict="error", detail=a.error or a.status)
        if c.kind == "value":
            value = _metric(a, c.metric)
        else:
            b = point(c.reference, c.workload, c.seq_len, c.batch)
            if not b.ok:
                return ClaimResult(c, conf, verdict="error", detail=b.error or b.status)
            value = _ratio(a, b, c.metric)
        assert c.published is not None
        err = value / c.published - 1.0
        tol = float(c.tolerance)  # type: ignore[arg-type]
        return ClaimResult(c, conf, modelled=value, rel_error=err,
                           verdict="ok" if abs(err) <= tol else "off")
    # range over the sweep
    values = []
    for w in sweep["workloads"]:
        for s in sweep["seq_lens"]:
            for b in sweep["batches"]:
                a = point(c.accelerator, w, s, b)
                if not a.ok:
                    continue
                if c.reference:
                    r = point(c.reference, w, s, b)
                    if not r.ok:
                        continue
                    values.append(_ratio(a, r, c.metric))
                else:
                    values.append(_metric(a, c.metric))
    if not values:
        return ClaimResult(c, conf, verdict="error", detail="no point of the sweep ran")
    lo, hi = min(values), max(values)
    if c.published_low is None or c.published_high is None:
        return ClaimResult(c, conf, modelled_low=lo, modelled_high=hi, verdict="info")
    overlap = lo <= c.published_high and hi >= c.published_low
    inside = sum(c.published_low <= v <= c.published_high for v in values)
    detail = f"{inside} of {len(values)} sweep points inside the published range"
    return ClaimResult(c, conf, modelled_low=lo, modelled_high=hi,
                       verdict="overlaps" if overlap else "disjoint", detail=detail)


def _ablation_results(host: PluginHost, workloads: Sequence[str],
                      cfg: FigureConfig) -> tuple[Result, ...]:
    """The declared ablation steps of the figures' ablation accelerator, labelled as
    accelerators (none when the claims name no ablation or the plugin declares no steps)."""
    if not cfg.ablation or cfg.ablation not in {a.name for a in host.accelerators()}:
        return ()
    steps = host.accelerator(cfg.ablation).spec.ablation
    out = []
    for w in workloads:
        graph = build_graph(resolve_workload(host, w), cfg.ablation_seq_len, 1)
        for label, overrides in steps:
            reg, params = configured_accelerator(host, cfg.ablation, {cfg.ablation: overrides})
            r = estimate_point(reg, params, graph)
            out.append(replace(r, accelerator=ABLATION_PREFIX + label))
    return tuple(out)


def load_figure_config(path: Path | str | None = None) -> FigureConfig:
    """The ``[figures]`` table of a claims file (the shipped one by default)."""
    doc, origin = _claims_doc(path)
    figures = doc.get("figures")
    if not isinstance(figures, Mapping):
        raise UsageError(f"{origin}: needs a [figures] table (subject, references, compare...)")
    return FigureConfig.from_mapping(figures, origin=origin)


def reproduce(*, host: PluginHost | None = None, claims_path: Path | str | None = None) -> ReproduceReport:
    """Evaluate every claim of the claims file."""
    claims, sweep = load_claims(claims_path)
    doc, origin = _claims_doc(claims_path)
    figures = (FigureConfig.from_mapping(doc["figures"], origin=origin)
               if isinstance(doc.get("figures"), Mapping) else None)
    return evaluate(claims, sweep, host=host or PluginHost(), figures=figures)


def render_markdown(report: ReproduceReport) -> str:
    head = "| claim | published | configuration | modelled | error | tolerance | verdict |"
    lines = [head, "|---|---:|---|---:|---:|---:|---|"]
    for r in report.results:
        c = r.claim
        note = f" ({c.note})" if c.note else ""
        lines.append(f"| {c.claim}{note} | {c.published_text()} | {r.configuration} | "
                     f"{r.modelled_text()} | {r.error_text()} | {r.tolerance_text()} | "
                     f"{r.verdict_text()} |")
    return "\n".join(lines) + "\n"
