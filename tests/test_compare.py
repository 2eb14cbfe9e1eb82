"""hastily_bench.compare and the ``compare`` command: directions, thresholds, exit codes."""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from hastily_bench.api import RunRequest, run
from hastily_bench.cli import main
from hastily_bench.compare import (
    DEFAULT_THRESHOLDS,
    IMPROVED,
    METRIC_DIRECTIONS,
    MISSING,
    REGRESSED,
    UNCHANGED,
    CompareReport,
    classify,
    compare_documents,
    parse_thresholds,
    render_compare_markdown,
    render_compare_table,
)
from hastily_bench.errors import UsageError
from hastily_bench.results import Result, RunDocument
from hastily_bench.testing import make_host


def result(
    accelerator: str = "acc",
    seq_len: int = 128,
    *,
    status: str = "ok",
    params_hash: str = "h1",
    scale: float = 1.0,
    **kw: Any,
) -> Result:
    """A synthetic ok result whose latency is ``scale`` x 1 ms (rates follow)."""
    latency = 1e-3 * scale
    ops = 10**12
    fields: dict[str, Any] = {
        "workload": "bert-base",
        "accelerator": accelerator,
        "plugin": "p",
        "seq_len": seq_len,
        "batch": 1,
        "status": status,
        "ops": ops,
        "params": {"clock_hz": 1e9},
        "params_hash": params_hash,
    }
    if status == "ok":
        fields.update(
            latency_s=latency,
            energy_j=0.5,
            energy_per_inference_j=0.5,
            tops=ops / latency / 1e12,
            inferences_per_s=1 / latency,
            tops_per_w=ops / 0.5 / 1e12,
            memory_bytes=1 << 20,
        )
    else:
        fields["error"] = "plugin 'p' raised RuntimeError: boom"
    fields.update(kw)
    return Result(**fields)


def doc(*results: Result, commit: str | None = None) -> RunDocument:
    return RunDocument(
        results=tuple(results),
        metadata={
            "created_utc": "2025-03-01T12:00:00+00:00",
            "git_commit": commit,
            "plugins": [{"name": "p", "distribution": "d", "version": "1"}],
        },
    )


# -- thresholds ---------------------------------------------------------------------


def test_defaults_cover_every_metric() -> None:
    assert parse_thresholds([]) == DEFAULT_THRESHOLDS
    assert set(DEFAULT_THRESHOLDS) == set(METRIC_DIRECTIONS)


def test_parse_thresholds_overrides_in_order() -> None:
    th = parse_thresholds(["tops=5", "latency_s=2.5%", " energy_j = 0 "])
    assert th["tops"] == 5.0 and th["latency_s"] == 2.5 and th["energy_j"] == 0.0
    assert th["memory_bytes"] == DEFAULT_THRESHOLDS["memory_bytes"]
    th = parse_thresholds(["all=3", "tops=1"])
    assert th["tops"] == 1.0 and all(v == 3.0 for k, v in th.items() if k != "tops")


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ("top=5", r"unknown metric 'top' \(did you mean 'tops'"),
        ("latency=5", r"did you mean 'latency_s'"),
        ("tops", r"expected METRIC=PERCENT"),
        ("=5", r"expected METRIC=PERCENT"),
        ("tops=five", r"'five' is not a number"),
        ("tops=-1", r"finite number >= 0"),
        ("tops=nan", r"finite number >= 0"),
        ("tops=inf", r"finite number >= 0"),
        ("tops=\uff15", r"is not a number"),  # fullwidth 5: float() would read it
    ],
)
def test_parse_thresholds_rejects(item: str, message: str) -> None:
    with pytest.raises(UsageError, match=message) as info:
        parse_thresholds([item])
    assert "\n" not in str(info.value)


def test_compare_documents_rejects_unknown_threshold_key() -> None:
    with pytest.raises(UsageError, match="did you mean 'tops'"):
        compare_documents(doc(result()), doc(result()), {"topps": 1.0})


