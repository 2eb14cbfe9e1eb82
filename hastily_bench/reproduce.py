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
    OP_LEVEL_KINDS,
    RunRequest,
    build_graph,
    configured_accelerator,
    estimate_point,
    op_graph,
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
LOWER_IS_BETTER = {"latency_s", "latency_us", "energy_j", "energy_per_inference_j", "memory_bytes"}
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
    #: An operation-level claim: ``softmax``, ``attention`` or ``mvm`` (``hastily-bench op``).
    op: str = ""
    #: Rows of the op-level graph (``op softmax --rows``); 0 = the op's default.
    rows: int = 0
    #: Parameter values this claim's configuration sets on its accelerator(s), as ``--set``.
    overrides: Mapping[str, str] = field(default_factory=dict)

    def configuration(self, sweep: Mapping[str, Sequence[Any]]) -> str:
        if self.kind == "exp_error":
            return f"kernels.lut_exp(residual={self.residual!r}) vs numpy.exp over [-30, 0]"
        accs = self.accelerator + (f" / {self.reference}" if self.reference else "")
        if self.overrides:
            accs += " (" + ", ".join(f"{k}={str(v).lower() if isinstance(v, bool) else v}"
                                     for k, v in self.overrides.items()) + ")"
        if self.op:
            rows = f" --rows {self.rows}" if self.rows else ""
            return f"{accs}; op {self.op} -l {self.seq_len}{rows}; {self.workload} shape"
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
    #: Area of the chip (or die) the claim's accelerator ran on, and whether it differs from
    #: the reference area (the claims file's ``reference_area_mm2``) by more than 5%.
    area_mm2: float | None = None
    area_differs: bool = False

    def area_text(self) -> str:
        if self.area_mm2 is None:
            return "-"
        return f"{self.area_mm2:.0f} mm2" + (" (differs)" if self.area_differs else "")

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
            "note": c.note, "area_mm2": self.area_mm2, "area_differs": self.area_differs,
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
        for key in ("claim", "source", "unit", "metric", "accelerator", "reference", "workload",
                    "residual", "note"):
            if key in c and not isinstance(c[key], str):
                raise UsageError(f"{where} ({c['id']}): {key} must be a string, got {c[key]!r}")
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
        if c["kind"] == "range" and c.get("headline") and "published_low" not in c:
            raise UsageError(f"{cid}: a headline range claim needs published_low and published_high")
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
        if "op" in c and c["op"] not in OP_LEVEL_KINDS:
            raise UsageError(f"{cid}: op must be one of {', '.join(OP_LEVEL_KINDS)}, got {c['op']!r}")
        if "rows" in c and (isinstance(c["rows"], bool) or not isinstance(c["rows"], int)
                            or c["rows"] < 0):
            raise UsageError(f"{cid}: rows must be an integer >= 0")
        ov = c.get("overrides", {})
        if not isinstance(ov, dict) or not all(
                isinstance(k, str) and isinstance(v, (str, int, float, bool)) for k, v in ov.items()):
            raise UsageError(f"{cid}: overrides must be a table of parameter = value")
        for key in ("accelerator", "reference", "workload", "residual", "unit", "note"):
            if key in c and not isinstance(c[key], str):
                raise UsageError(f"{cid}: {key} must be a string, got {c[key]!r}")
        claims.append(Claim(**c))
    return claims, sweep


METRICS = ("latency_s", "latency_us", "tops", "inferences_per_s", "energy_j",
           "energy_per_inference_j", "tops_per_w", "tops_per_w_dynamic", "memory_bytes",
           "attn_rel_error")


