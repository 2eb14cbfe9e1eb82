"""The example GitHub Actions workflow: its shell steps, run locally, gate on regressions."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

from hastily_bench.history import latest_run, list_runs

REPO = Path(__file__).parents[1]
WORKFLOW = REPO / "docs" / "examples" / "hastily-bench-regression.yml"
SCRIPT = REPO / "docs" / "examples" / "regression.sh"

pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")


@dataclass(frozen=True)
class Step:
    """A ``run:`` step of the workflow: its job, name and shell script."""

    job: str
    name: str
    script: str


def run_steps(text: str) -> list[Step]:
    """The ``run:`` steps of a workflow, without a YAML library.

    Understands what the workflow uses: ``jobs:`` with two-space indented job ids,
    steps as ``- name:`` / ``run:`` keys, and ``run: |`` literal blocks (indented
    deeper than the key, dedented as YAML does).
    """
    lines = text.splitlines()
    steps: list[Step] = []
    job = name = ""
    in_jobs = False
    i = 0
    while i < len(lines):
        line = lines[i]
        if re.match(r"^jobs:\s*$", line):
            in_jobs = True
        elif in_jobs and (m := re.match(r"^  ([\w-]+):\s*$", line)):
            job, name = m[1], ""
        elif m := re.match(r"^\s*- name:\s*(.+?)\s*$", line):
            name = m[1]
        elif re.match(r"^\s*- (?!run:)", line):
            name = ""  # a new step without a name
        if m := re.match(r"^(\s*)(?:- )?run:\s*(.*?)\s*$", line):
            if line.lstrip().startswith("- "):
                name = ""
            indent, value = len(m[1]), m[2]
            if value in ("|", "|-"):
                block: list[str] = []
                i += 1
                while i < len(lines) and (
                    not lines[i].strip() or len(lines[i]) - len(lines[i].lstrip()) > indent
                ):
                    block.append(lines[i])
                    i += 1
                steps.append(Step(job, name, textwrap.dedent("\n".join(block)).strip() + "\n"))
                continue
            steps.append(Step(job, name, value + "\n"))
        i += 1
    return steps


def test_parser_reads_literal_blocks_and_one_liners() -> None:
    steps = run_steps(
        textwrap.dedent("""\
        on: push
        jobs:
          a:
            steps:
              - name: One
                run: echo one
              - name: Two
                run: |
                  echo two

                  echo three
              - uses: x/y@v1
                run: not a step of its own
          b:
            steps:
              - run: echo four
        """)
    )
    assert steps == [
        Step("a", "One", "echo one\n"),
        Step("a", "Two", "echo two\n\necho three\n"),
        Step("a", "", "not a step of its own\n"),
        Step("b", "", "echo four\n"),
    ]


@pytest.fixture(scope="module")
def steps() -> list[Step]:
    return run_steps(WORKFLOW.read_text(encoding="utf-8"))


def test_workflow_installs_runs_compares_and_benchmarks_kernels(steps: list[Step]) -> None:
    text = WORKFLOW.read_text(encoding="utf-8")
    assert re.search(r"^on:\n  pull_request:", text, re.MULTILINE)
    by_job = {(s.job, s.name): s.script for s in steps}
    assert "python -m pip install .\n" in by_job[("models", "Install hastily-bench")]
    assert by_job[("models", "Run the benchmark set")].endswith('regression.sh" run\n')
    assert by_job[("models", "Compare with the baseline")].endswith('regression.sh" compare\n')
    kernels = by_job[("kernels", "Kernel benchmarks")]
    assert 'pytest tests/benchmarks -o addopts="" --benchmark-only --benchmark-autosave' in kernels
    assert "--benchmark-compare --benchmark-compare-fail=median:10%" in kernels
    # every shell step is valid bash; GitHub expressions never reach the shell
    for s in steps:
        assert "${{" not in s.script, s.name
        subprocess.run(["bash", "-n"], input=s.script, text=True, check=True)
    # the script's benchmark set is what docs/ci.md documents
    assert (
        "bench=(bert-base -a a40-tensorrt -a a100-40gb-tensorrt -l 512 --numerics off)"
        in SCRIPT.read_text()
    )
    assert os.access(SCRIPT, os.X_OK)


class Runner:
    """Runs the workflow's regression steps the way GitHub does, in a scratch folder."""

    def __init__(self, steps: list[Step], tmp: Path) -> None:
        self.scripts = {
            s.name: s.script for s in steps if s.job == "models" and "regression.sh" in s.script
        }
        self.tmp = tmp
        self.summary = tmp / "summary.md"
        self.out = tmp / "hastily-out"
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("HASTILY_", "GITHUB_"))},
            # the workflow's env, with paths in the scratch folder
            "HASTILY_OUT": str(self.out),
            "HASTILY_BASELINE": str(tmp / "benchmarks" / "hastily-baseline.json"),
            "HASTILY_HISTORY": str(tmp / ".hastily-history"),
            "HASTILY_THRESHOLDS": "tops=2",
            # the installed command, run by this interpreter
            "HASTILY_BENCH": f"{sys.executable} -m hastily_bench.cli",
            "HASTILY_PYTHON": sys.executable,
            "GITHUB_WORKSPACE": str(REPO),
            "GITHUB_STEP_SUMMARY": str(self.summary),
        }

    def step(self, name: str, **env: str) -> subprocess.CompletedProcess[str]:
        self.summary.write_text("")
        # cwd outside the source tree: "python -m" must import the installed package
        return subprocess.run(
            ["bash", "-e", "-c", self.scripts[name]],
            cwd=self.tmp,
            text=True,
            capture_output=True,
            env={**self.env, **env},
            timeout=120,
            check=False,
        )

    def run(self, **env: str) -> subprocess.CompletedProcess[str]:
        proc = self.step("Run the benchmark set", **env)
        assert proc.returncode == 0, proc.stderr
        return proc

    def compare(self) -> tuple[int, str]:
        proc = self.step("Compare with the baseline")
        return proc.returncode, self.summary.read_text()

    def edit_head(self, accelerator: str, factor: float) -> None:
        path = self.out / "head.json"
        doc = json.loads(path.read_text())
        for r in doc["results"]:
            if r["accelerator"] == accelerator:
                r["tops"] *= factor
        path.write_text(json.dumps(doc))