# -- classification ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("metric", "base", "head", "verdict"),
    [
        ("tops", 100.0, 90.0, REGRESSED),  # higher is better
        ("tops", 100.0, 110.0, IMPROVED),
        ("tops_per_w", 2.0, 1.9, REGRESSED),
        ("inferences_per_s", 100.0, 99.5, UNCHANGED),
        ("latency_s", 1.0, 1.1, REGRESSED),  # lower is better
        ("latency_s", 1.0, 0.9, IMPROVED),
        ("energy_j", 1.0, 1.02, REGRESSED),
        ("energy_per_inference_j", 1.0, 0.98, IMPROVED),
        ("memory_bytes", 1000.0, 1011.0, REGRESSED),
        ("attn_rel_error", 1e-3, 1.04e-3, UNCHANGED),  # 5 % default
        ("attn_rel_error", 1e-3, 1.06e-3, REGRESSED),
    ],
)
def test_classify_uses_direction_and_default_threshold(
    metric: str, base: float, head: float, verdict: str
) -> None:
    change = classify(metric, base, head, DEFAULT_THRESHOLDS[metric])
    assert change.verdict == verdict
    assert change.change_pct == pytest.approx((head - base) / base * 100)


def test_classify_threshold_is_exclusive_and_zero_threshold_catches_any_loss() -> None:
    assert classify("tops", 100.0, 98.0, 2.0).verdict == UNCHANGED
    assert classify("tops", 100.0, 97.99, 2.0).verdict == REGRESSED
    assert classify("tops", 100.0, 99.999, 0.0).verdict == REGRESSED
    assert classify("tops", 100.0, 100.0, 0.0).verdict == UNCHANGED


def test_classify_zero_base_and_missing_values() -> None:
    assert classify("attn_rel_error", 0.0, 0.0, 5).verdict == UNCHANGED
    up = classify("attn_rel_error", 0.0, 1e-6, 5)
    assert up.verdict == REGRESSED and up.change_pct is None
    assert classify("tops", 0.0, 1.0, 1).verdict == IMPROVED
    assert classify("attn_rel_error", None, 1e-3, 5).verdict == MISSING
    assert classify("attn_rel_error", 1e-3, None, 5).verdict == MISSING


# -- documents ------------------------------------------------------------------------


def test_identical_documents_have_no_regression() -> None:
    d = doc(result("a"), result("b"))
    report = compare_documents(d, d, parse_thresholds([]))
    assert (report.regressed, report.improved, report.unchanged) == (0, 0, 2)
    assert report.exit_code == 0 and report.verdict == "no regression"
    assert all(m.change_pct == 0 for p in report.points for m in p.metrics)


def test_slower_head_is_a_regression_in_every_related_metric() -> None:
    report = compare_documents(
        doc(result("a"), result("b")), doc(result("a", scale=1.10), result("b")), {}
    )
    assert report.exit_code == 1 and report.regressed == 1 and report.unchanged == 1
    by_metric = {m.metric: m for m in report.points[0].metrics}
    assert by_metric["latency_s"].verdict == REGRESSED
    assert by_metric["tops"].verdict == REGRESSED
    assert by_metric["inferences_per_s"].verdict == REGRESSED
    assert by_metric["energy_j"].verdict == UNCHANGED
    assert by_metric["tops"].change_pct == pytest.approx(-100 / 11)


def test_threshold_decides() -> None:
    base, head = doc(result("a")), doc(result("a", scale=1.04))  # latency +4 %, tops -3.8 %
    assert compare_documents(base, head, parse_thresholds(["all=5"])).exit_code == 0
    assert (
        compare_documents(base, head, parse_thresholds(["all=5", "latency_s=3.9"])).exit_code == 1
    )
    assert compare_documents(base, head, parse_thresholds(["all=5", "tops=3.8"])).exit_code == 1


def test_mixed_point_counts_as_regressed() -> None:
    head = doc(result("a", scale=0.5, memory_bytes=2 << 20))  # faster, but twice the memory
    report = compare_documents(doc(result("a")), head, {})
    assert report.points[0].verdict == REGRESSED and report.exit_code == 1
    assert {m.metric for m in report.points[0].metrics if m.verdict == IMPROVED} >= {
        "tops",
        "latency_s",
    }


def test_improvement_only_exits_zero() -> None:
    report = compare_documents(doc(result("a")), doc(result("a", scale=0.8)), {})
    assert report.improved == 1 and report.exit_code == 0


@pytest.mark.parametrize(
    ("before", "after", "verdict", "code"),
    [
        ("ok", "error", REGRESSED, 1),
        ("ok", "unsupported", REGRESSED, 1),
        ("unsupported", "error", REGRESSED, 1),
        ("error", "ok", IMPROVED, 0),
        ("error", "error", UNCHANGED, 0),
    ],
)
def test_status_changes(before: str, after: str, verdict: str, code: int) -> None:
    report = compare_documents(doc(result("a", status=before)), doc(result("a", status=after)), {})
    assert report.points[0].verdict == verdict
    assert report.exit_code == code
    if before != after:
        assert report.points[0].reason == f"status {before} -> {after}"
    assert report.points[0].head_error == (
        "" if after == "ok" else "plugin 'p' raised RuntimeError: boom"
    )