def _is_number(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _metric(r: Result, metric: str) -> float:
    if metric == "latency_us":
        return _metric(r, "latency_s") * 1e6
    if metric == "tops_per_w_dynamic":
        # the paper's convention: GPU energy is board power minus idle power, CIM energy the
        # (ADC-dominated) dynamic energy; static (leakage) energy is left out of both
        dynamic = _metric(r, "energy_j") - (r.static_energy_j or 0.0)
        if dynamic <= 0:
            raise UsageError(f"{r.accelerator}: no dynamic energy")
        return r.ops / dynamic / 1e12
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


Overrides = Mapping[str, Mapping[str, str]]


def evaluate(claims: Sequence[Claim], sweep: Mapping[str, Sequence[Any]], *,
             host: PluginHost, figures: FigureConfig | None = None,
             overrides: Overrides | None = None, sweep_ranges: bool = True,
             reference_area_mm2: float | None = None,
             reference_area_family: str | None = None) -> ReproduceReport:
    """Run the sweep and every point claim, and judge each claim.

    ``overrides`` (``{accelerator: {param: value text}}``) apply to every point, as
    ``--set`` would (the calibration varies them); a claim's own ``overrides`` apply
    on top, to its points only. ``sweep_ranges=False`` skips the range claims (and the
    sweep they need).
    """
    base = {a: dict(v) for a, v in (overrides or {}).items()}
    accs = sorted({c.accelerator for c in claims if c.accelerator}
                  | {c.reference for c in claims if c.reference})
    points: dict[tuple[Any, ...], Result] = {}
    metadata: Mapping[str, Any] = {}
    if sweep_ranges:
        sets = [f"{a}.{k}={v}" for a, kv in base.items() if a in accs for k, v in kv.items()]
        doc = run(RunRequest(workloads=list(sweep["workloads"]), accelerators=accs,
                             seq_lens=list(sweep["seq_lens"]), batches=list(sweep["batches"]),
                             overrides=sets, numerics="off"), host=host)
        points = {(*r.key(), "", 0, ()): r for r in doc.results}
        metadata = doc.metadata

    def point(acc: str, workload: str, seq: int, batch: int, c: Claim | None = None) -> Result:
        op, rows = (c.op, c.rows) if c is not None else ("", 0)
        extra = tuple(sorted((c.overrides if c is not None else {}).items()))
        key = (workload, acc, seq, batch, op, rows, extra)
        if key not in points:
            sets = {**base.get(acc, {}), **{k: str(v).lower() if isinstance(v, bool) else str(v)
                                            for k, v in extra}}
            reg, params = configured_accelerator(host, acc, {acc: sets})
            w = resolve_workload(host, workload)
            graph = (op_graph(op, w, seq_len=seq, batch=batch, rows=rows or None) if op
                     else build_graph(w, seq, batch))
            points[key] = estimate_point(reg, params, graph)
        return points[key]

    out: list[ClaimResult] = []
    for c in claims:
        if c.kind == "range" and not sweep_ranges:
            continue
        conf = c.configuration(sweep)
        try:
            r = _judge(c, conf, point, sweep)
        except UsageError as exc:
            r = ClaimResult(c, conf, verdict="error", detail=str(exc))
        if c.accelerator and c.kind in ("value", "ratio", "range"):
            # the chip of the claim's accelerator (for a range: the largest over the sweep)
            pts = ([point(c.accelerator, c.workload, c.seq_len, c.batch, c)] if c.kind != "range"
                   else [point(c.accelerator, w, s, b) for w in sweep["workloads"]
                         for s in sweep["seq_lens"] for b in sweep["batches"]])
            areas = [x.area_mm2 for x in pts if x.area_mm2 is not None]
            if areas:
                area = max(areas)
                family = host.accelerator(c.accelerator).spec.family
                differs = (reference_area_mm2 is not None
                           and (reference_area_family is None or family == reference_area_family)
                           and abs(area / reference_area_mm2 - 1.0) > AREA_TOLERANCE)
                r = replace(r, area_mm2=area, area_differs=differs)
        out.append(r)
    extra = _ablation_results(host, list(sweep["workloads"]), figures) if figures else ()
    claim_points = tuple(v for k, v in points.items() if not k[4] and not k[6])
    full = RunDocument(results=claim_points + extra, metadata=metadata)
    return ReproduceReport(tuple(out), sweep, full)


#: A chip whose area is within 5% of the reference area is "the paper's chip".
AREA_TOLERANCE = 0.05


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
        a = point(c.accelerator, c.workload, c.seq_len, c.batch, c)
        if not a.ok:
            return ClaimResult(c, conf, verdict="error", detail=a.error or a.status)
        if c.kind == "value":
            value = _metric(a, c.metric)
        else:
            b = point(c.reference, c.workload, c.seq_len, c.batch, c)
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
    family = doc.get("reference_area_family")
    if family is not None and not isinstance(family, str):
        raise UsageError(f"{origin}: reference_area_family must be a string, got {family!r}")
    return evaluate(claims, sweep, host=host or PluginHost(), figures=figures,
                    reference_area_mm2=_reference_area(doc, origin), reference_area_family=family)


def _reference_area(doc: Mapping[str, Any], origin: str) -> float | None:
    ref = doc.get("reference_area_mm2")
    if ref is None:
        return None
    if not _is_number(ref) or ref <= 0:
        raise UsageError(f"{origin}: reference_area_mm2 must be a number > 0, got {ref!r}")
    return float(ref)


def render_markdown(report: ReproduceReport) -> str:
    head = "| claim | published | configuration | modelled | error | tolerance | chip area | verdict |"
    lines = [head, "|---|---:|---|---:|---:|---:|---:|---|"]
    for r in report.results:
        c = r.claim
        note = f" ({c.note})" if c.note else ""
        lines.append(f"| {c.claim}{note} | {c.published_text()} | {r.configuration} | "
                     f"{r.modelled_text()} | {r.error_text()} | {r.tolerance_text()} | "
                     f"{r.area_text()} | {r.verdict_text()} |")
    return "\n".join(lines) + "\n"


# --- global calibration -------------------------------------------------------------------------

@dataclass(frozen=True)
class FitParam:
    """One fitted parameter, varied together on every accelerator listed (the same chip)."""

    param: str
    accelerators: tuple[str, ...]
    low: float
    high: float


@dataclass(frozen=True)
class Calibration:
    """The outcome of :func:`calibrate`: fitted values and every target before and after."""

    values: Mapping[str, float | int]
    before: tuple[ClaimResult, ...]
    after: tuple[ClaimResult, ...]
    fit: tuple[FitParam, ...]
    objective_before: float
    objective_after: float

    def to_dict(self) -> dict[str, Any]:
        return {"values": dict(self.values),
                "objective_before": self.objective_before, "objective_after": self.objective_after,
                "targets": [{**a.to_dict(), "rel_error_before": b.rel_error}
                            for b, a in zip(self.before, self.after, strict=True)]}


def load_calibration(path: Path | str | None = None) -> tuple[list[str], list[FitParam]]:
    """The ``[calibration]`` table of a claims file: target claim ids and fitted parameters."""
    doc, origin = _claims_doc(path)
    cal = doc.get("calibration")
    if not isinstance(cal, Mapping):
        raise UsageError(f"{origin}: no [calibration] table (targets and [[calibration.fit]])")
    targets = cal.get("targets")
    if not isinstance(targets, list) or not targets or not all(isinstance(t, str) for t in targets):
        raise UsageError(f"{origin}: [calibration] targets must be a non-empty list of claim ids")
    fits = []
    for i, f in enumerate(cal.get("fit", [])):
        where = f"{origin}: [[calibration.fit]] {i + 1}"
        if not isinstance(f, Mapping) or not isinstance(f.get("param"), str):
            raise UsageError(f"{where}: needs param")
        accs = f.get("accelerators")
        if not isinstance(accs, list) or not accs or not all(isinstance(a, str) for a in accs):
            raise UsageError(f"{where}: accelerators must be a non-empty list of names")
        lo, hi = f.get("low"), f.get("high")
        if not (isinstance(lo, (int, float)) and isinstance(hi, (int, float))
                and _is_number(lo) and _is_number(hi) and 0 < lo < hi):
            raise UsageError(f"{where}: needs 0 < low < high")
        fits.append(FitParam(f["param"], tuple(accs), float(lo), float(hi)))
    if not fits:
        raise UsageError(f"{origin}: [calibration] fits no parameter")
    return list(targets), fits


def calibrate(*, host: PluginHost | None = None, claims_path: Path | str | None = None,
              rounds: int = 3, progress: Any = None) -> Calibration:
    """Fit the ``[calibration]`` parameters jointly to all target claims.

    Coordinate descent on the sum of squared log errors: integer parameters are scanned
    over their range, real ones by golden-section search in log space, ``rounds`` times.
    """
    host = host or PluginHost()
    claims, sweep = load_claims(claims_path)
    doc, origin = _claims_doc(claims_path)
    ref_area = _reference_area(doc, origin)
    target_ids, fits = load_calibration(claims_path)
    by_id = {c.id: c for c in claims}
    missing = [t for t in target_ids if t not in by_id]
    if missing:
        raise UsageError(f"{origin}: calibration targets {missing} are not claims")
    targets = [by_id[t] for t in target_ids]
    bad = [t.id for t in targets if t.kind not in ("value", "ratio")]
    if bad:
        raise UsageError(f"{origin}: calibration targets must be value or ratio claims: {bad}")
    for f in fits:
        for a in f.accelerators:
            host.accelerator(a).spec.params[f.param]  # unknown names: one line with a suggestion
    integer = {f.param: isinstance(host.accelerator(f.accelerators[0]).spec.params[f.param].value, int)
               for f in fits}
    values: dict[str, float | int] = {
        f.param: host.accelerator(f.accelerators[0]).spec.params[f.param].value  # type: ignore[misc]
        for f in fits}

    def overrides(vals: Mapping[str, float | int]) -> dict[str, dict[str, str]]:
        out: dict[str, dict[str, str]] = {}
        for f in fits:
            v = vals[f.param]
            text = str(int(v)) if integer[f.param] else repr(float(v))
            for a in f.accelerators:
                out.setdefault(a, {})[f.param] = text
        return out

    def judge(vals: Mapping[str, float | int]) -> tuple[float, tuple[ClaimResult, ...]]:
        rep = evaluate(targets, sweep, host=host, overrides=overrides(vals), sweep_ranges=False,
                       reference_area_mm2=ref_area)
        total = 0.0
        for r in rep.results:
            if r.modelled is None or r.claim.published is None or r.modelled <= 0:
                total += 100.0
            else:
                total += math.log(r.modelled / r.claim.published) ** 2
        return total, rep.results

    obj0, before = judge(values)
    best = obj0
    for _ in range(rounds):
        for f in fits:
            if integer[f.param]:
                for v in range(int(f.low), int(f.high) + 1):
                    trial = {**values, f.param: v}
                    o, _r = judge(trial)
                    if o < best - 1e-12:
                        best, values = o, trial
            else:
                lo, hi = math.log(f.low), math.log(f.high)
                g = (math.sqrt(5) - 1) / 2
                xa, xb = hi - g * (hi - lo), lo + g * (hi - lo)
                fa = judge({**values, f.param: math.exp(xa)})[0]
                fb = judge({**values, f.param: math.exp(xb)})[0]
                for _i in range(40):
                    if fa < fb:
                        hi, xb, fb = xb, xa, fa
                        xa = hi - g * (hi - lo)
                        fa = judge({**values, f.param: math.exp(xa)})[0]
                    else:
                        lo, xa, fa = xa, xb, fb
                        xb = lo + g * (hi - lo)
                        fb = judge({**values, f.param: math.exp(xb)})[0]
                x = float(f"{math.exp((lo + hi) / 2):.4g}")
                o = judge({**values, f.param: x})[0]
                if o < best:
                    best, values = o, {**values, f.param: x}
            if progress is not None:
                progress(f.param, values[f.param], best)
        real = [f for f in fits if not integer[f.param]]
        if len(real) > 1:  # correlated real parameters: a joint simplex search in log space
            best, values = _nelder_mead(real, values, best, lambda v: judge(v)[0])
            if progress is not None:
                progress("(joint)", ", ".join(f"{f.param}={values[f.param]:.4g}" for f in real), best)
    obj1, after = judge(values)
    return Calibration(values, before, after, tuple(fits), obj0, obj1)


def _nelder_mead(fits: Sequence[FitParam], values: dict[str, float | int], best: float,
                 objective: Any, iterations: int = 120) -> tuple[float, dict[str, float | int]]:
    """Minimise ``objective`` over ``fits`` (log space, clamped to their bounds)."""
    lo = [math.log(f.low) for f in fits]
    hi = [math.log(f.high) for f in fits]

    def point(x: Sequence[float]) -> dict[str, float | int]:
        out = dict(values)
        for f, v, a, b in zip(fits, x, lo, hi, strict=True):
            out[f.param] = float(f"{math.exp(min(b, max(a, v))):.4g}")
        return out

    x0 = [math.log(float(values[f.param])) for f in fits]
    simplex = [x0] + [[v + (0.1 if i == j else 0.0) for j, v in enumerate(x0)]
                      for i in range(len(fits))]
    scores = [objective(point(x)) for x in simplex]
    for _ in range(iterations):
        order = sorted(range(len(simplex)), key=lambda i: scores[i])
        simplex = [simplex[i] for i in order]
        scores = [scores[i] for i in order]
        n = len(fits)
        centre = [sum(x[j] for x in simplex[:-1]) / n for j in range(n)]
        worst = simplex[-1]
        refl = [c + (c - w) for c, w in zip(centre, worst, strict=True)]
        fr = objective(point(refl))
        if fr < scores[0]:
            exp_ = [c + 2 * (c - w) for c, w in zip(centre, worst, strict=True)]
            fe = objective(point(exp_))
            simplex[-1], scores[-1] = (exp_, fe) if fe < fr else (refl, fr)
        elif fr < scores[-2]:
            simplex[-1], scores[-1] = refl, fr
        else:
            contr = [c + 0.5 * (w - c) for c, w in zip(centre, worst, strict=True)]
            fc = objective(point(contr))
            if fc < scores[-1]:
                simplex[-1], scores[-1] = contr, fc
            else:  # shrink towards the best
                simplex = [simplex[0]] + [[b + 0.5 * (x - b) for b, x in zip(simplex[0], xs, strict=True)]
                                          for xs in simplex[1:]]
                scores = [scores[0]] + [objective(point(x)) for x in simplex[1:]]
        if max(scores) - min(scores) < 1e-10:
            break
    i = min(range(len(simplex)), key=lambda k: scores[k])
    if scores[i] < best:
        return scores[i], point(simplex[i])
    return best, values
