"""Issue 12: the numbered hostile cases, each reproduced, each a one-line error or correct output.

Test names carry the case number (``test_01_...`` is case 1). Cases that need a real process
(standard output on /dev/full or closed, a pipe closed early, a file-size limit, thread
counts, a non-root user) run the installed ``hastily-bench`` script (``HB``, never the source
tree: CI installs the package and runs pytest from the checkout); the rest run in-process.
"""

from __future__ import annotations

import json
import os
import re
import resource
import shutil
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from hastily_bench import io as hio
from hastily_bench.api import RunRequest, run
from hastily_bench.errors import UsageError
from hastily_bench.host import DISABLE_AUTOLOAD_ENV, PluginHost
from hastily_bench.workload import Workload, workload_from_hf_config, workload_from_toml

FAST = ("-a", "hastily", "-l", "128", "--numerics", "off")
BERT = ("schema_version = 1\nname = \"{name}\"\nlayers = {layers}\nhidden = {hidden}\n"
        "heads = {heads}\nffn = {ffn}\n")
ENV = {**os.environ, DISABLE_AUTOLOAD_ENV: "1", "PYTHONWARNINGS": "ignore"}
_SCRIPT = Path(sys.executable).with_name("hastily-bench")
#: The command as installed next to this interpreter. ``python -m`` from the repository root
#: would import the source tree, which lacks the built kernels and the mapped sub-packages.
HB = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "hastily_bench"]


def one_line_error(r, *needles: str) -> None:  # type: ignore[no-untyped-def]
    assert r.code == 2, r
    assert r.err.count("\n") == 1 and "Traceback" not in r.err, r
    for n in needles:
        assert n in r.err, (n, r)


def hb(*args: str, env: dict[str, str] | None = None, **kw: object) -> subprocess.CompletedProcess[str]:
    """The real command in a subprocess."""
    return subprocess.run([*HB, *args], env=env or ENV,
                          capture_output=kw.pop("capture_output", True), text=True, timeout=120,
                          **kw)  # type: ignore[call-overload]


@pytest.fixture
def tiny_results(tmp_path: Path) -> Path:
    doc = run(RunRequest(workloads=["bert-tiny"], accelerators=["hastily", "a40-tensorrt"],
                         seq_lens=[128], numerics="off"))
    p = tmp_path / "base.json"
    p.write_text(doc.to_json())
    return p


# -- 1: binary input ---------------------------------------------------------------------

def test_01_binary_toml_is_one_line(cli, tmp_path: Path) -> None:
    p = tmp_path / "bin.toml"
    p.write_bytes(b"\xff\xfe\x00name = 1\n")
    one_line_error(cli("run", str(p), *FAST), "not a UTF-8 text file")
    one_line_error(cli("op", "attention", "-w", str(p)), "not a UTF-8 text file")
    one_line_error(cli("reproduce", "--claims", str(p)), "not a UTF-8 text file")


# -- 2: integers of thousands of digits ------------------------------------------------------

def test_02_huge_integers_are_one_line(cli, tmp_path: Path, tiny_results: Path) -> None:
    digits = "9" * 5000
    toml = tmp_path / "w.toml"
    toml.write_text(BERT.format(name="w", layers=digits, hidden=64, heads=2, ffn=256))
    one_line_error(cli("run", str(toml), *FAST), "more than 100 digits")
    hf = tmp_path / "config.json"
    hf.write_text('{"model_type": "bert", "num_hidden_layers": ' + digits + "}")
    one_line_error(cli("run", str(hf), *FAST), "5000 digits")
    doc = tiny_results.read_text().replace('"batch": 1', f'"batch": {digits}', 1)
    bad = tmp_path / "head.json"
    bad.write_text(doc)
    one_line_error(cli("compare", str(tiny_results), str(bad)), "5000 digits")
    one_line_error(cli("plot", str(bad), "-o", str(tmp_path / "figs")), "5000 digits")


# -- 3: deep nesting -------------------------------------------------------------------------