def test_params_hash_mismatch_is_not_comparable_never_compared() -> None:
    base = doc(result("a"), result("b"))
    head = doc(result("a", params_hash="h2", params={"clock_hz": 2e9}, scale=5.0), result("b"))
    report = compare_documents(base, head, {})
    point = report.points[0]
    assert not point.comparable and point.metrics == () and point.verdict == "not comparable"
    assert "clock_hz 1000000000.0 -> 2000000000.0" in point.reason
    assert report.not_comparable == 1 and report.exit_code == 0  # the 5x slowdown is not judged
    assert "1 not comparable" in report.summary()
    md = render_compare_markdown(report)
    assert "not comparable: `bert-base` `a` l=128 b=1: parameters differ: clock_hz" in md


def test_same_params_different_plugin_version_names_the_versions() -> None:
    head = doc(result("a", params_hash="h2"), result("b"))
    head = dataclasses.replace(
        head,
        metadata={**head.metadata, "plugins": [{"name": "p", "distribution": "d", "version": "2"}]},
    )
    report = compare_documents(doc(result("a"), result("b")), head, {})
    assert report.points[0].reason == "same parameters, different plugin version: d 1 -> d 2"


def test_nothing_comparable_is_a_usage_error() -> None:
    with pytest.raises(
        UsageError, match="all 1 common points were computed with different parameters"
    ):
        compare_documents(doc(result("a")), doc(result("a", params_hash="zz")), {})


def test_no_overlap_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="no .* point is in both files"):
        compare_documents(doc(result("a")), doc(result("b")), {})
    with pytest.raises(UsageError, match="base has 0, head has 1"):
        compare_documents(doc(), doc(result("b")), {})


def test_added_and_removed_points_are_listed() -> None:
    report = compare_documents(
        doc(result("a"), result("old")), doc(result("a"), result("new", 512)), {}
    )
    assert report.added == (("bert-base", "new", 512, 1),)
    assert report.removed == (("bert-base", "old", 128, 1),)
    assert report.exit_code == 0
    md = render_compare_markdown(report)
    assert "- added: `bert-base` `new` l=512 b=1" in md
    assert "- removed: `bert-base` `old` l=128 b=1" in md


def test_metric_missing_on_one_side_is_shown_not_judged() -> None:
    report = compare_documents(doc(result("a")), doc(result("a", attn_rel_error=1e-3)), {})
    err = next(m for m in report.points[0].metrics if m.metric == "attn_rel_error")
    assert err.verdict == MISSING and report.exit_code == 0


def test_to_dict_is_strict_json_with_schema_version() -> None:
    report = compare_documents(
        doc(result("a"), result("b", status="error")),
        doc(result("a", scale=1.1, attn_rel_error=0.0), result("b")),
        {},
    )
    d = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    assert d["schema_version"] == 1
    assert d["summary"] == {
        "regressed": 1,
        "improved": 1,
        "unchanged": 0,
        "not_comparable": 0,
        "added": 0,
        "removed": 0,
        "verdict": "regression",
        "exit_code": 1,
    }
    tops = next(m for m in d["points"][0]["metrics"] if m["metric"] == "tops")
    assert tops["higher_is_better"] is True and tops["verdict"] == "regressed"
    assert d["thresholds_pct"] == DEFAULT_THRESHOLDS


# -- rendering ------------------------------------------------------------------------

EMOJI = re.compile("[\U0001f300-\U0001faff\u2600-\u27bf\u2b50\u2705\u274c]")


@pytest.fixture()
def mixed_report() -> CompareReport:
    base = doc(
        result("fast"), result("same"), result("gone"), result("broken"), commit="aaaa11112222"
    )
    head = doc(
        result("fast", scale=0.5),
        result("same"),
        result("broken", status="error"),
        result("new"),
        commit="bbbb33334444",
    )
    return compare_documents(base, head, parse_thresholds(["tops=2"]))


