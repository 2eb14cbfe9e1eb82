"""Sweeps: grids, sweep files, constraints, objectives, Pareto fronts, rows equal to `run` rows."""

from __future__ import annotations

import json
import math
from pathlib import Path

import jsonschema
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hastily_bench import api
from hastily_bench.accelerator import OpCost
from hastily_bench.errors import UsageError
from hastily_bench.results import Result, failed_result, results_schema
from hastily_bench.sweep import (
    FrontAccumulator,
    FrontPoint,
    dominates,
    expand_values,
    front_indices,
    front_mask,
    load_sweep_file,
    parse_constraint,
    parse_objective,
    prepare,
    read_rows,
    run_sweep,
    small_front_indices,
)
from hastily_bench.sweep.grid import is_sweep_file

_encode = json.JSONEncoder(separators=(",", ":")).encode  # what a row is


def _swept_names() -> tuple[str, str, str]:
    """The VFU width, clock and ADC resolution parameters of the built-in CIM model, looked up
    (the model's parameter names change between model versions)."""
    from hastily_bench.host import PluginHost

    params = PluginHost(autoload=False).accelerator("hastily").spec.params

    def pick(*names: str) -> str:
        return next(n for n in names if n in params)

    return pick("vfu_lanes"), pick("clock_hz", "chip_clock_hz"), pick("adc_bits")


LANES, CLOCK, ADC = _swept_names()


def _int_float_params(host) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    """An integer and a float parameter of the hastily model (the VFU width and the clock)."""
    params = host.accelerator("hastily").spec.params
    assert type(params[LANES].value) is int and type(params[CLOCK].value) is float
    return LANES, CLOCK


# -- grids ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("spec", "values"), [
    ("4,6,8", ["4", "6", "8"]),
    ("8:64:x2", ["8", "16", "32", "64"]),
    ("8:100:x2", ["8", "16", "32", "64"]),
    ("0.5e9:2e9:5", ["500000000", "875000000", "1250000000", "1625000000", "2000000000"]),
    ("0.1:0.3:3", ["0.1", "0.2", "0.3"]),
    ("1:10:+3", ["1", "4", "7", "10"]),
    ("3:3:1", ["3"]),
    ("true,false", ["true", "false"]),
])
def test_axis_values(spec: str, values: list[str]) -> None:
    assert expand_values(spec, "test") == values


@pytest.mark.parametrize("spec", ["", "1,,2", "1:2", "1:2:3:4", "8:64:x1", "0:64:x2", "64:8:x2",
                                  "1:10:+0", "1:2:0", "1:2:abc", "a:2:3", "2:1:+1", "1:2:1",
                                  "1:1e9:+1e-3", "\uff14:\uff18:+\uff11", "4:8:\uff13",  # fullwidth digits
                                  "1:1e308:+1e-308", "-1e308:1e308:+1",  # spans that overflow
                                  ",".join(str(i) for i in range(100_001))])
def test_bad_axis_values_are_usage_errors(spec: str) -> None:
    with pytest.raises(UsageError):
        expand_values(spec, "test")


def test_points_are_numbered_workload_length_batch_accelerator_then_axes(host) -> None:  # type: ignore[no-untyped-def]
    ip, fp = _int_float_params(host)
    spec, _ = prepare(host, workloads=["bert-tiny", "bert-mini"], accelerators=["hastily", "a40-tensorrt"],
                      seq_lens=[128, 256], batches=[1, 2],
                      grid=[f"hastily.{ip}=1,2,3", f"hastily.{fp}=1e9:2e9:2"])
    assert spec.group_size == 6 + 1 and spec.total == 2 * 2 * 2 * 7
    decoded = [spec.decode(i) for i in range(spec.total)]
    assert decoded == list(spec.iter_range(0, spec.total))
    assert list(spec.iter_range(5, 23)) == decoded[5:23]
    assert decoded[0] == (0, 0, 0, 0, (0, 0)) and decoded[1] == (0, 0, 0, 0, (0, 1))
    assert decoded[2] == (0, 0, 0, 0, (1, 0)) and decoded[6] == (0, 0, 0, 1, ())
    assert decoded[7] == (0, 0, 1, 0, (0, 0)) and decoded[-1] == (1, 1, 1, 1, ())