def test_03_deep_nesting_is_one_line(cli, tmp_path: Path) -> None:
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000)
    one_line_error(cli("run", str(deep), *FAST), "nested")
    one_line_error(cli("compare", str(deep), str(deep)), "nested")
    ok_syntax = tmp_path / "deep2.json"
    ok_syntax.write_text("[" * 40 + "]" * 40)  # valid JSON, too deep for the limit
    one_line_error(cli("compare", str(ok_syntax), str(ok_syntax)), "nested more than 32")
    toml = tmp_path / "deep.toml"
    toml.write_text("a = " + "[" * 5000 + "]" * 5000 + "\n")
    one_line_error(cli("run", str(toml), *FAST), "nested")


# -- 4: unwritable output directory, checked before the work --------------------------------

def _without_file_override() -> list[str] | None:
    """A command prefix under which a mode-0555 directory is really unwritable.

    A normal user needs none. Root bypasses permission bits through the DAC-override
    capabilities, so the process keeps uid 0 (it can still read root's interpreter and
    site-packages, wherever pip put them) but loses those two capabilities.
    """
    if os.geteuid() != 0:
        return []
    if shutil.which("setpriv") is None:
        return None
    caps = "-dac_override,-dac_read_search"
    return ["setpriv", f"--bounding-set={caps}", f"--inh-caps={caps}"]


def test_04_unwritable_directory_is_refused_before_work(tmp_path: Path) -> None:
    prefix = _without_file_override()
    if prefix is None:
        pytest.skip("running as root without setpriv: no way to drop the DAC-override capability")
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    results = tmp_path / "r.json"
    results.write_text(run(RunRequest(workloads=["bert-tiny"], accelerators=["hastily"],
                                      seq_lens=[128], numerics="off")).to_json())
    results.chmod(0o644)
    commands = [
        ["run", "bert-tiny", *FAST, "-o", f"{ro}/out.json"],
        ["op", "softmax", "-a", "hastily", "-o", f"{ro}/out.json"],
        ["compare", str(results), str(results), "-o", f"{ro}/out.md"],
        ["reproduce", "--results", f"{ro}/out.json"],
        ["reproduce", "--plots", f"{ro}/figs"],
        ["plot", str(results), "-o", f"{ro}/figs"],
        ["bench", "-l", "16", "--heads", "1", "--head-dim", "8", "-o", f"{ro}/b.json"],
    ]
    # one process without write permission runs every command in turn (one interpreter start)
    script = (
        "import json, sys\n"
        "from hastily_bench.cli import main\n"
        "for args in json.loads(sys.argv[1]):\n"
        "    try:\n"
        "        main(args)\n"
        "    except SystemExit as e:\n"
        "        print(json.dumps([args[0], e.code]), flush=True)\n"
    )
    p = subprocess.run([*prefix, sys.executable, "-c", script, json.dumps(commands)], env=ENV,
                       capture_output=True, text=True, timeout=300, cwd=tmp_path)
    codes = [json.loads(line) for line in p.stdout.splitlines() if line.startswith("[")]
    assert [c for _, c in codes] == [2] * len(commands), (codes, p.stderr)
    lines = p.stderr.splitlines()
    assert len(lines) == len(commands) and all("is not writable" in ln for ln in lines), lines
    assert list(ro.iterdir()) == []


def test_04_missing_or_file_parent_is_refused_before_work(cli, tmp_path: Path) -> None:
    afile = tmp_path / "file"
    afile.write_text("x")
    one_line_error(cli("run", "bert-tiny", *FAST, "-o", str(afile / "out.json")), "is not a directory")
    one_line_error(cli("op", "softmax", "-o", str(tmp_path / "no" / "o.json")), "does not exist")
    one_line_error(cli("plot", str(afile), "-o", str(afile / "figs")), "not a directory")
    one_line_error(cli("reproduce", "--plots", str(afile)), "exists and is not a directory")


# -- 5: write failures -----------------------------------------------------------------------