def test_markdown_summary_changed_table_then_details(mixed_report: CompareReport) -> None:
    md = render_compare_markdown(mixed_report)
    lines = md.splitlines()
    assert lines[0] == (
        "**hastily-bench compare: regression** (1 regressed, 1 improved, "
        "1 unchanged, 1 added, 1 removed)"
    )
    assert "base `aaaa11112222 2025-03-01T12:00:00+00:00`" in lines[2]
    assert "tops 2%" in lines[2]
    table_start = lines.index(
        "| workload | accelerator | point | metric | base | head | change | threshold | verdict |"
    )
    details = lines.index("<details>")
    assert table_start < details and md.rstrip().endswith("</details>")
    changed = "\n".join(lines[table_start:details])
    assert "| `bert-base` | `broken` | l=128 b=1 | status | ok | error |" in changed
    assert "**regressed**" in changed and "| -50.00% | 1% | improved |" in changed
    assert "`same`" not in changed  # unchanged rows live in <details> only
    assert "`same`" in "\n".join(lines[details:])
    assert not EMOJI.search(md)


def test_markdown_escapes_pipes_in_errors() -> None:
    report = compare_documents(
        doc(result("a"), result("b")),
        doc(result("a", status="error", error="bad | value"), result("b")),
        {},
    )
    assert "| ok | error | bad \\| value | - | **regressed** |" in render_compare_markdown(report)


def test_markdown_without_changes_says_so() -> None:
    d = doc(result("a"))
    md = render_compare_markdown(compare_documents(d, d, {}))
    assert md.startswith(
        "**hastily-bench compare: no regression** (0 regressed, 0 improved, 1 unchanged"
    )
    assert "No metric changed beyond its threshold." in md


def test_rich_table(mixed_report: CompareReport) -> None:
    console = Console(record=True, width=160, file=open("/dev/null", "w"))  # noqa: SIM115
    try:
        render_compare_table(mixed_report, console)
        text = console.export_text()
    finally:
        console.file.close()
    assert "regressed" in text and "improved" in text
    assert "added: bert-base new l=128 b=1" in text
    assert "removed: bert-base gone l=128 b=1" in text
    assert text.rstrip().endswith("verdict: regression")
    assert "same" not in text.split("added:")[0]


def test_rich_table_prints_names_as_text_not_markup() -> None:
    """A hand-edited file's accelerator name '[red]ev[/red]il' is shown as written."""
    name = "[red]ev[/red]il"
    report = compare_documents(doc(result(name)), doc(result(name, latency_s=2.0)), {})
    console = Console(record=True, width=200, file=open("/dev/null", "w"))  # noqa: SIM115
    try:
        render_compare_table(report, console, show_unchanged=True)
        text = console.export_text()
    finally:
        console.file.close()
    assert name in text


# -- the command ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def gpu_doc() -> RunDocument:
    from hastily_bench.plugins import gpu

    return run(
        RunRequest(
            workloads=["bert-base"],
            accelerators=["a40-tensorrt", "a100-40gb-tensorrt"],
            seq_lens=[128, 512],
            numerics="off",
        ),
        host=make_host(gpu),
    )


def write(path: Path, d: RunDocument | dict[str, Any]) -> Path:
    path.write_text(d.to_json() if isinstance(d, RunDocument) else json.dumps(d))
    return path


def cli(*args: str) -> int:
    with pytest.raises(SystemExit) as info:
        main(list(args))
    code = info.value.code
    assert isinstance(code, int)
    return code


def slower(d: RunDocument, factor: float, accelerator: str) -> RunDocument:
    return dataclasses.replace(
        d,
        results=tuple(
            dataclasses.replace(r, tops=r.tops * factor)
            if r.accelerator == accelerator and r.tops
            else r
            for r in d.results
        ),
    )


@pytest.fixture()
def files(tmp_path: Path, gpu_doc: RunDocument) -> Iterator[tuple[Path, Path, Path]]:
    yield (
        write(tmp_path / "base.json", gpu_doc),
        write(tmp_path / "same.json", gpu_doc),
        write(tmp_path / "worse.json", slower(gpu_doc, 0.9, "a40-tensorrt")),
    )


