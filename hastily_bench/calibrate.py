"""Calibration against measurements: error per row, and least-squares fits of parameters.

A measurement file is a CSV with columns ``accelerator, workload, seq_len, batch,
latency_ms`` (``#`` lines are comments). The built-in data set is NVIDIA's
published TensorRT INT8 BERT latencies on the A100 (40 rows), which the
``tensorrt`` GPU stack is fitted to.

Error measures
--------------
``rel_error = modelled / measured - 1`` per row. The summary figure is the
geometric-mean absolute error ``exp(mean |ln(modelled / measured)|) - 1``: it
treats a model 2x too slow and one 2x too fast alike and is not dominated by one
bad row; the worst row is reported in the same measure. The mean absolute
percentage error (``|modelled / measured - 1|``) is reported too.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from . import io as hio
from .api import check_overrides_used
from .errors import PluginError, UsageError
from .graph import build_graph
from .host import PluginHost
from .params import ParamSet
from .results import validate_estimate

BUILTIN_DATASET = "tensorrt_a100_bert_int8_latency.csv"
VALIDATION_DATASET = "tensorrt_bert_validation.csv"
COLUMNS = ("accelerator", "workload", "seq_len", "batch", "latency_ms")


@dataclass(frozen=True)
class Measurement:
    accelerator: str
    workload: str
    seq_len: int
    batch: int
    latency_s: float


@dataclass(frozen=True)
class CalibrationRow:
    measurement: Measurement
    modelled_s: float
    fitted: bool = False  # the model's parameters were fitted to this row

    @property
    def rel_error(self) -> float:
        return self.modelled_s / self.measurement.latency_s - 1.0

    @property
    def log_ratio(self) -> float:
        return math.log(self.modelled_s / self.measurement.latency_s)


@dataclass(frozen=True)
class DeviceSummary:
    """Errors of one accelerator's rows: geometric-mean absolute error, bias, worst row."""

    accelerator: str
    fitted: bool
    points: int
    geomean_abs_error: float  # exp(mean |ln(modelled / measured)|) - 1
    bias: float  # exp(mean ln(modelled / measured)) - 1: > 0 means the model is too slow
    worst: CalibrationRow

    def to_dict(self) -> dict[str, object]:
        m = self.worst.measurement
        return {"accelerator": self.accelerator, "fitted": self.fitted, "points": self.points,
                "geomean_abs_error": self.geomean_abs_error, "bias": self.bias,
                "worst": {"workload": m.workload, "seq_len": m.seq_len, "batch": m.batch,
                          "rel_error": self.worst.rel_error}}


def summarise(accelerator: str, rows: Sequence[CalibrationRow]) -> DeviceSummary:
    logs = [r.log_ratio for r in rows]
    return DeviceSummary(
        accelerator=accelerator,
        fitted=all(r.fitted for r in rows),
        points=len(rows),
        geomean_abs_error=math.exp(sum(abs(x) for x in logs) / len(logs)) - 1.0,
        bias=math.exp(sum(logs) / len(logs)) - 1.0,
        worst=max(rows, key=lambda r: abs(r.log_ratio)),
    )