def test_05_file_size_limit_is_one_line(tmp_path: Path) -> None:
    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (1024, 1024))

    p = hb("run", "bert-tiny", *FAST, "-f", "json", "-o", str(tmp_path / "big.json"),
           preexec_fn=limit)
    assert p.returncode == 2 and "file too large" in p.stderr and p.stderr.count("\n") == 1
    assert list(tmp_path.iterdir()) == []  # no temporary file left


def test_05_long_file_name_is_refused_first(cli, tmp_path: Path) -> None:
    one_line_error(cli("run", "bert-tiny", *FAST, "-o", str(tmp_path / ("a" * 300 + ".json"))),
                   "file name too long")


def test_05_stdout_failures_are_one_line(tmp_path: Path) -> None:
    args = ("run", "bert-tiny", *FAST, "-f", "json")
    with open("/dev/full", "w") as full:
        p = hb(*args, capture_output=False, stdout=full, stderr=subprocess.PIPE)
    assert p.returncode == 2 and "no space left" in p.stderr and p.stderr.count("\n") == 1
    closed = subprocess.run(["bash", "-c", f"{' '.join(HB)} {' '.join(args)} >&-"],
                            env=ENV, capture_output=True, text=True, timeout=120)
    assert closed.returncode == 2 and "standard output is closed" in closed.stderr
    ascii_ = hb("op", "attention", "-a", "hastily", env={**ENV, "PYTHONIOENCODING": "ascii"})
    assert ascii_.returncode == 2 and "encoding (ascii) cannot represent" in ascii_.stderr
    assert ascii_.stderr.count("\n") == 1