@pytest.fixture()
def runner(steps: list[Step], tmp_path: Path) -> Runner:
    r = Runner(steps, tmp_path)
    assert set(r.scripts) == {"Run the benchmark set", "Compare with the baseline"}
    return r


def test_history_flow_first_run_then_gate(runner: Runner) -> None:
    history = Path(runner.env["HASTILY_HISTORY"])
    # first run on main: no baseline, saved into the history, the gate passes
    proc = runner.run(HASTILY_SAVE="true")
    assert "baseline: none yet" in proc.stdout
    assert len(list_runs(history)) == 1
    code, summary = runner.compare()
    assert code == 0 and "no baseline yet" in summary
    # a pull request: baseline = the latest saved run, nothing saved, no change
    proc = runner.run(HASTILY_SAVE="false")
    assert f"baseline: {latest_run(history)} (latest saved run)" in proc.stdout
    assert len(list_runs(history)) == 1
    code, summary = runner.compare()
    assert code == 0
    assert summary.startswith(
        "**hastily-bench compare: no regression** (0 regressed, 0 improved, 2 unchanged"
    )
    # the same pull request with a 10 % throughput loss on one accelerator
    runner.edit_head("a40-tensorrt", 0.9)
    code, summary = runner.compare()
    assert code == 1
    assert summary.startswith(
        "**hastily-bench compare: regression** (1 regressed, 0 improved, 1 unchanged"
    )
    assert "| `bert-base` | `a40-tensorrt` | l=512 b=1 | tops |" in summary
    assert "| -10.00% | 2% | **regressed** |" in summary
    # 1.5 % is within the 2 % threshold
    runner.run()
    runner.edit_head("a100-40gb-tensorrt", 0.985)
    assert runner.compare()[0] == 0


def test_committed_baseline_wins_and_broken_baseline_is_exit_2(runner: Runner) -> None:
    runner.run()
    committed = Path(runner.env["HASTILY_BASELINE"])
    committed.parent.mkdir()
    doc = json.loads((runner.out / "head.json").read_text())
    for r in doc["results"]:
        r["tops"] *= 1.05  # the baseline was 5 % faster
    committed.write_text(json.dumps(doc))
    proc = runner.run()
    assert f"baseline: {committed} (committed)" in proc.stdout
    code, summary = runner.compare()
    assert code == 1 and "(2 regressed" in summary
    committed.write_text('{"schema_version": 99, "results": []}')
    runner.run()
    proc = runner.step("Compare with the baseline")
    assert proc.returncode == 2
    assert "schema_version 99 is not supported" in proc.stderr
    assert "could not compare the runs** (exit 2)" in runner.summary.read_text()
