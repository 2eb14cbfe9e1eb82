"""Compare two results documents: the regression gate of ``hastily-bench compare``.

Results are matched by :meth:`~hastily_bench.results.Result.key` (workload,
accelerator, seq_len, batch). For every matched pair each metric is classified
with a per-metric threshold *and direction*:

==========================  ==================  =================
metric                      better when         default threshold
==========================  ==================  =================
``latency_s``               lower               1 %
``tops``                    higher              1 %
``inferences_per_s``        higher              1 %
``energy_j``                lower               1 %
``energy_per_inference_j``  lower               1 %
``tops_per_w``              higher              1 %
``memory_bytes``            lower               1 %
``attn_rel_error``          lower               5 %
==========================  ==================  =================

A change of more than the threshold (in percent of the base value) in the bad
direction is a regression, in the good direction an improvement; anything within
it is unchanged. The models are deterministic, so 1 % is far above numerical
noise; ``attn_rel_error`` gets 5 % because it is measured on a sample of
attention rows and a change of the sampling is not a change of the arithmetic.

Rules that keep the gate honest:

* Two results whose ``params_hash`` differ were computed from different
  parameters (or plugin versions) and are flagged *not comparable*, never
  compared. So are two results that measured different work: another op count
  (``ops``), workload shape (``shape_hash``) or op graph (``ops_hash``) under
  the same workload name. If no common point is comparable at all the comparison itself is
  refused (:class:`~hastily_bench.errors.UsageError`): a gate that compared
  nothing must not pass.
* A status change counts: ``ok`` -> ``unsupported`` -> ``error`` is getting worse
  (a regression), the other way an improvement.
* Points found in one file only are listed as added or removed.
* No common point at all is a :class:`~hastily_bench.errors.UsageError` (exit 2).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .errors import UsageError, suggest
from .io import ascii_float
from .report import fmt_bytes, fmt_num, fmt_si
from .results import Result, RunDocument

COMPARE_SCHEMA_VERSION = 1

#: ``{metric: +1 if higher is better, -1 if lower is better}``, in display order.
METRIC_DIRECTIONS: dict[str, int] = {
    "latency_s": -1,
    "tops": +1,
    "inferences_per_s": +1,
    "energy_j": -1,
    "energy_per_inference_j": -1,
    "tops_per_w": +1,
    "memory_bytes": -1,
    "attn_rel_error": -1,
}

#: Default regression thresholds in percent (see the module docstring).
DEFAULT_THRESHOLDS: dict[str, float] = {
    "latency_s": 1.0,
    "tops": 1.0,
    "inferences_per_s": 1.0,
    "energy_j": 1.0,
    "energy_per_inference_j": 1.0,
    "tops_per_w": 1.0,
    "memory_bytes": 1.0,
    "attn_rel_error": 5.0,
}

#: ``--threshold all=PCT`` sets every metric at once (later items still override).
ALL_METRICS = "all"

#: Status ranks: lower is worse.
_STATUS_RANK = {"error": 0, "unsupported": 1, "ok": 2}

IMPROVED = "improved"
REGRESSED = "regressed"
UNCHANGED = "unchanged"
MISSING = "n/a"  # a metric present on one side only (e.g. numerics off in one run)
NOT_COMPARABLE = "not comparable"

Key = tuple[str, str, int, int]


def parse_thresholds(items: Sequence[str]) -> dict[str, float]:
    """Parse ``METRIC=PCT`` items into a complete ``{metric: percent}`` mapping.

    Parameters
    ----------
    items
        Strings like ``"tops=5"``, ``"latency_s=2.5%"`` or ``"all=2"``; later
        items override earlier ones. Metrics not named keep
        :data:`DEFAULT_THRESHOLDS`.

    Returns
    -------
    dict[str, float]
        A threshold in percent for every metric of :data:`METRIC_DIRECTIONS`.

    Raises
    ------
    UsageError
        An item without ``=``, an unknown metric (with a close-match suggestion),
        or a percentage that is not a finite number >= 0.
    """
    out = dict(DEFAULT_THRESHOLDS)
    for item in items:
        name, sep, text = item.partition("=")
        name = name.strip()
        if not sep or not name:
            raise UsageError(f"--threshold {item!r}: expected METRIC=PERCENT, e.g. tops=2")
        if name != ALL_METRICS and name not in METRIC_DIRECTIONS:
            raise UsageError(
                f"--threshold {item!r}: unknown metric {name!r}"
                f"{suggest(name, [*METRIC_DIRECTIONS, ALL_METRICS])}; "
                f"metrics: {', '.join(METRIC_DIRECTIONS)}"
            )
        pct = _parse_percent(item, text)
        if name == ALL_METRICS:
            out = dict.fromkeys(METRIC_DIRECTIONS, pct)
        else:
            out[name] = pct
    return out


def _parse_percent(item: str, text: str) -> float:
    raw = text.strip().removesuffix("%").strip()
    try:
        pct = ascii_float(raw)
    except ValueError:
        raise UsageError(f"--threshold {item!r}: {text!r} is not a number of percent") from None
    if not math.isfinite(pct) or pct < 0:
        raise UsageError(f"--threshold {item!r}: percent must be a finite number >= 0")
    return pct


def _complete_thresholds(thresholds: Mapping[str, float]) -> dict[str, float]:
    out = dict(DEFAULT_THRESHOLDS)
    for name, pct in thresholds.items():
        if name not in METRIC_DIRECTIONS:
            raise UsageError(f"unknown threshold metric {name!r}{suggest(name, METRIC_DIRECTIONS)}")
        if not math.isfinite(pct) or pct < 0:
            raise UsageError(f"threshold for {name!r} must be a finite number >= 0, got {pct!r}")
        out[name] = float(pct)
    return out


@dataclass(frozen=True)
class MetricChange:
    """One metric of one matched point.

    Attributes
    ----------
    metric
        Name from :data:`METRIC_DIRECTIONS`.
    base, head
        The two values (``None`` where a side has none).
    change_pct
        ``(head - base) / |base| x 100``; ``None`` when either value is missing
        or ``base`` is zero.
    threshold_pct
        The threshold applied.
    verdict
        ``improved``, ``regressed``, ``unchanged`` or ``n/a``.
    """

    metric: str
    base: float | None
    head: float | None
    change_pct: float | None
    threshold_pct: float
    verdict: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "base": self.base,
            "head": self.head,
            "change_pct": self.change_pct,
            "threshold_pct": self.threshold_pct,
            "higher_is_better": METRIC_DIRECTIONS[self.metric] > 0,
            "verdict": self.verdict,
        }


def classify(
    metric: str, base: float | None, head: float | None, threshold_pct: float
) -> MetricChange:
    """Classify one metric change with its direction and threshold."""
    direction = METRIC_DIRECTIONS[metric]
    if base is None or head is None:
        verdict = UNCHANGED if base is None and head is None else MISSING
        return MetricChange(metric, base, head, None, threshold_pct, verdict)
    if base == 0:
        # No relative change exists; any move away from zero is beyond every threshold.
        if head == base:
            verdict = UNCHANGED
        else:
            verdict = IMPROVED if (head - base) * direction > 0 else REGRESSED
        return MetricChange(metric, base, head, None, threshold_pct, verdict)
    change = (head - base) / abs(base) * 100.0
    signed = change * direction  # > 0 is better
    if signed < -threshold_pct:
        verdict = REGRESSED
    elif signed > threshold_pct:
        verdict = IMPROVED
    else:
        verdict = UNCHANGED
    return MetricChange(metric, base, head, change, threshold_pct, verdict)


@dataclass(frozen=True)
class PointComparison:
    """A point present in both documents.

    Attributes
    ----------
    key
        ``(workload, accelerator, seq_len, batch)``.
    base_status, head_status
        Result statuses on each side.
    metrics
        Per-metric changes (empty unless both sides are ``ok`` and comparable).
    comparable
        False when the two results were computed from different parameters.
    reason
        Why a point is not comparable, or what its status change was.
    head_error
        The head result's error message, if it has one.
    """

    key: Key
    base_status: str
    head_status: str
    metrics: tuple[MetricChange, ...] = ()
    comparable: bool = True
    reason: str = ""
    head_error: str = ""

    @property
    def status_verdict(self) -> str:
        """Verdict of the status change alone."""
        b, h = _STATUS_RANK.get(self.base_status, 0), _STATUS_RANK.get(self.head_status, 0)
        return REGRESSED if h < b else IMPROVED if h > b else UNCHANGED

    @property
    def verdict(self) -> str:
        """``regressed`` if anything got worse, else ``improved`` if anything got better,
        else ``unchanged``; ``not comparable`` when parameters differ."""
        if not self.comparable:
            return NOT_COMPARABLE
        verdicts = {self.status_verdict, *(m.verdict for m in self.metrics)}
        if REGRESSED in verdicts:
            return REGRESSED
        if IMPROVED in verdicts:
            return IMPROVED
        return UNCHANGED

    def to_dict(self) -> dict[str, Any]:
        workload, accelerator, seq_len, batch = self.key
        return {
            "workload": workload,
            "accelerator": accelerator,
            "seq_len": seq_len,
            "batch": batch,
            "base_status": self.base_status,
            "head_status": self.head_status,
            "comparable": self.comparable,
            "verdict": self.verdict,
            "reason": self.reason,
            "head_error": self.head_error,
            "metrics": [m.to_dict() for m in self.metrics],
        }


@dataclass(frozen=True)
class CompareReport:
    """Everything ``hastily-bench compare`` reports.

    Attributes
    ----------
    base_label, head_label
        How each document is named in the report (path, commit or date).
    thresholds
        Percent per metric, as applied.
    points
        Matched points, in the head document's order.
    added, removed
        Keys only in the head (added) or only in the base (removed) document.
    """

    base_label: str
    head_label: str
    thresholds: Mapping[str, float]
    points: tuple[PointComparison, ...]
    added: tuple[Key, ...] = ()
    removed: tuple[Key, ...] = ()
    _counts: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        counts = dict.fromkeys((REGRESSED, IMPROVED, UNCHANGED, NOT_COMPARABLE), 0)
        for p in self.points:
            counts[p.verdict] += 1
        object.__setattr__(self, "_counts", counts)

    @property
    def regressed(self) -> int:
        """Points with at least one regression."""
        return self._counts[REGRESSED]

    @property
    def improved(self) -> int:
        """Points with improvements and no regression."""
        return self._counts[IMPROVED]

    @property
    def unchanged(self) -> int:
        return self._counts[UNCHANGED]

    @property
    def not_comparable(self) -> int:
        return self._counts[NOT_COMPARABLE]

    @property
    def exit_code(self) -> int:
        """0 without regression, 1 with at least one."""
        return 1 if self.regressed else 0

    @property
    def verdict(self) -> str:
        """One emoji-free line: ``regression`` or ``no regression``."""
        return "regression" if self.regressed else "no regression"

    def summary(self) -> str:
        """``2 regressed, 1 improved, 5 unchanged, ...`` (counts of points)."""
        parts = [
            f"{self.regressed} regressed",
            f"{self.improved} improved",
            f"{self.unchanged} unchanged",
        ]
        if self.not_comparable:
            parts.append(f"{self.not_comparable} not comparable")
        parts += [f"{len(self.added)} added", f"{len(self.removed)} removed"]
        return ", ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        def key_dict(k: Key) -> dict[str, Any]:
            return {"workload": k[0], "accelerator": k[1], "seq_len": k[2], "batch": k[3]}

        return {
            "schema_version": COMPARE_SCHEMA_VERSION,
            "base": self.base_label,
            "head": self.head_label,
            "thresholds_pct": dict(self.thresholds),
            "summary": {
                "regressed": self.regressed,
                "improved": self.improved,
                "unchanged": self.unchanged,
                "not_comparable": self.not_comparable,
                "added": len(self.added),
                "removed": len(self.removed),
                "verdict": self.verdict,
                "exit_code": self.exit_code,
            },
            "points": [p.to_dict() for p in self.points],
            "added": [key_dict(k) for k in self.added],
            "removed": [key_dict(k) for k in self.removed],
        }


def _doc_label(doc: RunDocument, fallback: str) -> str:
    meta = doc.metadata
    commit, created = meta.get("git_commit"), meta.get("created_utc")
    parts = [str(x) for x in (commit, created) if x]
    return " ".join(parts) if parts else fallback


def _plugin_versions(doc: RunDocument) -> dict[str, str]:
    plugins = doc.metadata.get("plugins")
    out: dict[str, str] = {}
    if isinstance(plugins, list):
        for p in plugins:
            if isinstance(p, Mapping) and "name" in p:
                out[str(p["name"])] = f"{p.get('distribution', '?')} {p.get('version', '?')}"
    return out


def _params_reason(b: Result, h: Result, bdoc: RunDocument, hdoc: RunDocument) -> str:
    names = sorted(set(b.params) | set(h.params))
    diff = [n for n in names if b.params.get(n) != h.params.get(n)]
    if diff:
        shown = ", ".join(f"{n} {b.params.get(n)!r} -> {h.params.get(n)!r}" for n in diff[:3])
        more = f" and {len(diff) - 3} more" if len(diff) > 3 else ""
        return f"parameters differ: {shown}{more}"
    bv, hv = _plugin_versions(bdoc).get(b.plugin), _plugin_versions(hdoc).get(h.plugin)
    if bv != hv and bv and hv:
        return f"same parameters, different plugin version: {bv} -> {hv}"
    return f"params_hash differs ({b.params_hash} -> {h.params_hash})"


def _work_reason(b: Result, h: Result) -> str:
    """Why two results measured different work (same name, other shape or op counts), or ""."""
    if b.shape_hash and h.shape_hash and b.shape_hash != h.shape_hash:
        return (f"workload shape differs (shape_hash {b.shape_hash} -> {h.shape_hash}): "
                f"{b.workload!r} is not the same model in both files")
    if b.ops != h.ops:
        return f"op count differs ({b.ops} -> {h.ops}): the two files measured different work"
    if b.ops_hash and h.ops_hash and b.ops_hash != h.ops_hash:
        return f"op graph differs (ops_hash {b.ops_hash} -> {h.ops_hash})"
    return ""


def _compare_point(
    b: Result, h: Result, thresholds: Mapping[str, float], bdoc: RunDocument, hdoc: RunDocument
) -> PointComparison:
    if b.params_hash != h.params_hash:
        return PointComparison(
            b.key(), b.status, h.status, comparable=False, reason=_params_reason(b, h, bdoc, hdoc)
        )
    reason = _work_reason(b, h)
    if reason:
        return PointComparison(b.key(), b.status, h.status, comparable=False, reason=reason)
    if not (b.ok and h.ok):
        reason = "" if b.status == h.status else f"status {b.status} -> {h.status}"
        return PointComparison(
            b.key(), b.status, h.status, reason=reason, head_error="" if h.ok else h.error or ""
        )
    metrics = tuple(
        classify(m, _num(getattr(b, m)), _num(getattr(h, m)), thresholds[m])
        for m in METRIC_DIRECTIONS
    )
    # a metric absent on both sides says nothing; drop it
    metrics = tuple(m for m in metrics if not (m.base is None and m.head is None))
    return PointComparison(b.key(), b.status, h.status, metrics=metrics)


def _num(v: object) -> float | None:
    if v is None or isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    return float(v)


def compare_documents(
    base: RunDocument,
    head: RunDocument,
    thresholds: Mapping[str, float],
    *,
    base_label: str | None = None,
    head_label: str | None = None,
) -> CompareReport:
    """Compare ``head`` against ``base``.

    Parameters
    ----------
    base, head
        The reference run and the run under test.
    thresholds
        ``{metric: percent}``; metrics not given use :data:`DEFAULT_THRESHOLDS`
        (:func:`parse_thresholds` returns a complete mapping).
    base_label, head_label
        Names for the report (e.g. file paths); default: git commit and date
        from each document's metadata.

    Returns
    -------
    CompareReport
        Its ``exit_code`` is 1 when anything regressed.

    Raises
    ------
    UsageError
        No point is common to both documents, every common point was computed
        with different parameters, or a threshold is invalid.
    """
    th = _complete_thresholds(thresholds)
    base_index = {r.key(): r for r in base.results}
    head_index = {r.key(): r for r in head.results}
    common = [k for k in head_index if k in base_index]
    if not common:
        raise UsageError(
            f"nothing to compare: no (workload, accelerator, seq_len, batch) point is in both "
            f"files (base has {len(base_index)}, head has {len(head_index)})"
        )
    points = tuple(_compare_point(base_index[k], head_index[k], th, base, head) for k in common)
    if not any(p.comparable for p in points):
        raise UsageError(
            f"nothing to compare: all {len(points)} common points were computed with different "
            f"parameters or measured different work ({points[0].reason}); re-run the baseline "
            "with this version"
        )
    return CompareReport(
        base_label=base_label or _doc_label(base, "base"),
        head_label=head_label or _doc_label(head, "head"),
        thresholds=th,
        points=points,
        added=tuple(k for k in head_index if k not in base_index),
        removed=tuple(k for k in base_index if k not in head_index),
    )


# -- rendering -----------------------------------------------------------------------


def fmt_metric(metric: str, value: float | None) -> str:
    """A metric value in the units of the results table."""
    if value is None:
        return "-"
    if metric == "latency_s":
        return fmt_si(value, "s")
    if metric in ("energy_j", "energy_per_inference_j"):
        return fmt_si(value, "J")
    if metric == "memory_bytes":
        return fmt_bytes(int(value))
    if metric == "attn_rel_error":
        return f"{value:.3e}"
    return fmt_num(value, 4)


def fmt_change(change: MetricChange) -> str:
    """``+1.23%``; ``new`` / ``gone`` for a value on one side; ``from 0`` when base is zero."""
    if change.base is None:
        return "new"
    if change.head is None:
        return "gone"
    if change.change_pct is None:
        return "0%" if change.base == change.head else "from 0"
    return f"{change.change_pct:+.2f}%"


def _point_label(key: Key) -> tuple[str, str, str]:
    workload, accelerator, seq_len, batch = key
    return workload, accelerator, f"l={seq_len} b={batch}"


def _changed_rows(
    report: CompareReport, *, changed: bool
) -> list[tuple[PointComparison, str, str, str, str, str, str]]:
    """``(point, metric, base, head, change, threshold, verdict)`` rows.

    Status changes come first as a ``status`` row; ``changed`` selects rows whose
    verdict is improved/regressed (True) or the rest (False).
    """
    rows = []
    for p in report.points:
        if not p.comparable:
            continue
        if p.base_status != p.head_status or (not p.metrics and not changed):
            is_changed = p.status_verdict != UNCHANGED
            if is_changed == changed:
                rows.append(
                    (
                        p,
                        "status",
                        p.base_status,
                        p.head_status,
                        p.head_error or "-",
                        "-",
                        p.status_verdict,
                    )
                )
        for m in p.metrics:
            is_changed = m.verdict in (IMPROVED, REGRESSED)
            if is_changed == changed:
                rows.append(
                    (
                        p,
                        m.metric,
                        fmt_metric(m.metric, m.base),
                        fmt_metric(m.metric, m.head),
                        fmt_change(m),
                        f"{m.threshold_pct:g}%",
                        m.verdict,
                    )
                )
    return rows


def render_compare_table(
    report: CompareReport, console: Console, *, show_unchanged: bool = False
) -> None:
    """Print the comparison as rich tables: changed metrics, then what was not compared."""
    console.print(
        f"[bold]compare[/bold] base {escape(report.base_label)} -> head {escape(report.head_label)}",
        soft_wrap=True
    )
    rows = _changed_rows(report, changed=True)
    if show_unchanged:
        rows += _changed_rows(report, changed=False)
    if rows:
        table = Table(header_style="bold", box=box.SIMPLE_HEAD, pad_edge=False)
        for col in (
            "workload",
            "accelerator",
            "point",
            "metric",
            "base",
            "head",
            "change",
            "threshold",
            "verdict",
        ):
            right = col in ("base", "head", "change", "threshold")
            table.add_column(col, justify="right" if right else "left", no_wrap=col != "change")
        for p, metric, b, h, change, thr, verdict in rows:
            style = {REGRESSED: "red", IMPROVED: "green"}.get(verdict)
            shown = f"[{style}]{verdict}[/{style}]" if style else verdict
            # every cell is text (names and a plugin's error come from files), but the verdict
            table.add_row(*map(escape, (*_point_label(p.key), metric, b, h, change, thr)), shown)
        console.print(table)
    else:
        console.print("no metric changed beyond its threshold")
    for p in report.points:
        if not p.comparable:
            w, a, pt = map(escape, _point_label(p.key))
            console.print(f"not comparable: {w} {a} {pt}: {escape(p.reason)}", soft_wrap=True)
    for label, keys in (("added", report.added), ("removed", report.removed)):
        for k in keys:
            console.print(f"{label}: {escape(' '.join(_point_label(k)))}", soft_wrap=True)
    console.print(f"{report.summary()}; verdict: {report.verdict}", soft_wrap=True)


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _md_table(rows: list[tuple[PointComparison, str, str, str, str, str, str]]) -> list[str]:
    lines = [
        "| workload | accelerator | point | metric | base | head | change | threshold | verdict |",
        "|---|---|---|---|---:|---:|---:|---:|---|",
    ]
    for p, metric, b, h, change, thr, verdict in rows:
        w, a, pt = _point_label(p.key)
        cells = [
            f"`{w}`",
            f"`{a}`",
            pt,
            metric,
            b,
            h,
            change,
            thr,
            f"**{verdict}**" if verdict == REGRESSED else verdict,
        ]
        lines.append("| " + " | ".join(_md_cell(c) for c in cells) + " |")
    return lines


def render_compare_markdown(report: CompareReport) -> str:
    """Markdown for a pull-request comment or ``$GITHUB_STEP_SUMMARY``.

    A summary line with counts and the verdict, a table of changed metrics only,
    the points that could not be compared or exist on one side, then a collapsed
    ``<details>`` block with every unchanged metric.
    """
    lines = [
        f"**hastily-bench compare: {report.verdict}** ({report.summary()})",
        "",
        f"base `{_md_cell(report.base_label)}`, head `{_md_cell(report.head_label)}`; "
        "thresholds: " + ", ".join(f"{k} {v:g}%" for k, v in report.thresholds.items()),
        "",
    ]
    changed = _changed_rows(report, changed=True)
    if changed:
        lines += _md_table(changed)
    else:
        lines.append("No metric changed beyond its threshold.")
    lines.append("")
    extra: list[str] = []
    for p in report.points:
        if not p.comparable:
            w, a, pt = _point_label(p.key)
            extra.append(f"- not comparable: `{w}` `{a}` {pt}: {_md_cell(p.reason)}")
    for label, keys in (("added", report.added), ("removed", report.removed)):
        for k in keys:
            w, a, pt = _point_label(k)
            extra.append(f"- {label}: `{w}` `{a}` {pt}")
    if extra:
        lines += [*extra, ""]
    rest = _changed_rows(report, changed=False)
    if rest:
        lines += [
            "<details>",
            f"<summary>{len(rest)} unchanged metrics</summary>",
            "",
            *_md_table(rest),
            "",
            "</details>",
            "",
        ]
    return "\n".join(lines)