def test_grid_values_are_checked_by_the_parameter(host) -> None:  # type: ignore[no-untyped-def]
    ip, _ = _int_float_params(host)
    with pytest.raises(UsageError, match="integer"):
        prepare(host, workloads=["bert-tiny"], accelerators=["hastily"], grid=[f"hastily.{ip}=0.5:2:4"])
    with pytest.raises(UsageError, match="did you mean"):
        prepare(host, workloads=["bert-tiny"], accelerators=["hastily"], grid=[f"hastily.{ip}x=1,2"])
    with pytest.raises(UsageError, match="not part of this sweep"):
        prepare(host, workloads=["bert-tiny"], accelerators=["hastily"], grid=[f"baseline-cim.{ip}=1,2"])
    with pytest.raises(UsageError, match="both set"):
        prepare(host, workloads=["bert-tiny"], accelerators=["hastily"], sets=[f"hastily.{ip}=2"],
                grid=[f"hastily.{ip}=1,2"])
    with pytest.raises(UsageError, match="twice"):
        prepare(host, workloads=["bert-tiny"], accelerators=["hastily"], grid=[f"hastily.{ip}=1,1"])
    with pytest.raises(UsageError, match="not reported"):
        prepare(host, workloads=["bert-tiny"], accelerators=["hastily"], objectives=["max:nonsense"])


def test_sweep_file(tmp_path: Path, host) -> None:  # type: ignore[no-untyped-def]
    ip, fp = _int_float_params(host)
    f = tmp_path / "space.toml"
    f.write_text(f"""schema_version = 1
workloads = ["bert-tiny"]
accelerators = ["hastily"]
seq_lens = [128, 256]
constraints = ["area_mm2 <= 1e9"]
objectives = ["max:tops", "min:area_mm2"]
[grid]
"hastily.{ip}" = [1, 2]
[grid.hastily]
{fp} = "0.5e9:2e9:x2"
""")
    sf = load_sweep_file(f)
    assert sf.grid == [f"hastily.{ip}=1,2", f"hastily.{fp}=0.5e9:2e9:x2"]
    spec, _ = prepare(host, workloads=sf.workloads, accelerators=sf.accelerators, seq_lens=sf.seq_lens,
                      grid=sf.grid, constraints=sf.constraints, objectives=sf.objectives)
    assert spec.total == 2 * 2 * 3
    f.write_text("schema_version = 1\nworkloads = 3\n[grid]\n")
    with pytest.raises(UsageError, match="list of strings"):
        load_sweep_file(f)
    f.write_text("schema_version = 1\nbogus = 1\n[grid]\n")
    with pytest.raises(UsageError, match="unknown keys"):
        load_sweep_file(f)
    # a version that only compares equal to 1 (true, 1.0) is not version 1
    for version in ("true", "1.0"):
        f.write_text(f"schema_version = {version}\n[grid]\n")
        with pytest.raises(UsageError, match="schema_version .* is not supported"):
            load_sweep_file(f)
    # a list holds one value per element: a string with a comma once became two values
    f.write_text('schema_version = 1\n[grid]\n"hastily.capacity" = ["scale,stream"]\n')
    with pytest.raises(UsageError, match="holds a comma"):
        load_sweep_file(f)
    # a [grid] that is not a table is the sweep file's own error (it was read as a workload)
    f.write_text("schema_version = 1\ngrid = [1]\n")
    assert is_sweep_file(str(f))
    with pytest.raises(UsageError, match=r"\[grid\] must be a table"):
        load_sweep_file(f)


# -- constraints, objectives, fronts --------------------------------------------------------------

def test_constraints_and_objectives_parse() -> None:
    c = parse_constraint("area_mm2<=400")
    assert (c.metric, c.op, c.bound) == ("area_mm2", "<=", 400.0) and c.holds(400) and not c.holds(401)
    assert parse_constraint(" latency_s > 2e-3 ").holds(0.003)
    for text in ("area_mm2 <= 400", "latency_s < 0.0015", "tops >= 123456789.25", "energy_j != 1e-300"):
        c = parse_constraint(text)
        assert parse_constraint(str(c)) == c  # the text workers re-parse is exact
    for bad in ("area_mm2 =< 4", "area_mm2 <= x", "<= 4", "area_mm2 <= inf", "area_mm2 <= \uff14"):
        with pytest.raises(UsageError):
            parse_constraint(bad)
    assert str(parse_objective("tops")) == "max:tops" and str(parse_objective("latency_s")) == "min:latency_s"
    with pytest.raises(UsageError):
        parse_objective("up:tops")


