"""hastily_bench.history and ``run --save``: names, counters, atomicity, latest run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hastily_bench.cli import main
from hastily_bench.errors import UsageError
from hastily_bench.history import RUN_FILE_RE, latest_run, list_runs, run_file_name, save_run
from hastily_bench.results import Result, RunDocument, load_document


def make_doc(
    commit: object = "0123456789abcdef0123", created: object = "2025-03-01T14:15:02+00:00"
) -> RunDocument:
    r = Result(
        workload="bert-base",
        accelerator="acc",
        plugin="p",
        seq_len=128,
        batch=1,
        status="ok",
        ops=2,
        latency_s=1e-3,
        energy_j=1e-3,
        memory_bytes=1,
        tops=2e-9,
        inferences_per_s=1e3,
        tops_per_w=2e-9,
        energy_per_inference_j=1e-3,
        params_hash="h",
    )
    return RunDocument(results=(r,), metadata={"tool": "hastily-bench", "version": "0",
                                                 "git_commit": commit, "created_utc": created})


def test_name_has_counter_utc_stamp_and_12_char_commit(tmp_path: Path) -> None:
    path = save_run(make_doc(), tmp_path)
    assert path.name == "0001_20250301-141502_0123456789ab.json"
    assert path.parent == tmp_path
    assert path.read_text() == make_doc().to_json()
    assert load_document(path) == make_doc()


@pytest.mark.parametrize(
    ("commit", "expected"),
    [
        (None, "nogit"),
        ("", "nogit"),
        ("not-a-sha!", "nogit"),
        ("ABCDEF", "abcdef"),
    ],
)
def test_commit_part(commit: object, expected: str) -> None:
    assert run_file_name(make_doc(commit=commit), 7) == f"0007_20250301-141502_{expected}.json"


def test_stamp_is_converted_to_utc_and_falls_back_to_now() -> None:
    name = run_file_name(make_doc(created="2025-03-01T23:30:00-02:00"), 1)
    assert name.startswith("0001_20250302-013000_")
    for created in (None, "yesterday"):
        assert RUN_FILE_RE.match(run_file_name(make_doc(created=created), 1))
    with pytest.raises(ValueError, match="counter"):
        run_file_name(make_doc(), 0)


def test_counter_increments_and_directory_is_created(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "history"
    paths = [save_run(make_doc(commit=c), target) for c in ("aaaa", None, "bbbb")]
    assert [p.name[:5] for p in paths] == ["0001_", "0002_", "0003_"]
    assert list_runs(target) == paths
    assert latest_run(target) == paths[-1]
    assert not [p for p in target.iterdir() if p.name.endswith(".tmp")]


def test_counter_follows_the_highest_and_sorts_numerically(tmp_path: Path) -> None:
    for name in (
        "0009_20250101-000000_nogit.json",
        "10000_20250101-000000_nogit.json",
        "0010_20250101-000000_abcd.json",
    ):
        (tmp_path / name).write_text("{}")
    # not runs: other files, a directory that looks like one, a wrong pattern
    (tmp_path / "README.md").write_text("history")
    (tmp_path / "baseline.json").write_text("{}")
    (tmp_path / "0011_20250101-000000_nogit.json").mkdir()
    (tmp_path / "0012_2025-01-01_nogit.json").write_text("{}")
    assert [p.name[:5] for p in list_runs(tmp_path)] == ["0009_", "0010_", "10000"]
    assert save_run(make_doc(commit=None), tmp_path).name == "10001_20250301-141502_nogit.json"


def test_empty_missing_and_wrong_directories(tmp_path: Path) -> None:
    assert list_runs(tmp_path / "missing") == [] and latest_run(tmp_path / "missing") is None
    assert latest_run(tmp_path) is None
    a_file = tmp_path / "file"
    a_file.write_text("x")
    for call in (lambda: list_runs(a_file), lambda: save_run(make_doc(), a_file)):
        with pytest.raises(UsageError, match="exists and is not a directory"):
            call()


def test_uncreatable_directory_is_a_usage_error(tmp_path: Path) -> None:
    a_file = tmp_path / "file"
    a_file.write_text("x")
    with pytest.raises(UsageError, match="cannot create the history directory"):
        save_run(make_doc(), a_file / "history")


def test_failed_write_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*args: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr("hastily_bench.io.os.replace", boom)
    with pytest.raises(UsageError, match="disk full"):
        save_run(make_doc(), tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_cli_run_save_then_compare_with_latest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HASTILY_DISABLE_PLUGIN_AUTOLOAD", "1")
    hist = tmp_path / "hist"
    args = ["run", "bert-base", "-a", "a40-tensorrt", "-l", "128", "--numerics", "off"]
    for i in (1, 2):
        with pytest.raises(SystemExit) as info:
            main([*args, "-o", str(tmp_path / f"out{i}.json"), "--save", str(hist)])
        assert info.value.code == 0
        assert f"saved {hist}" in capsys.readouterr().err.replace("\n", "")
    first, second = list_runs(hist)
    assert (first.name[:5], second.name[:5]) == ("0001_", "0002_")
    # the saved document is the -o document
    saved = json.loads(second.read_text())
    assert saved["results"] == json.loads((tmp_path / "out2.json").read_text())["results"]
    with pytest.raises(SystemExit) as info:
        main(["compare", str(first), str(latest_run(hist))])
    assert info.value.code == 0


def test_cli_save_to_a_file_is_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HASTILY_DISABLE_PLUGIN_AUTOLOAD", "1")
    a_file = tmp_path / "f"
    a_file.write_text("")
    with pytest.raises(SystemExit) as info:
        main(
            [
                "run",
                "bert-base",
                "-a",
                "a40-tensorrt",
                "-l",
                "128",
                "--numerics",
                "off",
                "--format",
                "json",
                "--save",
                str(a_file),
            ]
        )
    assert info.value.code == 2
    captured = capsys.readouterr()
    assert "exists and is not a directory" in captured.err and captured.out == ""