def test_05_closed_pipe_exits_141_quietly() -> None:
    proc = subprocess.Popen([*HB, "run", "bert-tiny", "bert-base",
                             "bert-large", "-a", "hastily", "-a", "a40-tensorrt", "--numerics", "off",
                             "-f", "json", "-b", "1", "-b", "2", "-b", "4"],  # > a pipe buffer
                            env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.readline()
    proc.stdout.close()  # like `| head -1`
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == hio.EXIT_BROKEN_PIPE == 141
    assert stderr == b""


# -- 6: devices, FIFOs and links are written through, never replaced -------------------------

def test_06_symlink_is_kept_and_its_target_written(cli, tmp_path: Path) -> None:
    target = tmp_path / "target.json"
    target.write_text("old")
    link = tmp_path / "link.json"
    link.symlink_to(target)
    assert cli("run", "bert-tiny", *FAST, "-o", str(link)).code == 0
    assert link.is_symlink() and json.loads(target.read_text())["results"]


def test_06_character_device_is_written_through(cli, tmp_path: Path) -> None:
    dev = tmp_path / "null"
    try:
        os.mknod(dev, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    except PermissionError:
        pytest.skip("mknod needs root")
    assert cli("run", "bert-tiny", *FAST, "-o", str(dev)).code == 0
    assert stat.S_ISCHR(os.stat(dev).st_mode)


def test_06_fifo_is_written_through(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # a reader first: the writer never blocks
    try:
        p = hb("run", "bert-tiny", *FAST, "-f", "json", "-o", str(fifo))
        data = os.read(reader, 1 << 16)  # one small document fits the pipe buffer
    finally:
        os.close(reader)
    assert p.returncode == 0, p.stderr
    assert json.loads(data)["results"]
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)


# -- 7: an output that is also an input --------------------------------------------------------

def test_07_output_that_is_an_input_is_refused(cli, tmp_path: Path, tiny_results: Path) -> None:
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps({"model_type": "bert", "num_hidden_layers": 2, "hidden_size": 64,
                               "num_attention_heads": 2}))
    before = cfg.read_text()
    one_line_error(cli("run", str(cfg), *FAST, "-f", "json", "-o", str(cfg)), "is also an input")
    assert cfg.read_text() == before
    base = tiny_results.read_text()
    one_line_error(cli("compare", str(tiny_results), str(tiny_results), "-o", str(tiny_results)),
                   "is also an input")
    link = tmp_path / "alias.json"
    link.symlink_to(tiny_results)
    one_line_error(cli("compare", str(tiny_results), str(tiny_results), "-o", str(link)),
                   "is also an input")
    assert tiny_results.read_text() == base


# -- 8: every destination is checked before any is written --------------------------------------

def test_08_failed_command_leaves_no_output(cli, tmp_path: Path) -> None:
    afile = tmp_path / "afile"
    afile.write_text("x")
    out = tmp_path / "out.json"
    one_line_error(cli("run", "bert-tiny", *FAST, "-o", str(out), "--save", str(afile / "hist")),
                   "--save")
    assert not out.exists()
    one_line_error(cli("reproduce", "--results", str(out), "--plots", str(afile)), "--plots")
    assert not out.exists()
    one_line_error(cli("reproduce", "--results", str(out), "--plots", str(out)),
                   "is also the output directory")
    assert not out.exists()


# -- 11, 12: hand-edited results files -----------------------------------------------------------

@pytest.mark.parametrize(("field", "value"), [("error", 5), ("params", [1, 2]), ("params", "x"),
                                              ("extra", []), ("notes", "x"), ("breakdown", {})])
def test_11_hand_edited_results_are_refused(cli, tmp_path: Path, tiny_results: Path,
                                            field: str, value: object) -> None:
    doc = json.loads(tiny_results.read_text())
    doc["results"][0][field] = value
    if field == "error":
        doc["results"][0]["status"] = "error"
    head = tmp_path / "head.json"
    head.write_text(json.dumps(doc))
    one_line_error(cli("compare", str(tiny_results), str(head)), "not a valid results file",
                   f"results[0].{field}")


def test_12_other_shape_or_op_count_is_not_comparable(cli, tmp_path: Path) -> None:
    base = run(RunRequest(workloads=["bert-base"], accelerators=["hastily"], seq_lens=[128],
                          numerics="off"))
    (tmp_path / "base.json").write_text(base.to_json())
    impostor = tmp_path / "bert-base.toml"  # named bert-base, BERT-Large's shape
    impostor.write_text(BERT.format(name="bert-base", layers=24, hidden=1024, heads=16, ffn=4096))
    head = run(RunRequest(workloads=[str(impostor)], accelerators=["hastily"], seq_lens=[128],
                          numerics="off"))
    (tmp_path / "head.json").write_text(head.to_json())
    r = cli("compare", str(tmp_path / "base.json"), str(tmp_path / "head.json"))
    assert r.code == 2 and "measured different work (workload shape differs" in r.err, r
    r = cli("compare", str(tmp_path / "base.json"), str(tmp_path / "head.json"), "-f", "json")
    tripled = json.loads(base.to_json())
    tripled["results"][0]["ops"] *= 3
    (tmp_path / "tripled.json").write_text(json.dumps(tripled))
    from hastily_bench.compare import compare_documents
    from hastily_bench.results import load_document

    doc = load_document(tmp_path / "base.json")
    with pytest.raises(UsageError, match="measured different work"):
        compare_documents(doc, load_document(tmp_path / "head.json"), {})
    both = run(RunRequest(workloads=["bert-base", "bert-tiny"], accelerators=["hastily"],
                          seq_lens=[128], numerics="off"))
    edited = json.loads(both.to_json())
    edited["results"][0]["ops"] *= 3
    (tmp_path / "b2.json").write_text(both.to_json())
    (tmp_path / "h2.json").write_text(json.dumps(edited))
    report = compare_documents(load_document(tmp_path / "b2.json"),
                               load_document(tmp_path / "h2.json"), {})
    reasons = [p.reason for p in report.points if not p.comparable]
    assert len(reasons) == 1 and "op count differs" in reasons[0]
    assert base.results[0].shape_hash != head.results[0].shape_hash


# -- 13, 14, 15: plot, calibrate, claims --------------------------------------------------------

def test_13_plot_zero_latency_is_one_line(cli, tmp_path: Path, tiny_results: Path) -> None:
    doc = json.loads(tiny_results.read_text())
    doc["results"][0]["latency_s"] = 0
    bad = tmp_path / "zero.json"
    bad.write_text(json.dumps(doc))
    one_line_error(cli("plot", str(bad), "-o", str(tmp_path / "figs")), "latency_s")
    assert not (tmp_path / "figs").exists()


def test_14_calibrate_stray_quote_is_one_line(cli, tmp_path: Path) -> None:
    p = tmp_path / "m.csv"
    p.write_text('accelerator,workload,seq_len,batch,latency_ms\n"a40-tensorrt,bert-base,128,1,1.0\n'
                 "a40-tensorrt,bert-base,256,1,2.0\n")
    one_line_error(cli("calibrate", str(p)), str(p))


@pytest.mark.parametrize(("key", "value"), [("accelerator", "5"), ("workload", '["a"]'),
                                            ("metric", "1.5"), ("note", "{x = 1}")])
def test_15_claim_with_wrong_types_is_one_line(cli, tmp_path: Path, key: str, value: str) -> None:
    fields = {"id": '"x"', "claim": '"c"', "source": '"s"', "kind": '"value"', "metric": '"tops"',
              "accelerator": '"hastily"', "workload": '"bert-tiny"', "seq_len": "128",
              "published": "1.0", "tolerance": "0.1"}
    fields[key] = value
    p = tmp_path / "claims.toml"
    p.write_text('schema_version = 1\n[sweep]\nworkloads = ["bert-tiny"]\nseq_lens = [128]\n'
                 "batches = [1]\n[[claims]]\n" + "".join(f"{k} = {v}\n" for k, v in fields.items()))
    one_line_error(cli("reproduce", "--claims", str(p)), f"{key} must be a string")


# -- 16: bench limits -----------------------------------------------------------------------------

@pytest.mark.parametrize("args", [("--threads", "65536"), ("--threads", "32768"),
                                  ("--head-dim", "100000000"), ("--heads", "100000"),
                                  ("--heads", "1024", "-l", "65536")])
def test_16_bench_limits_are_one_line(cli, args: tuple[str, ...]) -> None:
    one_line_error(cli("bench", *args), "bench" if "65536" in args and "-l" in args else "between")


# -- 17: sampled numerics are bounded ---------------------------------------------------------

def test_17_wide_head_is_sampled_within_bounds(cli, tmp_path: Path) -> None:
    wide = tmp_path / "wide.toml"
    wide.write_text(BERT.format(name="wide", layers=1, hidden=1 << 20, heads=1, ffn=1 << 20))
    r = cli("run", str(wide), "-a", "a40-hf-bnb", "-l", "4096", "-f", "json")
    assert r.code == 0, r  # every model now refuses the shape (unsupported): no numerics run
    from hastily_bench.numerics import attention_rel_error

    # what `run` measures for an ok point of this shape: bounded (it asked for 32 GiB before)
    err = attention_rel_error(matmul="fp16", softmax="exact", heads=1, seq_len=4096,
                              head_dim=1 << 20, mode="sample")
    assert 0 < err < 0.01
    one_line_error(cli("run", str(wide), "-a", "a40-hf-bnb", "-l", "4096", "--numerics", "full"),
                   "--numerics full", "GiB")


# -- 18: results do not depend on the thread count ----------------------------------------------

def test_18_same_bytes_at_any_thread_count() -> None:
    outs = []
    for threads in ("1", "2"):
        env = {**ENV, "OMP_NUM_THREADS": threads, "OPENBLAS_NUM_THREADS": threads,
               "MKL_NUM_THREADS": threads}
        p = hb("run", "bert-base", "-a", "a40-hf-bnb", "-a", "hastily", "-l", "512", "-f", "json",
               env=env)
        assert p.returncode == 0, p.stderr
        outs.append(json.dumps(json.loads(p.stdout)["results"]))
    assert outs[0] == outs[1]


def test_18_fixed_order_matmul_is_blocking_independent() -> None:
    import numpy as np

    from hastily_bench import numerics

    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((3, 37, 19)), rng.standard_normal((3, 19, 301))
    want = np.zeros((3, 37, 301))
    for i in range(19):
        want = want + a[..., :, i, None] * b[..., i, None, :]
    assert np.array_equal(numerics.fixed_order_matmul(a, b), want)
    np.testing.assert_allclose(numerics.fixed_order_matmul(a, b), a @ b, rtol=1e-12, atol=1e-12)


# -- 19: signals during a write ---------------------------------------------------------------------

@pytest.mark.parametrize(("sig", "exc"), [(signal.SIGTERM, SystemExit), (signal.SIGINT, KeyboardInterrupt)])
def test_19_signal_during_write_leaves_no_temporary_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sig: int, exc: type[BaseException]
) -> None:
    out = tmp_path / "out.json"
    out.write_text("old")
    real_fsync = os.fsync
    calls: list[int] = []

    def fsync_then_signal(fd: int) -> None:
        real_fsync(fd)
        calls.append(fd)
        os.kill(os.getpid(), sig)  # a real signal, delivered while the temporary file exists

    monkeypatch.setattr(hio.os, "fsync", fsync_then_signal)
    # Python's own Ctrl-C handler, whatever this process inherited (a shell's background
    # job starts with SIGINT ignored, and Python then leaves it ignored)
    old_int = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(exc) as info:
            hio.write_atomic(out, "new")
    finally:
        signal.signal(signal.SIGINT, old_int)
    if exc is SystemExit:
        assert info.value.code == 128 + signal.SIGTERM  # type: ignore[attr-defined]
    assert calls and [p.name for p in tmp_path.iterdir()] == ["out.json"]
    assert out.read_text() == "old"
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