vectors = st.lists(st.lists(st.integers(-3, 3).map(float), min_size=3, max_size=3), min_size=0, max_size=60)


@settings(max_examples=150, deadline=None)
@given(vectors)
def test_front_is_exactly_the_non_dominated_set(vs: list[list[float]]) -> None:
    expected = {i for i, v in enumerate(vs) if not any(dominates(w, v) for w in vs)}
    assert set(front_indices(vs)) == expected
    mask = front_mask(np.array(vs, dtype=float).reshape(-1, 3), block=7)
    assert set(np.flatnonzero(mask)) == expected
    small = small_front_indices(vs, limit=4)
    assert small is None if len(expected) > 4 else small == sorted(expected)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.lists(st.sampled_from([-1.0, 0.0, 2.0, math.nan]), min_size=2, max_size=2), max_size=30))
def test_fronts_with_nan_agree(vs: list[list[float]]) -> None:
    """A NaN compares false with everything: such a vector is never dominated and dominates
    nothing, in the Python front as in the vectorised one."""
    mask = front_mask(np.array(vs, dtype=float).reshape(-1, 2))
    assert small_front_indices(vs, limit=None) == front_indices(vs) == [int(i) for i in np.flatnonzero(mask)]


@settings(max_examples=100, deadline=None)
@given(vectors, st.lists(st.integers(1, 20), min_size=1, max_size=8))
def test_merging_chunk_fronts_equals_one_front(vs: list[list[float]], cuts: list[int]) -> None:
    """Workers send chunk fronts; merging them must give the front of all points."""
    from hastily_bench.sweep.pareto import Objective

    objs = [Objective("a", True), Objective("b", False), Objective("c", False)]
    points = [FrontPoint(i, "w", "x", 1, 1, {}, tuple(v), "") for i, v in enumerate(vs)]
    acc = FrontAccumulator(objs)
    start = 0
    for cut in [*cuts, len(points)]:
        chunk = points[start:start + cut]
        if chunk:
            mins = np.array([[-p.values[0], p.values[1], p.values[2]] for p in chunk])
            acc.add([p for p, k in zip(chunk, front_mask(mins), strict=True) if k])
        start += cut
    mins = [[-v[0], v[1], v[2]] for v in vs]
    assert [p.index for p in acc.points()] == front_indices(mins)


# -- rows are run rows ------------------------------------------------------------------------------

def test_sweep_rows_equal_run_rows_and_validate(tmp_path: Path, host) -> None:  # type: ignore[no-untyped-def]
    ip, fp = _int_float_params(host)
    spec, ev = prepare(host, workloads=["bert-tiny"], accelerators=["hastily", "a40-tensorrt"],
                       seq_lens=[128, 512], sets=["hastily.lut_exp=true"],
                       grid=[f"hastily.{ip}=1,2", f"hastily.{fp}=0.5e9:2e9:x2"])
    out = run_sweep(spec, ev, output=tmp_path / "s.jsonl", jobs=1)
    assert out.status == "complete" and out.done == spec.total == 2 * (6 + 1)
    rows = list(read_rows(tmp_path / "s.jsonl"))
    jsonschema.validate({"schema_version": 1, "metadata": {"tool": "hastily-bench", "version": "x",
                                                           "created_utc": "x"}, "results": rows},
                        results_schema())
    p = host.accelerator("hastily").spec.params
    for i in (0, 3, 5, 6, 11):
        row = rows[i]
        sets = []
        if row["accelerator"] == "hastily":
            sets = ["hastily.lut_exp=true", f"hastily.{ip}={row['params'][ip]}", f"hastily.{fp}={row['params'][fp]!r}"]
        doc = api.run(api.RunRequest(workloads=["bert-tiny"], accelerators=[row["accelerator"]],
                                     seq_lens=[row["seq_len"]], overrides=sets, numerics="off"), host=host)
        assert json.dumps(doc.results[0].to_dict()) == json.dumps(row)
    assert {r["params"][ip] for r in rows if r["accelerator"] == "hastily"} == {1, 2}
    assert p[ip].value == host.accelerator("hastily").spec.params[ip].value  # the preset is untouched