def test_cli_exit_0_for_identical_runs(
    files: tuple[Path, Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    base, same, _ = files
    assert cli("compare", str(base), str(same)) == 0
    out = capsys.readouterr().out
    assert "4 unchanged" in out and "verdict: no regression" in out


def test_cli_exit_1_on_regression_with_markdown(
    files: tuple[Path, Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    base, _, worse = files
    assert (
        cli("compare", str(base), str(worse), "--threshold", "tops=2", "--format", "markdown") == 1
    )
    out = capsys.readouterr().out
    assert out.startswith("**hastily-bench compare: regression** (2 regressed")
    assert "| `bert-base` | `a40-tensorrt` | l=512 b=1 | tops |" in out
    assert "| -10.00% | 2% | **regressed** |" in out
    # a 10 % loss is within a 15 % threshold
    assert cli("compare", str(base), str(worse), "-t", "tops=15", "-f", "json") == 0
    assert json.loads(capsys.readouterr().out)["summary"]["unchanged"] == 4


def test_cli_writes_report_file_even_when_failing(
    files: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    base, _, worse = files
    out = tmp_path / "report.md"
    assert cli("compare", str(base), str(worse), "-f", "markdown", "-o", str(out)) == 1
    assert out.read_text().startswith("**hastily-bench compare: regression**")


@pytest.mark.parametrize("case", ["missing", "malformed", "schema", "no-overlap", "threshold"])
def test_cli_exit_2_with_one_line(
    case: str,
    files: tuple[Path, Path, Path],
    tmp_path: Path,
    gpu_doc: RunDocument,
    capsys: pytest.CaptureFixture[str],
) -> None:
    base = files[0]
    head, extra = files[1], []
    if case == "missing":
        head, expected = tmp_path / "nope.json", "no such file"
    elif case == "malformed":
        head = tmp_path / "bad.json"
        head.write_text("{not json")
        expected = "malformed JSON"
    elif case == "schema":
        head = write(tmp_path / "v9.json", {**gpu_doc.to_dict(), "schema_version": 9})
        expected = "schema_version 9 is not supported"
    elif case == "no-overlap":
        other = dataclasses.replace(
            gpu_doc,
            results=tuple(
                dataclasses.replace(r, seq_len=r.seq_len * 2)
                for r in gpu_doc.results
                if r.seq_len == 512
            ),
        )
        head, expected = write(tmp_path / "other.json", other), "nothing to compare"
    else:
        extra, expected = ["-t", "tops=x"], "is not a number of percent"
    assert cli("compare", str(base), str(head), *extra) == 2
    err = capsys.readouterr().err
    assert expected in err and err.count("\n") == 1 and "Traceback" not in err


def test_real_runs_with_changed_parameter_are_flagged(
    tmp_path: Path, gpu_doc: RunDocument, capsys: pytest.CaptureFixture[str]
) -> None:
    from hastily_bench.plugins import gpu

    changed = run(
        RunRequest(
            workloads=["bert-base"],
            accelerators=["a40-tensorrt", "a100-40gb-tensorrt"],
            seq_lens=[128, 512],
            numerics="off",
            overrides=["a40-tensorrt.tdp_w=150"],
        ),
        host=make_host(gpu),
    )
    base, head = write(tmp_path / "b.json", gpu_doc), write(tmp_path / "h.json", changed)
    assert cli("compare", str(base), str(head), "-f", "json") == 0
    d = json.loads(capsys.readouterr().out)
    flagged = [p for p in d["points"] if not p["comparable"]]
    assert {p["accelerator"] for p in flagged} == {"a40-tensorrt"} and len(flagged) == 2
    assert all("tdp_w 300.0 -> 150.0" in p["reason"] for p in flagged)
    assert d["summary"]["not_comparable"] == 2 and d["summary"]["unchanged"] == 2


@pytest.mark.parametrize("bad", ['"fast"', "null", "NaN", "true", "-1.0"])
def test_corrupt_metric_values_are_bad_input(cli, tmp_path: Path, bad: str) -> None:
    """A head file with an impossible metric must not pass the gate as 'unchanged'."""
    doc = run(RunRequest(workloads=["bert-tiny"], accelerators=["hastily"], seq_lens=[128],
                         numerics="off"))
    base = tmp_path / "base.json"
    base.write_text(doc.to_json())
    text = doc.to_json()
    head_doc = json.loads(text)
    head_doc["results"][0]["latency_s"] = "PLACEHOLDER"
    head = tmp_path / "head.json"
    head.write_text(json.dumps(head_doc).replace('"PLACEHOLDER"', bad))
    r = cli("compare", str(base), str(head))
    assert r.code == 2 and re.search("malformed result|not a valid results file|not valid JSON", r.err)


def test_metadata_must_be_an_object(cli, tmp_path: Path) -> None:
    doc = {"schema_version": 1, "metadata": [], "results": []}
    p = tmp_path / "m.json"
    p.write_text(json.dumps(doc))
    r = cli("compare", str(p), str(p))
    assert r.code == 2 and re.search("'metadata' must be an object|metadata: .* is not of type 'object'", r.err)