@dataclass(frozen=True)
class CalibrationReport:
    dataset: str
    rows: tuple[CalibrationRow, ...]
    fitted: dict[str, float]

    @property
    def geomean_abs_error(self) -> float:
        logs = [abs(math.log(r.modelled_s / r.measurement.latency_s)) for r in self.rows]
        return math.exp(sum(logs) / len(logs)) - 1.0

    @property
    def mape(self) -> float:
        return sum(abs(r.rel_error) for r in self.rows) / len(self.rows)

    @property
    def max_abs_error(self) -> float:
        """Worst row, in the same measure as :attr:`geomean_abs_error` (``exp|ln r| - 1``)."""
        return max(math.exp(abs(math.log(r.modelled_s / r.measurement.latency_s))) - 1.0
                   for r in self.rows)

    def devices(self) -> list[DeviceSummary]:
        """One summary per accelerator, fitted ones first, in file order otherwise."""
        groups: dict[str, list[CalibrationRow]] = {}
        for r in self.rows:
            groups.setdefault(r.measurement.accelerator, []).append(r)
        out = [summarise(name, rows) for name, rows in groups.items()]
        return sorted(out, key=lambda d: not d.fitted)

    def to_dict(self) -> dict[str, object]:
        return {
            "schema_version": 1,
            "dataset": self.dataset,
            "geomean_abs_error": self.geomean_abs_error,
            "mape": self.mape,
            "max_abs_error": self.max_abs_error,
            "fitted": self.fitted,
            "devices": [d.to_dict() for d in self.devices()],
            "rows": [
                {"accelerator": r.measurement.accelerator, "workload": r.measurement.workload,
                 "seq_len": r.measurement.seq_len, "batch": r.measurement.batch,
                 "measured_s": r.measurement.latency_s, "modelled_s": r.modelled_s,
                 "rel_error": r.rel_error, "fitted": r.fitted}
                for r in self.rows
            ],
        }


def load_measurements(path: Path | str | None = None, *,
                      builtin: str = BUILTIN_DATASET) -> tuple[str, list[Measurement]]:
    """Read a measurement CSV (the packaged data set ``builtin`` when ``path`` is None)."""
    if path is None:
        text = resources.files("hastily_bench").joinpath(f"data/{builtin}").read_text()
        origin = builtin
    else:
        origin = str(path)
        text = hio.read_text(path, what="measurement CSV")
    header, records = hio.read_csv(None, text=text, origin=origin)
    missing = set(COLUMNS) - set(header)
    if missing:
        raise UsageError(f"{origin}: missing columns {sorted(missing)} (need {', '.join(COLUMNS)})")
    rows = []
    for line, rec in records:
        try:
            m = Measurement(rec["accelerator"].strip(), rec["workload"].strip(), int(rec["seq_len"]),
                            int(rec["batch"]), float(rec["latency_ms"]) / 1e3)
        except ValueError:
            raise UsageError(f"{origin}: line {line} is malformed: {rec}") from None
        if m.latency_s <= 0 or not math.isfinite(m.latency_s):
            raise UsageError(f"{origin}: line {line}: latency_ms must be a finite number > 0")
        if not (m.accelerator and m.workload) or m.seq_len < 1 or m.batch < 1:
            raise UsageError(f"{origin}: line {line}: needs an accelerator, a workload, "
                             "seq_len >= 1 and batch >= 1")
        rows.append(m)
    if not rows:
        raise UsageError(f"{origin}: no measurements")
    return origin, rows


def _model(host: PluginHost, rows: Sequence[Measurement],
           params_for: Callable[[str], ParamSet]) -> list[float]:
    out = []
    for m in rows:
        reg = host.accelerator(m.accelerator)
        graph = build_graph(host.workload(m.workload), m.seq_len, m.batch)
        try:
            est = validate_estimate(reg.spec.estimate(graph, params_for(m.accelerator)))
        except (UsageError, PluginError):
            raise
        except Exception as exc:  # a plugin's failure, named, never a traceback
            raise PluginError(f"{reg.plugin.label} raised {type(exc).__name__} on {m.workload} "
                              f"l={m.seq_len} b={m.batch}: {exc}") from None
        out.append(est.latency_s)
    return out