def test_row_encoder_matches_json(host) -> None:  # type: ignore[no-untyped-def]
    ip, fp = _int_float_params(host)
    spec, ev = prepare(host, workloads=["bert-tiny"], accelerators=["hastily", "a40-tensorrt"],
                       grid=[f"hastily.{fp}=0.5e9:2e9:3"])
    for i in range(spec.total):
        result, params = ev._evaluate(*spec.decode(i))
        assert result.status == "ok"
        assert result.json_line(params.to_json()) == _encode(result.to_dict())
        assert result.json_line() == _encode(result.to_dict())
        failed = failed_result(status="error", error="cim: raised ValueError: \u00e9\n", workload=result.workload,
                               accelerator=result.accelerator, plugin=result.plugin, seq_len=result.seq_len,
                               batch=1, ops=result.ops, params=params.value_view(), params_hash="h")
        assert failed.json_line(params.to_json()) == _encode(failed.to_dict())


_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=8),
                     st.floats(allow_nan=True, allow_infinity=True))


@settings(max_examples=300, deadline=None)
@given(extra=st.dictionaries(st.text(max_size=6), _scalars, max_size=4),
       notes=st.lists(st.text(max_size=12), max_size=3),
       value=_scalars, name=st.text(min_size=1, max_size=8),
       error=st.one_of(st.none(), st.text(max_size=10)), hashes=st.booleans())
def test_json_line_equals_the_standard_encoder(extra, notes, value, name, error,  # type: ignore[no-untyped-def]
                                               hashes) -> None:
    """Any values at all, non-finite numbers and subclasses included: the text is the
    standard encoder's (the writer defers to it for what it does not write itself)."""

    class Sub(float):
        pass

    r = Result(workload=name, accelerator="a\u00e9\"b", plugin="p", seq_len=3, batch=1,
               status="ok" if error is None else "error", ops=7, latency_s=value,  # type: ignore[arg-type]
               energy_j=Sub(0.5), tops=True, arithmetic=name,  # type: ignore[arg-type]
               breakdown=(OpCost(name, 1e-300, -0.0, "matmul"), OpCost("x", value, 2, "vector")),  # type: ignore[arg-type]
               params={"k": value, name: [1, 2]}, params_hash=name, extra=extra, notes=tuple(notes),
               error=error, shape_hash="s" if hashes else "", ops_hash="o" if hashes else "")
    try:
        expect = _encode(r.to_dict())
    except (TypeError, ValueError):
        return
    assert r.json_line() == expect
    params_json = _encode(dict(r.params))
    assert r.json_line(params_json) == expect


_finite = st.one_of(st.none(), st.booleans(), st.integers(-(2**63), 2**63), st.text(max_size=8),
                    st.floats(allow_nan=False, allow_infinity=False))


@settings(max_examples=300, deadline=None)
@given(extra=st.dictionaries(st.text(max_size=6), _finite, max_size=5),
       notes=st.lists(st.text(max_size=12), max_size=3), value=st.floats(allow_nan=False, allow_infinity=False),
       name=st.text(min_size=1, max_size=8), error=st.one_of(st.none(), st.text(max_size=10)))
def test_json_line_writes_plain_values_itself(extra, notes, value, name, error) -> None:  # type: ignore[no-untyped-def]
    """Plain values (what results hold) never fall back to the standard encoder, and the
    fast writer's text is the standard encoder's."""
    from hastily_bench.results import _json_line

    r = Result(workload=name, accelerator=name, plugin="p\u00e9", seq_len=3, batch=1, status="ok",
               ops=2**40, latency_s=value, energy_j=0.5, tops=value, arithmetic=name,
               breakdown=(OpCost(name, value, -0.0, "matmul"), OpCost("x", 0.0, value, "vector")),
               params={"k": value, name: True}, params_hash=name, extra=extra, notes=tuple(notes),
               error=error, shape_hash="s", ops_hash="o")
    expect = _encode(r.to_dict())
    assert _json_line(r, None) == expect
    assert _json_line(r, _encode(dict(r.params))) == expect