def test_19_completed_write_is_fsynced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[int] = []
    real = os.fsync
    monkeypatch.setattr(hio.os, "fsync", lambda fd: (synced.append(fd), real(fd))[1])
    hio.write_atomic(tmp_path / "o.txt", "x")
    assert len(synced) >= 1 and (tmp_path / "o.txt").read_text() == "x"


# -- 20: --set for an accelerator not in the command --------------------------------------------

def test_20_set_for_other_accelerator_is_refused(cli) -> None:
    one_line_error(cli("op", "attention", "-a", "hastily", "--set", "a40-tensorrt.tdp_w=100"),
                   "not part of this run")
    one_line_error(cli("calibrate", "--set", "hastily.clock_hz=1e9"), "not part of this run")


# -- 21: the smaller ones ---------------------------------------------------------------------------

def test_21_dash_is_stdout(cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    r = cli("run", "bert-tiny", *FAST, "-f", "json", "-o", "-")
    assert r.code == 0 and json.loads(r.out)["results"] and not (tmp_path / "-").exists()


def test_21_suffix_is_case_insensitive(cli, tmp_path: Path) -> None:
    for name in ("out.JSON", "out.Csv", "out.MD"):
        assert cli("run", "bert-tiny", *FAST, "-o", str(tmp_path / name)).code == 0
    json.loads((tmp_path / "out.JSON").read_text())
    assert (tmp_path / "out.Csv").read_text().startswith("workload,")
    assert (tmp_path / "out.MD").read_text().lstrip().startswith(("#", "|"))


@pytest.mark.parametrize(("value", "autoload"), [("0", True), ("false", True), ("", True),
                                                 ("no", True), ("1", False), ("TRUE", False),
                                                 ("yes", False), ("on", False)])
def test_21_autoload_switch_takes_only_true_values(
    monkeypatch: pytest.MonkeyPatch, value: str, autoload: bool
) -> None:
    from hastily_bench import host as host_module

    seen: list[str] = []
    real = host_module.metadata.entry_points

    def spy(**kw: object) -> object:
        seen.append("autoload" if sys._getframe(1).f_code.co_name == "_load_entry_points"
                    else "listing")
        return real(**kw)  # type: ignore[arg-type]

    monkeypatch.setattr(host_module.metadata, "entry_points", spy)
    monkeypatch.setenv(DISABLE_AUTOLOAD_ENV, value)
    PluginHost()
    assert ("autoload" in seen) is autoload


@pytest.mark.parametrize("name", ["a|b", "a\nb", "a\x1bb", "a`b", " a", "", "x" * 101])
def test_21_workload_names_that_break_tables_are_refused(tmp_path: Path, name: str) -> None:
    p = tmp_path / "w.toml"
    p.write_text(BERT.format(name=json.dumps(name)[1:-1], layers=1, hidden=64, heads=2, ffn=256))
    with pytest.raises(UsageError) as info:
        workload_from_toml(p)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("cfg", [
    {"is_decoder": True, "model_type": "bert"},
    {"architectures": ["LlamaForCausalLM"]},
    {"model_type": "llama"},
    {"model_type": "gpt2"},
    {"is_encoder_decoder": True},
])
def test_21_decoder_configs_are_refused(cli, tmp_path: Path, cfg: dict[str, object]) -> None:
    p = tmp_path / "config.json"
    p.write_text(json.dumps({"num_hidden_layers": 2, "hidden_size": 64, "num_attention_heads": 2,
                             **cfg}))
    one_line_error(cli("run", str(p), *FAST), "decoder model")


def test_21_albert_weight_sharing(tmp_path: Path) -> None:
    cfg = {"model_type": "albert", "num_hidden_layers": 12, "hidden_size": 768,
           "num_attention_heads": 12, "intermediate_size": 3072, "num_hidden_groups": 1,
           "inner_group_num": 1}
    p = tmp_path / "config.json"
    p.write_text(json.dumps(cfg))
    w = workload_from_hf_config(p)
    assert (w.layers, w.weight_layers, w.distinct_weight_layers) == (12, 1, 1)
    assert w.to_dict()["weight_layers"] == 1
    p.write_text(json.dumps({**cfg, "num_hidden_groups": 13}))
    with pytest.raises(UsageError, match="num_hidden_groups"):
        workload_from_hf_config(p)
    bert = workload_from_hf_config(_bert_config(tmp_path))
    assert bert.weight_layers == bert.distinct_weight_layers == bert.layers
    assert "weight_layers" not in bert.to_dict()


def _bert_config(tmp_path: Path) -> Path:
    p = tmp_path / "bert" / "config.json"
    p.parent.mkdir()
    p.write_text(json.dumps({"model_type": "bert", "num_hidden_layers": 12, "hidden_size": 768,
                             "num_attention_heads": 12}))
    return p


def test_21_weight_layers_in_toml(tmp_path: Path) -> None:
    p = tmp_path / "w.toml"
    p.write_text(BERT.format(name="w", layers=4, hidden=64, heads=2, ffn=256) + "weight_layers = 2\n")
    assert workload_from_toml(p).distinct_weight_layers == 2
    p.write_text(BERT.format(name="w", layers=4, hidden=64, heads=2, ffn=256) + "weight_layers = 5\n")
    with pytest.raises(UsageError, match="weight_layers must be between 1 and layers"):
        workload_from_toml(p)
    from dataclasses import replace

    one = replace(Workload("w", 4, 64, 2, 256, weight_layers=2), layers=1)
    assert one.distinct_weight_layers == 1


def test_builtin_workloads_unchanged_by_weight_layers() -> None:
    for w, _ in PluginHost(autoload=False).workloads():
        assert w.weight_layers == w.distinct_weight_layers == w.layers
        assert re.fullmatch(r"[a-z0-9-]+", w.name)


def test_names_that_would_inject_lines_or_cells_are_refused_on_read(cli, tmp_path: Path,
                                                                     tiny_results: Path) -> None:
    """A hand-edited results file whose names hold a newline, '|' or '`' would inject
    Markdown lines or table cells in `compare`'s report: refused in one line."""
    doc = json.loads(tiny_results.read_text())
    for bad in ("hastily\n- **all clear**", "a|b", "a`b", ""):
        doc["results"][0]["accelerator"] = bad
        p = tmp_path / "bad.json"
        p.write_text(json.dumps(doc))
        one_line_error(cli("compare", str(tiny_results), str(p)), "accelerator")
    assert cli("compare", str(tiny_results), str(tiny_results)).code == 0