def nelder_mead(f: Callable[[np.ndarray], float], x0: np.ndarray, *, step: float = 0.3,
                iters: int = 400, tol: float = 1e-10) -> np.ndarray:
    """Minimise ``f`` from ``x0`` with the Nelder-Mead simplex (deterministic)."""
    n = len(x0)
    simplex = [x0.astype(float)]
    for i in range(n):
        x = x0.astype(float).copy()
        x[i] += step
        simplex.append(x)
    values = [f(x) for x in simplex]
    for _ in range(iters):
        order = np.argsort(values, kind="stable")
        simplex = [simplex[i] for i in order]
        values = [values[i] for i in order]
        if abs(values[-1] - values[0]) < tol:
            break
        centroid = np.mean(simplex[:-1], axis=0)
        xr = centroid + (centroid - simplex[-1])
        fr = f(xr)
        if fr < values[0]:
            xe = centroid + 2.0 * (centroid - simplex[-1])
            fe = f(xe)
            simplex[-1], values[-1] = (xe, fe) if fe < fr else (xr, fr)
        elif fr < values[-2]:
            simplex[-1], values[-1] = xr, fr
        else:
            xc = centroid + 0.5 * (simplex[-1] - centroid)
            fc = f(xc)
            if fc < values[-1]:
                simplex[-1], values[-1] = xc, fc
            else:
                for i in range(1, n + 1):
                    simplex[i] = simplex[0] + 0.5 * (simplex[i] - simplex[0])
                    values[i] = f(simplex[i])
    return simplex[int(np.argmin(values))]


def calibrate(
    host: PluginHost,
    path: Path | str | None = None,
    *,
    fit: Sequence[str] = (),
    overrides: dict[str, dict[str, str]] | None = None,
) -> CalibrationReport:
    """Model every row of a measurement file; optionally fit parameters first.

    ``fit`` names positive numeric parameters of the accelerators in the file.
    They are fitted jointly (one global value each, shared by every accelerator
    in the file) by minimising the mean squared log error. Without ``path``, the
    fit uses the A100 rows only and the validation rows are modelled with the
    result (never fitted); with ``path``, every row of the file is fitted.
    """
    origin, fit_rows = load_measurements(path)
    validation: list[Measurement] = []
    if path is None:
        vname, validation = load_measurements(builtin=VALIDATION_DATASET)
        origin = f"{origin} (fitted) + {vname} (unseen)"
    _, builtin_rows = load_measurements()
    stored_fit = set(builtin_rows)  # rows the packaged parameters were fitted to
    rows = fit_rows + validation
    check_overrides_used(overrides or {}, dict.fromkeys(m.accelerator for m in rows))
    base: dict[str, ParamSet] = {}
    for name in dict.fromkeys(m.accelerator for m in rows):
        params = host.accelerator(name).spec.params
        for k, v in (overrides or {}).get(name, {}).items():
            params = params.override(k, v)
        base[name] = params
    for w in dict.fromkeys(m.workload for m in rows):
        host.workload(w)
    fitted: dict[str, float] = {}
    if fit:
        for p in fit:
            for params in base.values():
                value = params[p].value  # raises UsageError with a suggestion
                if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                    raise UsageError(f"--fit {p}: only positive numeric parameters can be fitted "
                                     f"(it is {value!r})")
        x0 = np.log([next(iter(base.values())).f(p) or 1e-6 for p in fit])
        measured = np.log([m.latency_s for m in fit_rows])

        def with_values(x: np.ndarray) -> dict[str, ParamSet]:
            vals = {p: float(np.exp(v)) for p, v in zip(fit, x, strict=True)}
            out = {}
            for name, params in base.items():
                clipped = {}
                for p, v in vals.items():
                    hi = params[p].maximum
                    clipped[p] = min(v, hi) if hi is not None else v
                out[name] = params.with_values(clipped, source="fitted")
            return out

        def loss(x: np.ndarray) -> float:
            ps = with_values(x)
            model = np.log(_model(host, fit_rows, ps.__getitem__))
            return float(np.mean((model - measured) ** 2))

        best = nelder_mead(loss, x0)
        base = with_values(best)
        fitted = {p: next(iter(base.values())).f(p) for p in fit}
    modelled = _model(host, rows, base.__getitem__)
    fitted_now = set(fit_rows) if fit else set()
    return CalibrationReport(
        dataset=origin,
        rows=tuple(CalibrationRow(m, t, fitted=m in stored_fit or m in fitted_now)
                   for m, t in zip(rows, modelled, strict=True)),
        fitted=fitted,
    )