def test_summary_front_and_constraints(tmp_path: Path, host) -> None:  # type: ignore[no-untyped-def]
    _, fp = _int_float_params(host)
    spec, ev = prepare(host, workloads=["bert-tiny"], accelerators=["hastily"], seq_lens=[128, 256],
                       grid=[f"hastily.{CLOCK}=0.5e9:2e9:4", f"hastily.{LANES}=8:32:x2"],
                       constraints=["latency_s <= 1"], objectives=["max:tops", "min:energy_j"])
    out = run_sweep(spec, ev, output=tmp_path / "s.jsonl", jobs=1, chunk_size=5)
    rows = list(read_rows(tmp_path / "s.jsonl"))
    doc = json.loads((tmp_path / "s.summary.json").read_text())
    assert doc["status"] == "complete" and doc["done"] == len(rows) == 24
    assert doc["metadata"]["tool"] == "hastily-bench"
    # the front, recomputed from the rows in one pass
    for seq in (128, 256):
        idx = [i for i, r in enumerate(rows) if r["seq_len"] == seq and r["latency_s"] <= 1]
        expect = [idx[k] for k in front_indices([[-rows[i]["tops"], rows[i]["energy_j"]] for i in idx])]
        got = [p["index"] for p in doc["front"] if p["seq_len"] == seq]
        assert got == expect
    assert [p.index for p in out.front] == [p["index"] for p in doc["front"]]
    # a constraint nothing meets: an empty front, every row still written
    spec2, ev2 = prepare(host, workloads=["bert-tiny"], accelerators=["hastily"],
                         grid=[f"hastily.{LANES}=8,16"], constraints=["latency_s < 0"])
    out2 = run_sweep(spec2, ev2, output=tmp_path / "t.jsonl", jobs=1)
    assert out2.feasible == 0 and out2.front == [] and out2.done == 2


def test_existing_output_needs_resume_or_overwrite(tmp_path: Path, host) -> None:  # type: ignore[no-untyped-def]
    spec, ev = prepare(host, workloads=["bert-tiny"], accelerators=["hastily"], grid=[f"hastily.{LANES}=8,16"])
    run_sweep(spec, ev, output=tmp_path / "s.jsonl", jobs=1)
    before = (tmp_path / "s.jsonl").read_bytes()
    with pytest.raises(UsageError, match="--resume"):
        run_sweep(spec, ev, output=tmp_path / "s.jsonl", jobs=1)
    # resuming a complete sweep does nothing; a different sweep is refused
    again = run_sweep(spec, ev, output=tmp_path / "s.jsonl", jobs=1, resume=True)
    assert again.skipped == 2 and (tmp_path / "s.jsonl").read_bytes() == before
    other, ev2 = prepare(host, workloads=["bert-tiny"], accelerators=["hastily"], grid=[f"hastily.{LANES}=8,32"])
    with pytest.raises(UsageError, match="different sweep"):
        run_sweep(other, ev2, output=tmp_path / "s.jsonl", jobs=1, resume=True)


def test_resume_after_a_torn_write(tmp_path: Path, host) -> None:  # type: ignore[no-untyped-def]
    """A sweep killed mid-write: the torn line is dropped, the front rebuilt from the rows."""
    spec, ev = prepare(host, workloads=["bert-tiny"], accelerators=["hastily"], seq_lens=[128, 256],
                       grid=[f"hastily.{LANES}=8:64:x2", f"hastily.{CLOCK}=1e9:2e9:3"])
    full = run_sweep(spec, ev, output=tmp_path / "full.jsonl", jobs=1)
    data = (tmp_path / "full.jsonl").read_bytes()
    lines = data.splitlines(keepends=True)
    part = tmp_path / "part.jsonl"
    part.write_bytes(b"".join(lines[:9]) + lines[9][:100])
    # the summary a sweep killed outright leaves: the one written when it started
    stale = json.loads((tmp_path / "full.summary.json").read_text())
    stale.update(done=0, feasible=0, front=[], status="running",
                 counts={"ok": 0, "error": 0, "unsupported": 0})
    (tmp_path / "part.summary.json").write_text(json.dumps(stale))
    out = run_sweep(spec, ev, output=part, jobs=1, resume=True)
    assert out.skipped == 9 and part.read_bytes() == data
    assert [p.index for p in out.front] == [p.index for p in full.front]
    # a last row that is not this sweep's is refused
    part.write_bytes(b"".join(lines[:8]) + lines[9])
    with pytest.raises(UsageError, match="last row"):
        run_sweep(spec, ev, output=part, jobs=1, resume=True)


def test_param_sets_travel_to_workers_without_their_cached_hash(host) -> None:  # type: ignore[no-untyped-def]
    """String hashes differ between processes: a pickled hash would break equal => same hash."""
    import pickle

    base = host.accelerator("hastily").spec.params
    p = base.override(LANES, 32)
    h = hash(p)
    q = pickle.loads(pickle.dumps(p))
    assert q == p and q._hash is None and hash(q) == h and q.values_json() == p.values_json()
    again = base.override(LANES, 32)
    assert again == p and hash(again) == h and hash(base.override(LANES, 64)) != h


def test_cached_param_json_gives_the_same_hash_and_params_as_json_dumps(host) -> None:  # type: ignore[no-untyped-def]
    """params_hash must not change with the fast path: compare with the plain definition."""
    import hashlib

    def reference(p, extra: str) -> str:  # type: ignore[no-untyped-def]
        blob = json.dumps([p.as_dict(), extra], sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    for reg in host.accelerators():
        p = reg.spec.params
        variants = [p, p.replacing([p[next(iter(p))]])]
        if LANES in p:
            variants += [p.override(LANES, 64), p.override(LANES, 64).with_values({CLOCK: 2e9})]
        for v in variants:
            assert v.digest("x==1.0") == reference(v, "x==1.0")
            assert v.to_json() == json.dumps(v.as_dict(), separators=(",", ":"))
            assert list(v.values_json()) == list(v)


def test_json_line_keeps_the_sign_of_zero() -> None:
    """0.0 and -0.0 are one dict key but two JSON texts: the writer's memo of float texts
    must not hand one the other's."""
    for v in (0.0, -0.0, 0.0, -0.0, 1.5, -1.5):
        r = Result(workload="w", accelerator="a", plugin="p", seq_len=1, batch=1, status="ok",
                   ops=1, latency_s=1.0, energy_j=v, extra={"x": v},
                   breakdown=(OpCost("op", v, v, "matmul"),))
        assert r.json_line() == _encode(r.to_dict())


def test_objectives_and_metrics_are_checked_before_any_work(host) -> None:  # type: ignore[no-untyped-def]
    """A metric given twice, or one that cannot be checked because every design tried
    fails, is refused in one line (it once ran the whole sweep with an empty front, or
    crashed --resume)."""
    with pytest.raises(UsageError, match="'tops' is given twice"):
        prepare(host, workloads=["bert-tiny"], accelerators=["hastily"],
                objectives=["max:tops", "tops"])
    # the first design fails (a chip too small for the model, capacity=unsupported), a later one does not
    grid = ["hastily.chip_tiles=1,186"]
    sets = ["hastily.capacity=unsupported"]
    with pytest.raises(UsageError, match="metric 'bogus' is not reported by hastily"):
        prepare(host, workloads=["bert-base"], accelerators=["hastily"], sets=sets, grid=grid,
                objectives=["max:bogus"])
    with pytest.raises(UsageError, match="metric 'bogus' cannot be checked: none of 1 designs"):
        prepare(host, workloads=["bert-base"], accelerators=["hastily"], sets=sets,
                grid=["hastily.chip_tiles=1"], objectives=["max:bogus"])
    spec, _ = prepare(host, workloads=["bert-base"], accelerators=["hastily"], sets=sets,
                      grid=["hastily.chip_tiles=1"], objectives=["max:tops"])
    assert spec.objectives == ("max:tops",)  # result metrics need no probe


def test_metric_probes_try_every_length(host) -> None:  # type: ignore[no-untyped-def]
    """The probes for metric names visit each workload, length and batch in turn: a first
    length where no design fits does not make a valid metric uncheckable."""
    sets = ["hastily.capacity=unsupported"]
    grid = ["hastily.chip_tiles=1,2"]
    for lens in ([128, 32768], [32768, 128]):
        spec, _ = prepare(host, workloads=["bert-tiny"], accelerators=["hastily"], seq_lens=lens,
                          sets=sets, grid=grid, objectives=["min:t_mvm_s", "max:tops"])
        assert spec.objectives == ("min:t_mvm_s", "max:tops")



def test_json_line_keys_with_percent_signs() -> None:
    """The writer fills a template per shape of keys with the % operator: a key's own '%'
    must come out as itself."""
    from hastily_bench.results import _json_line

    for extra in ({"a%s": 1, "%%": 2.5, "%(x)s": "v%"}, {"%": True}, {"x": None, "%d": -0.0}):
        r = Result(workload="w%s", accelerator="a", plugin="p", seq_len=3, batch=1, status="ok", ops=2,
                   latency_s=1.0, energy_j=0.5, tops=1.0, arithmetic="%", breakdown=(OpCost("o%s", 1.0, 0.5, "matmul"),),
                   params={"k%": 1}, params_hash="h", extra=extra, notes=("50%",))
        assert _json_line(r, None) == _encode(r.to_dict())


@settings(max_examples=200, deadline=None)
@given(start=st.integers(0, 5000), total=st.integers(0, 6000), size=st.integers(1, 700), taper=st.integers(0, 8))
def test_chunks_cover_the_points_once_in_order(start: int, total: int, size: int, taper: int) -> None:
    """Chunks are contiguous from ``start`` to ``total``; none is over ``size`` points, and a
    tapered tail keeps chunks of at least 64 points (or what is left)."""
    from hastily_bench.sweep.runner import _chunks

    chunks = list(_chunks(start, total, size, taper))
    if start >= total:
        assert chunks == []
        return
    assert chunks[0][0] == start and chunks[-1][1] == total
    assert all(a[1] == b[0] for a, b in zip(chunks, chunks[1:], strict=False))
    assert all(0 < stop - s <= size for s, stop in chunks)
    assert all(stop - s >= min(size, 64) for s, stop in chunks[:-1])
    if not taper:
        assert all(stop - s == size for s, stop in chunks[:-1])


def test_large_fronts_take_the_vectorised_path_and_agree() -> None:
    """A front past the Python limit (here every point is on it) falls back to numpy, in a
    chunk and in the running front, with the same points as the exact front."""
    from hastily_bench.sweep.pareto import Objective

    vs = [(float(i), float(-i), float(i % 7)) for i in range(300)]  # all non-dominated
    assert small_front_indices(vs) is None  # beyond the default limit
    assert front_indices(vs) == list(range(300))
    objs = [Objective("a", False), Objective("b", False), Objective("c", False)]
    points = [FrontPoint(i, "w", "x", 1, 1, {}, v, "") for i, v in enumerate(vs)]
    points += [FrontPoint(300 + i, "w", "x", 1, 1, {}, (v[0] + 0.5, v[1] + 0.5, v[2] + 1), "")
               for i, v in enumerate(vs[:40])]  # dominated by their originals
    acc = FrontAccumulator(objs)
    for s in range(0, len(points), 37):
        acc.add(points[s:s + 37])
    assert [p.index for p in acc.points()] == list(range(300))


def test_fronts_compare_large_integers_as_floats() -> None:
    """Objectives may be integers beyond 2^53: every path compares them as float64, as the
    vectorised mask does, whatever the size of the front."""
    from hastily_bench.sweep.pareto import Objective, merge_fronts

    objs = [Objective("a", False), Objective("b", False)]
    pts = [FrontPoint(0, "w", "x", 1, 1, {}, (2**53 + 1, 5.0), ""), FrontPoint(1, "w", "x", 1, 1, {}, (2**53, 5.0), "")]
    acc = FrontAccumulator(objs)
    acc.add(pts)
    assert [p.index for p in acc.points()] == [p.index for p in merge_fronts(pts, objs)] == [0, 1]
