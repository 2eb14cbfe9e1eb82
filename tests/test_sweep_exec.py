"""Sweep executors give identical rows; a sweep interrupted by a signal resumes; the CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import pytest

from hastily_bench.sweep import prepare, read_rows, run_sweep
from hastily_bench.sweep.engine import Evaluator

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
GRID = [f"hastily.{LANES}=8:64:x2", f"hastily.{CLOCK}=0.5e9:2e9:4"]


@pytest.fixture(scope="module")
def small(host):  # type: ignore[no-untyped-def]
    return prepare(host, workloads=["bert-tiny", "bert-mini"], accelerators=["hastily", "a40-tensorrt"],
                   seq_lens=[128, 512], grid=GRID)


def test_local_executors_write_identical_rows(small, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    spec, ev = small
    one = run_sweep(spec, ev, output=tmp_path / "j1.jsonl", jobs=1)
    two = run_sweep(spec, ev, output=tmp_path / "j2.jsonl", jobs=2, chunk_size=3)
    assert one.done == two.done == spec.total == 2 * 2 * (16 + 1)
    assert (tmp_path / "j1.jsonl").read_bytes() == (tmp_path / "j2.jsonl").read_bytes()
    assert [p.index for p in one.front] == [p.index for p in two.front]
    assert "2 processes" in two.executor


def test_a_threaded_parent_starts_workers_from_a_fork_server(small, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Forking a process that runs threads can deadlock: with a thread running, the workers
    start from a fork server and write the same rows. (The forked path, taken by the
    single-threaded command, is checked by the CLI tests below.)"""
    import threading

    spec, ev = small
    one = run_sweep(spec, ev, output=tmp_path / "j1.jsonl", jobs=1)
    stop = threading.Event()
    t = threading.Thread(target=stop.wait, daemon=True)  # a thread: forking would be unsafe
    t.start()
    try:
        served = run_sweep(spec, ev, output=tmp_path / "server.jsonl", jobs=2, chunk_size=4)
    finally:
        stop.set()
        t.join()
    assert served.executor == "local, 2 processes (fork server)"
    assert (tmp_path / "server.jsonl").read_bytes() == (tmp_path / "j1.jsonl").read_bytes()
    assert [p.index for p in one.front] == [p.index for p in served.front]


def test_in_process_accelerators_are_refused_where_workers_load_plugins(tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """An accelerator given as PluginHost(extra_plugins=...) exists only in this process:
    with threads running (fork unsafe) its workers would not know it, so the sweep is
    refused before any work, in one line; jobs=1 runs it."""
    import threading
    import types

    from hastily_bench.api import PluginHost, hookimpl
    from hastily_bench.errors import UsageError
    mod = types.ModuleType("my_cim")

    @hookimpl
    def hastily_register_accelerators(register) -> None:  # type: ignore[no-untyped-def]
        base = PluginHost(autoload=False).accelerator("hastily").spec
        register(replace(base, name="my-cim", default=False, ablation=()))

    mod.hastily_register_accelerators = hastily_register_accelerators  # type: ignore[attr-defined]
    host = PluginHost(autoload=False, extra_plugins=[("my_cim", mod)])
    spec, ev = prepare(host, workloads=["bert-tiny"], accelerators=["my-cim"], seq_lens=[128],
                       grid=[f"my-cim.{LANES}=8,16,32"])
    stop = threading.Event()
    t = threading.Thread(target=stop.wait, daemon=True)
    t.start()
    try:
        with pytest.raises(UsageError, match="registered in this process only"):
            run_sweep(spec, ev, output=tmp_path / "s.jsonl", jobs=2, chunk_size=1)
    finally:
        stop.set()
        t.join()
    assert not (tmp_path / "s.jsonl").exists()
    assert run_sweep(spec, ev, output=tmp_path / "s.jsonl", jobs=1).done == 3


def _host_with(name: str, estimate_wrapper):  # type: ignore[no-untyped-def]
    """A host with an in-process copy of the built-in CIM accelerator whose estimate is
    ``estimate_wrapper(the real estimate)``."""
    import types

    from hastily_bench.api import PluginHost, hookimpl

    mod = types.ModuleType(name.replace("-", "_"))

    @hookimpl
    def hastily_register_accelerators(register) -> None:  # type: ignore[no-untyped-def]
        base = PluginHost(autoload=False).accelerator("hastily").spec
        register(replace(base, name=name, default=False, ablation=(),
                         estimate=estimate_wrapper(base.estimate)))

    mod.hastily_register_accelerators = hastily_register_accelerators  # type: ignore[attr-defined]
    return PluginHost(autoload=False, extra_plugins=[(mod.__name__, mod)])


def test_a_second_signal_inside_a_model_is_the_interruption_not_an_error_row(tmp_path: Path) -> None:
    """With -j 1 chunks run in the command's process, so the second Ctrl-C's exception is
    raised inside whatever model runs: it once became that point's error row (and the chunk,
    often the sweep, went on to the end with exit 3)."""
    from hastily_bench.sweep.runner import SweepInterrupted

    armed = [False]

    def wrap(real):  # type: ignore[no-untyped-def]
        def estimate(graph, params):  # type: ignore[no-untyped-def]
            if armed[0] and params.i("vfu_lanes") == 128:  # the fifth point
                armed[0] = False
                raise SweepInterrupted()  # what the runner's handler raises on a second signal
            return real(graph, params)
        return estimate

    host = _host_with("sig-cim", wrap)
    spec, ev = prepare(host, workloads=["bert-tiny"], accelerators=["sig-cim"], seq_lens=[128],
                       grid=["sig-cim.vfu_lanes=8,16,32,64,128,256,512,1024"])
    armed[0] = True
    out = run_sweep(spec, ev, output=tmp_path / "s.jsonl", jobs=1, chunk_size=2)
    assert out.status == "interrupted" and out.done == 4 and out.counts["error"] == 0, out
    assert [r["status"] for r in read_rows(tmp_path / "s.jsonl")] == ["ok"] * 4
    assert run_sweep(spec, ev, output=tmp_path / "s.jsonl", jobs=1, resume=True).done == spec.total
    assert run_sweep(spec, ev, output=tmp_path / "clean.jsonl", jobs=1).done == spec.total
    assert (tmp_path / "s.jsonl").read_bytes() == (tmp_path / "clean.jsonl").read_bytes()


def test_a_plugins_keyboard_interrupt_in_a_worker_is_its_error_row(tmp_path: Path) -> None:
    """A worker ignores Ctrl-C and SIGTERM (the command handles them), so a KeyboardInterrupt
    or Terminated raised there comes from the plugin: that point's error row. It once ended
    the task (a Dask worker printed 256 lines; a local pool's parent took it for a Ctrl-C)."""
    from hastily_bench.api import estimate_point
    from hastily_bench.errors import Terminated
    from hastily_bench.sweep import evaluate_chunk
    from hastily_bench.sweep.engine import adopt

    def wrap(real):  # type: ignore[no-untyped-def]
        def estimate(graph, params):  # type: ignore[no-untyped-def]
            if params.i("vfu_lanes") == 16:
                raise KeyboardInterrupt("from the plugin")
            if params.i("vfu_lanes") == 32:
                raise Terminated(143)
            return real(graph, params)
        return estimate

    host = _host_with("kbd-cim", wrap)
    spec, ev = prepare(host, workloads=["bert-tiny"], accelerators=["kbd-cim"], seq_lens=[128],
                       grid=["kbd-cim.vfu_lanes=8,16,32"])
    adopt(spec, ev)

    def statuses(data: bytes) -> list[str]:
        rows = [json.loads(line) for line in data.splitlines()]
        assert "raised KeyboardInterrupt: from the plugin" in rows[1]["error"]
        assert "raised Terminated" in rows[2]["error"]
        return [r["status"] for r in rows]

    # a local worker: its main thread ignores SIGINT
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        assert statuses(evaluate_chunk(spec, 0, 3).data) == ["ok", "error", "error"]
    finally:
        signal.signal(signal.SIGINT, previous)
    # a Dask worker: a task thread, where no Ctrl-C arrives
    import concurrent.futures as cf

    with cf.ThreadPoolExecutor(1) as pool:
        assert statuses(pool.submit(evaluate_chunk, spec, 0, 3).result().data) == ["ok", "error", "error"]
    # in a main thread that takes Ctrl-C (the command, a library user's loop) it is the user's
    with pytest.raises(KeyboardInterrupt):
        evaluate_chunk(spec, 0, 3)
    reg, base, per_axis = ev.accels[0]
    with pytest.raises(KeyboardInterrupt):
        estimate_point(reg, base.replacing([per_axis[0][1]]), ev.graph(0, 0, 0))


_WORKER_RAISES = """
import sys
from pathlib import Path
from hastily_bench.api import PluginHost
from hastily_bench.errors import HastilyError
from hastily_bench.sweep import prepare, run_sweep
from hastily_bench.sweep import engine

real = engine.Evaluator.run_chunk
def run_chunk(self, start, stop):  # (forked workers inherit it)
    if start == 2:
        raise KeyboardInterrupt("raised by the worker's code")
    return real(self, start, stop)
engine.Evaluator.run_chunk = run_chunk
spec, ev = prepare(PluginHost(autoload=False), workloads=["bert-tiny"], accelerators=["hastily"],
                   seq_lens=[128], grid=["hastily.vfu_lanes=8,16,32,64"])
try:
    run_sweep(spec, ev, output=Path(sys.argv[1]), jobs=2, chunk_size=1)
except HastilyError as exc:
    print(exc)
"""


@pytest.mark.skipif(sys.platform != "linux", reason="forked workers inherit the patch")
def test_a_workers_own_keyboard_interrupt_is_a_failure_not_a_ctrl_c(tmp_path: Path) -> None:
    """A KeyboardInterrupt a worker raises outside a model (building a graph, say) came back
    as the chunk's exception and was taken for the user's Ctrl-C (exit 130, 'interrupted')."""
    r = subprocess.run([sys.executable, "-c", _WORKER_RAISES, str(tmp_path / "s.jsonl")],
                       capture_output=True, text=True, timeout=120, cwd=tempfile.gettempdir())
    assert r.returncode == 0, r.stderr
    assert "the sweep stopped: WorkerLost: a worker raised KeyboardInterrupt" in r.stdout, r.stdout
    assert json.loads((tmp_path / "s.summary.json").read_text())["status"] == "interrupted"


_SLOW_SWEEP = """
import os, signal, sys, time, types
from dataclasses import replace
from pathlib import Path
from hastily_bench.api import PluginHost, hookimpl
from hastily_bench.sweep import prepare, run_sweep

mod = types.ModuleType("slow_cim")

@hookimpl
def hastily_register_accelerators(register):
    base = PluginHost(autoload=False).accelerator("hastily").spec
    real = base.estimate
    def estimate(graph, params):
        if params.i("vfu_lanes") >= 32:
            time.sleep(120)  # a slow or hung model
        return real(graph, params)
    register(replace(base, name="slow-cim", default=False, ablation=(), estimate=estimate))

mod.hastily_register_accelerators = hastily_register_accelerators
host = PluginHost(autoload=False, extra_plugins=[("slow_cim", mod)])
spec, ev = prepare(host, workloads=["bert-tiny"], accelerators=["slow-cim"], seq_lens=[128],
                   grid=["slow-cim.vfu_lanes=8,16,32,64"])
# two SIGINTs (no more) to this process, 1 s apart, from a timer (no thread: the workers
# are forked)
sent = [0]
def twice(*_):
    sent[0] += 1
    if sent[0] >= 2:
        signal.setitimer(signal.ITIMER_REAL, 0)
    os.kill(os.getpid(), signal.SIGINT)
signal.signal(signal.SIGALRM, twice)
signal.setitimer(signal.ITIMER_REAL, 2.0, 1.0)
out = run_sweep(spec, ev, output=Path(sys.argv[1]), jobs=2, chunk_size=1)
signal.setitimer(signal.ITIMER_REAL, 0)
import multiprocessing
print(out.status, out.done, out.executor, len(multiprocessing.active_children()))
"""


@pytest.mark.skipif(sys.platform != "linux", reason="forked workers (an in-process accelerator)")
def test_a_second_signal_ends_the_running_chunks_workers(tmp_path: Path) -> None:
    """The docs promise that a second Ctrl-C stops waiting for the running chunks: the pool's
    shutdown once joined the busy workers anyway (a hung plugin then needed SIGKILL)."""
    started = time.monotonic()
    r = subprocess.run([sys.executable, "-c", _SLOW_SWEEP, str(tmp_path / "s.jsonl")],
                       capture_output=True, text=True, timeout=100, cwd=tempfile.gettempdir())
    assert r.returncode == 0, r.stderr
    assert time.monotonic() - started < 60
    assert r.stdout.split() == ["interrupted", "2", "local,", "2", "processes", "0"], r.stdout


def test_a_failure_after_the_workers_start_shuts_them_down(small, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever fails once the executor exists (here the run's metadata), it is closed:
    no worker process or pool is left behind."""
    import multiprocessing

    from hastily_bench.sweep import runner

    closed: list[bool] = []
    real_make = runner.make_executor

    def make(*args, **kw):  # type: ignore[no-untyped-def]
        ex = real_make(*args, **kw)
        real_close = ex.close

        def close(*, cancel: bool) -> None:
            closed.append(cancel)
            real_close(cancel=cancel)

        ex.close = close
        ex.submit(0, 1)  # workers exist (a fork-server pool starts them on demand)
        return ex

    def broken(*args: object, **kw: object) -> None:
        raise RuntimeError("metadata failed")

    spec, ev = small
    monkeypatch.setattr(runner, "make_executor", make)
    monkeypatch.setattr(runner.api, "metadata", broken)
    with pytest.raises(RuntimeError, match="metadata failed"):
        run_sweep(spec, ev, output=tmp_path / "s.jsonl", jobs=2, chunk_size=1)
    assert closed and closed[0] is True
    assert multiprocessing.active_children() == []


def test_dask_local_cluster_writes_identical_rows(small, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("distributed", reason="needs the dask extra (part of the test extra)")
    spec, ev = small
    one = run_sweep(spec, ev, output=tmp_path / "j1.jsonl", jobs=1)
    dask = run_sweep(spec, ev, output=tmp_path / "dask.jsonl", executor="dask", jobs=2, chunk_size=5)
    assert dask.status == "complete" and dask.executor.startswith("dask, local cluster")
    assert (tmp_path / "j1.jsonl").read_bytes() == (tmp_path / "dask.jsonl").read_bytes()
    assert [p.index for p in one.front] == [p.index for p in dask.front]


def test_debug_rows_are_the_commands_on_every_executor(host, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """--debug keeps a plugin's traceback in its error row. The workers write the rows the
    command asked for: a Dask worker (or a fork server's child) has its own flag and
    environment, and once wrote the row without the traceback; and a worker elsewhere has its
    own install path, which the traceback does not name."""
    pytest.importorskip("distributed", reason="needs the dask extra (part of the test extra)")
    from hastily_bench import api
    from hastily_bench.sweep import evaluate_chunk

    spec, ev = prepare(host, workloads=["bert-tiny"], accelerators=["hastily"], seq_lens=[128],
                       grid=["hastily.array_lut_entries=0,128"])  # 0 with lut_exp: an error row
    monkeypatch.setattr(api, "_debug", True)
    run_sweep(spec, ev, output=tmp_path / "j1.jsonl", jobs=1)
    dask = run_sweep(spec, ev, output=tmp_path / "dask.jsonl", executor="dask", jobs=2, chunk_size=1)
    rows = (tmp_path / "j1.jsonl").read_bytes()
    assert dask.counts["error"] == 1 and b"Traceback (most recent call last)" in rows
    assert (tmp_path / "dask.jsonl").read_bytes() == rows
    # files are named by module, not by where this install put them
    assert b'File \\"hastily_bench/plugins/cim.py\\"' in rows
    assert os.path.dirname(api.__file__).encode() not in rows
    # a worker whose own environment asks for tracebacks writes none for a command that did not
    monkeypatch.setattr(api, "_debug", False)
    monkeypatch.setenv("HASTILY_DEBUG", "1")
    assert b"Traceback" not in evaluate_chunk(spec, 0, spec.total, False).data
    assert b"Traceback" in evaluate_chunk(spec, 0, spec.total, True).data
    assert api.debug_enabled()  # the task's setting ends with the task


def test_a_ctrl_c_while_a_cluster_starts_is_an_interruption() -> None:
    """A Ctrl-C that reached a local Dask cluster's workers as they started made the start
    fail ("Nanny failed to start"): after a Ctrl-C whatever the start raised is the Ctrl-C."""
    from hastily_bench.sweep.executors import _sigint_deferred

    with pytest.raises(KeyboardInterrupt), _sigint_deferred():
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.01)  # (the handler runs between bytecodes)
        raise RuntimeError("Nanny failed to start.")
    with pytest.raises(RuntimeError, match="Nanny"), _sigint_deferred():
        raise RuntimeError("Nanny failed to start.")  # no Ctrl-C: the failure itself
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_local_cluster_workers_ignore_ctrl_c_from_their_first_import(host) -> None:  # type: ignore[no-untyped-def]
    """The terminal's Ctrl-C reaches the cluster's workers too: they ignore it from their
    first import of the package (a handler set later came after a worker importing for a
    second had died of it, each printing a traceback), and the command itself does not."""
    pytest.importorskip("distributed", reason="needs the dask extra (part of the test extra)")
    from hastily_bench import WORKER_IGNORES_SIGINT
    from hastily_bench.sweep.executors import DaskExecutor

    probe = "import hastily_bench, signal; print(signal.getsignal(signal.SIGINT) is signal.SIG_IGN)"
    for value, ignored in (("1", "True"), (None, "False")):
        env = {k: v for k, v in os.environ.items() if k != WORKER_IGNORES_SIGINT}
        if value:
            env[WORKER_IGNORES_SIGINT] = value
        out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True,
                             cwd=tempfile.gettempdir(), check=True).stdout
        assert out.strip() == ignored
    spec, _ = prepare(host, workloads=["bert-tiny"], accelerators=["hastily"], seq_lens=[128],
                      grid=[f"hastily.{LANES}=8,16"])
    ex = DaskExecutor(spec, 1, None)
    try:
        seen = ex._client.run(lambda: os.environ.get(WORKER_IGNORES_SIGINT))
        assert list(seen.values()) == ["1"]
        # (and a finished chunk is found without waiting: the second Ctrl-C's salvage;
        # distributed's own wait raises at timeout 0 even then)
        fut = ex.submit(0, 2)
        assert ex.wait_first([fut], 60) == {fut}
        assert ex.wait_first([fut], 0) == {fut}
    finally:
        ex.close(cancel=True)
    assert WORKER_IGNORES_SIGINT not in os.environ


def test_a_ctrl_c_anywhere_in_a_command_is_one_line(cli, monkeypatch: pytest.MonkeyPatch,  # type: ignore[no-untyped-def]
                                                    tmp_path: Path) -> None:
    """typer turns a Ctrl-C into a silent exit 130; the command says it was interrupted."""
    import hastily_bench.sweep.runner as runner

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(runner, "make_executor", interrupted)
    r = cli("sweep", "bert-tiny", "-a", "hastily", "-l", "128", "-g", f"hastily.{LANES}=8,16",
            "-o", str(tmp_path / "s.jsonl"), "--top", "0")
    assert r.code == 130 and r.err == "hastily-bench: interrupted\n", r
    assert list(tmp_path.iterdir()) == []
    # the workers' variable in the command's own environment does not make it ignore Ctrl-C
    from hastily_bench import WORKER_IGNORES_SIGINT

    monkeypatch.setenv(WORKER_IGNORES_SIGINT, "1")
    monkeypatch.setattr(signal, "signal", _recording := _RecordingSignal(signal.signal))
    cli("accelerators")
    assert (signal.SIGINT, signal.default_int_handler) in _recording.calls
    assert WORKER_IGNORES_SIGINT not in os.environ


def test_a_signal_outside_typers_handling_is_one_line(cli, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    """A Ctrl-C as the command ends (outside typer's own handling) printed a traceback, and a
    SIGTERM (Terminated) ended the command with exit 143 and no word."""
    import hastily_bench.cli as command
    from hastily_bench.errors import Terminated

    def raising(exc: BaseException):  # type: ignore[no-untyped-def]
        def app(*args: object, **kwargs: object) -> None:
            raise exc
        return app

    monkeypatch.setattr(command, "app", raising(KeyboardInterrupt()))
    r = cli("accelerators")
    assert (r.code, r.err) == (130, "hastily-bench: interrupted\n"), r
    monkeypatch.setattr(command, "app", raising(Terminated(143)))
    r = cli("accelerators")
    assert (r.code, r.err) == (143, "hastily-bench: terminated\n"), r


class _RecordingSignal:
    def __init__(self, real):  # type: ignore[no-untyped-def]
        self.real, self.calls = real, []

    def __call__(self, signum, handler):  # type: ignore[no-untyped-def]
        self.calls.append((signum, handler))
        return self.real(signum, handler)


def _cli(*args: str, **kw) -> subprocess.Popen[bytes]:  # type: ignore[no-untyped-def]
    env = {**os.environ, "HASTILY_DISABLE_PLUGIN_AUTOLOAD": "1"}
    # not from the repository root: there `-m` would import the source tree, not the
    # installed package with its compiled kernels (CI installs non-editable)
    kw.setdefault("cwd", tempfile.gettempdir())
    return subprocess.Popen([sys.executable, "-m", "hastily_bench.cli", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)


SWEEP_GRID = (f"hastily.{LANES}=8:128:x2", f"hastily.{CLOCK}=0.5e9:2e9:20", f"hastily.{ADC}=4:8:+1")
SWEEP_ARGS = ("sweep", "bert-tiny", "-a", "hastily", "-l", "128", "-l", "256",
              *(x for g in SWEEP_GRID for x in ("-g", g)), "--chunk-size", "25", "--top", "0")


@pytest.mark.parametrize(("sig", "jobs"), [(signal.SIGINT, "2"), (signal.SIGTERM, "1")])
def test_interrupted_sweep_leaves_valid_rows_and_resumes(sig: int, jobs: str, tmp_path: Path, host) -> None:  # type: ignore[no-untyped-def]
    """Ctrl-C with worker processes, SIGTERM in-process: a valid prefix, then --resume."""
    out = tmp_path / "s.jsonl"
    proc = _cli(*SWEEP_ARGS, "-j", jobs, "-o", str(out))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (not out.exists() or out.stat().st_size == 0):
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.02)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert b"--resume" in err and b"Traceback" not in err
    summary = json.loads((tmp_path / "s.summary.json").read_text())
    partial = out.read_bytes()
    done = partial.count(b"\n")
    assert summary["status"] == "interrupted" and summary["done"] == done and partial.endswith(b"\n")
    total = summary["total"]
    assert 0 < done < total == 2 * 5 * 20 * 5
    # rerun the same command with --resume: it continues after the last row
    proc = _cli(*SWEEP_ARGS, "-j", jobs, "-o", str(out), "--resume")
    stdout, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert f"{total - done:,} now, {done:,} resumed".encode() in stdout
    data = out.read_bytes()
    assert data.startswith(partial) and data.count(b"\n") == total
    # spot-check rows (around the resume point, and spread over the sweep) against a fresh evaluation
    spec, _ = prepare(host, workloads=["bert-tiny"], accelerators=["hastily"], seq_lens=[128, 256],
                      grid=list(SWEEP_GRID))
    ev = Evaluator(spec, host)
    lines = data.splitlines()
    for i in sorted({*range(max(0, done - 3), min(total, done + 3)), *range(0, total, 97), total - 1}):
        assert lines[i] == _encode(ev.point(i).to_dict()).encode(), i
    assert json.loads((tmp_path / "s.summary.json").read_text())["status"] == "complete"


def _workers(pid: int) -> list[int]:
    """The sweep's pool workers under ``pid``: forked from it (its command line) or from a
    fork server it started; not the resource tracker or the server itself."""
    def children(p: int) -> list[int]:
        try:
            return [int(c) for c in Path(f"/proc/{p}/task/{p}/children").read_text().split()]
        except OSError:
            return []

    def cmdline(p: int) -> bytes:
        try:
            return Path(f"/proc/{p}/cmdline").read_bytes()
        except OSError:
            return b""

    out, todo = [], [pid]
    while todo:
        parent = todo.pop()
        for c in children(parent):
            todo.append(c)
            if cmdline(c) == cmdline(pid) or b"forkserver" in cmdline(parent):
                out.append(c)
    return out


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="needs /proc to find the workers")
def test_a_killed_worker_stops_the_sweep_with_one_line(tmp_path: Path) -> None:
    """A worker killed (OOM killer, kill -9): the pool terminates the others, which must
    die (a worker forked from the command once inherited its SIGTERM handler and blocked
    forever); the sweep stops with one line, the rows so far kept, resumable."""
    out = tmp_path / "s.jsonl"
    grid = (f"hastily.{LANES}=8:128:x2", f"hastily.{CLOCK}=0.5e9:2e9:40", f"hastily.{ADC}=4:8:+1",
            "hastily.softmax_cores_per_row=1:32:+1")
    proc = _cli("sweep", "bert-tiny", "-a", "hastily", "-l", "128", "-l", "256",
                *(x for g in grid for x in ("-g", g)), "--chunk-size", "50", "--top", "0",
                "-j", "2", "-o", str(out))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (not out.exists() or out.stat().st_size == 0):
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.02)
    workers = _workers(proc.pid)
    assert workers, "no worker processes found"
    os.kill(workers[0], signal.SIGKILL)
    try:
        _, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        for w in _workers(proc.pid):
            os.kill(w, signal.SIGKILL)
        proc.kill()
        pytest.fail("the sweep hung after a worker was killed")
    assert proc.returncode == 2, err
    lines = err.decode().strip().splitlines()
    assert len(lines) == 1 and "--resume" in lines[0] and "Traceback" not in lines[0], lines
    summary = json.loads((tmp_path / "s.summary.json").read_text())
    assert summary["status"] == "interrupted" and summary["done"] == out.read_bytes().count(b"\n")
    # the command is single-threaded when it starts its workers, so they are forked from it
    assert summary["executor"]["description"] == "local, 2 processes"


def test_sigterm_to_the_process_group_is_an_interruption(tmp_path: Path) -> None:
    """`kill -TERM -PGID` (a job scheduler, a terminal closing) ends the workers too: the
    broken pool that follows is reported as the interruption it is, resumable."""
    out = tmp_path / "s.jsonl"
    proc = _cli(*SWEEP_ARGS, "-j", "2", "-o", str(out), start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (not out.exists() or out.stat().st_size == 0):
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert b"--resume" in err and b"BrokenProcessPool" not in err and b"Traceback" not in err, err
    summary = json.loads((tmp_path / "s.summary.json").read_text())
    assert summary["status"] == "interrupted" and "failure" not in summary
    assert summary["done"] == out.read_bytes().count(b"\n")


def test_cli_sweep_table_plot_and_errors(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("matplotlib")
    out = tmp_path / "s.jsonl"
    r = cli("sweep", "bert-tiny", "-a", "hastily", "-l", "128", "-l", "256", "-g", f"hastily.{LANES}=8:64:x2",
            "-g", f"hastily.{CLOCK}=0.5e9:2e9:3", "-c", "area_mm2 <= 1e6", "-o", str(out), "-j", "1",
            "--plot", str(tmp_path / "fig"))
    assert r.code == 0, r
    assert "Pareto front · bert-tiny · l=128" in r.out and LANES in r.out and "24 of 24 points" in r.out
    assert (tmp_path / "fig" / "pareto.png").stat().st_size > 0
    r = cli("plot", str(tmp_path / "s.summary.json"), "-o", str(tmp_path / "fig2"))
    assert r.code == 0, r
    assert (tmp_path / "fig2" / "pareto.svg").exists()
    rows = list(read_rows(out))
    assert len(rows) == 24
    # one line on stderr, exit 2, nothing written
    for args in (("-g", f"hastily.{LANES}=8:64:x1"), ("-g", "hastily.nope=1,2"), ("-c", "area <> 3"),
                 ("--objective", "max:bogus"), ("--executor", "ray"), ("--scheduler", "tcp://x:1"),
                 ("--jobs", "100000"), ("--executor", "dask", "--jobs", "100000"),
                 ("--executor", "dask", "--scheduler", "garbage"), ("-g", "hastily.lut_exp=0:1:2"),
                 ("--executor", "dask", "--scheduler", "tcp://[::1")):
        bad = tmp_path / "bad.jsonl"
        r = cli("sweep", "bert-tiny", "-a", "hastily", *args, "-o", str(bad))
        assert r.code == 2, (args, r)
        assert len(r.err.strip().splitlines()) == 1 and not bad.exists(), (args, r)
    r = cli("sweep", "bert-tiny", "-a", "hastily", "-g", f"hastily.{LANES}=8,16", "-o", str(out))
    assert r.code == 2 and "--resume" in r.err
    r = cli("sweep", "bert-tiny", "-a", "hastily", "-g", f"hastily.{LANES}=8,16", "-o", str(out), "--resume")
    assert r.code == 2 and "different sweep" in r.err


def test_workers_are_never_more_than_the_chunks(small, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """`--jobs 64` on a sweep of a few chunks starts a worker per chunk, not 64 processes
    (a small sweep with many jobs once forked them all); one chunk runs in-process."""
    spec, ev = small
    out = run_sweep(spec, ev, output=tmp_path / "a.jsonl", jobs=64, chunk_size=spec.total)
    assert out.executor == "local, in-process" and out.summary_doc["executor"]["workers"] == 1
    out = run_sweep(spec, ev, output=tmp_path / "b.jsonl", jobs=64, chunk_size=(spec.total + 1) // 2)
    assert out.executor.startswith("local, 2 processes") and out.summary_doc["executor"]["workers"] == 2
    assert (tmp_path / "a.jsonl").read_bytes() == (tmp_path / "b.jsonl").read_bytes()


def test_cli_sweep_file(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    f = tmp_path / "space.toml"
    f.write_text('schema_version = 1\nworkloads = ["bert-tiny"]\naccelerators = ["hastily"]\n'
                 'seq_lens = [128]\nconstraints = ["latency_s <= 1"]\n'
                 'objectives = ["max:tops_per_w", "min:latency_s"]\n'
                 f'[grid]\n"hastily.{LANES}" = "8:32:x2"\n')
    r = cli("sweep", str(f), "-o", str(tmp_path / "s.jsonl"), "-j", "1", "-f", "json")
    assert r.code == 0, r
    doc = json.loads(r.out)
    assert doc["done"] == 3 and doc["objectives"] == ["max:tops_per_w", "min:latency_s"]
    assert doc["front"] and all(set(p["design"]) == {f"hastily.{LANES}"} for p in doc["front"])


def test_compare_reads_sweeps_design_by_design(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    args = ("sweep", "bert-tiny", "-a", "hastily", "-a", "a40-tensorrt", "-l", "128",
            "-g", f"hastily.{LANES}=8,16", "-j", "1", "--top", "0")
    assert cli(*args, "-o", str(tmp_path / "a.jsonl")).code == 0
    assert cli(*args, "-o", str(tmp_path / "b.jsonl")).code == 0
    r = cli("compare", str(tmp_path / "a.jsonl"), str(tmp_path / "b.jsonl"), "-f", "json")
    assert r.code == 0, r
    points = json.loads(r.out)["points"]
    assert len(points) == 3 and {p["accelerator"] for p in points} == {
        f"hastily({LANES}=8)", f"hastily({LANES}=16)", "a40-tensorrt"}
    assert all(p["verdict"] == "unchanged" for p in points)


_TORN_RESULT_SCRIPT = r'''
import os, struct, sys, time
from hastily_bench.api import PluginHost
from hastily_bench.sweep import prepare
from hastily_bench.sweep.executors import LocalExecutor

def torn():
    # what a worker killed halfway through sending its chunk leaves in the result pipe:
    # a message header announcing a megabyte, a few bytes of it, then nothing
    queue = sys._getframe(1).f_locals["result_queue"]  # concurrent.futures' worker loop
    os.write(queue._writer.fileno(), struct.pack("!i", 1 << 20) + b"partial")
    os._exit(9)

host = PluginHost(autoload=False)
spec, ev = prepare(host, workloads=["bert-tiny"], accelerators=["hastily"], grid=["hastily.adc_bits=4,5"])
ex = LocalExecutor(spec, 2, ev)
assert ex.description == "local, 2 processes", ex.description
fut = ex._pool.submit(torn)
deadline = time.monotonic() + 30
while not ex.wait_first([fut], 0.2) and not ex.lost():
    assert time.monotonic() < deadline, "the death was never noticed"
print(ex.lost(), flush=True)
ex.close(cancel=True)
print("closed", flush=True)
'''


def test_a_worker_dying_mid_result_does_not_hang_the_sweep(tmp_path: Path) -> None:
    """A worker killed while sending its chunk (SIGTERM to the process group) leaves the
    pool blocked reading the rest of the message: the parent notices the dead worker and
    closing the executor ends the others, so the read ends (it once hung forever)."""
    env = {**os.environ, "HASTILY_DISABLE_PLUGIN_AUTOLOAD": "1"}
    try:
        proc = subprocess.run([sys.executable, "-c", _TORN_RESULT_SCRIPT], env=env, cwd=tmp_path,
                              capture_output=True, text=True, timeout=90)
    except subprocess.TimeoutExpired:
        pytest.fail("closing the executor hung on the torn result")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["a worker process died (exited with status 9)", "closed"]


def test_outputs_never_overwrite_a_sweeps_own_files(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The figure, a comparison or a new sweep must not replace rows, a summary or a
    workload file that the same command reads or writes: one line, exit 2, nothing written."""
    args = ("bert-tiny", "-a", "hastily", "-l", "128", "-g", f"hastily.{LANES}=8,16", "--top", "0")
    fig = tmp_path / "fig"
    fig.mkdir()
    r = cli("sweep", *args, "-o", str(fig / "pareto.svg"), "--plot", str(fig))
    assert r.code == 2 and "same file" in r.err and not list(fig.iterdir()), r
    out = tmp_path / "s.jsonl"
    assert cli("sweep", *args, "-j", "1", "-o", str(out)).code == 0
    summary = (tmp_path / "s.summary.json").read_bytes()
    r = cli("compare", str(out), str(out), "-o", str(tmp_path / "s.summary.json"), "-f", "json")
    assert r.code == 2 and "is also an input" in r.err
    r = cli("plot", str(out), "-o", str(tmp_path))  # figure files beside the rows: fine
    assert r.code == 0, r
    (tmp_path / "pareto.svg").write_bytes(out.read_bytes())
    doc = json.loads(summary)
    (tmp_path / "pareto.summary.json").write_text(json.dumps({**doc, "rows": "pareto.svg"}))
    rows_before = (tmp_path / "pareto.svg").read_bytes()
    r = cli("plot", str(tmp_path / "pareto.summary.json"), "-o", str(tmp_path))
    assert r.code == 2 and "is also an input" in r.err
    assert (tmp_path / "pareto.svg").read_bytes() == rows_before
    assert (tmp_path / "s.summary.json").read_bytes() == summary
    # a summary without its rows (another file that happens to have the name) is kept
    other = tmp_path / "m.summary.json"
    other.write_text('{"hidden_size": 8}')
    r = cli("sweep", *args, "-o", str(tmp_path / "m.jsonl"))
    assert r.code == 2 and "exists without m.jsonl" in r.err and other.read_text() == '{"hidden_size": 8}'
    assert not (tmp_path / "m.jsonl").exists()
    # a workload file named in a sweep file is an input like one on the command line
    wl = tmp_path / "w.toml"
    wl.write_text('name = "wee"\nlayers = 1\nhidden = 64\nheads = 2\nffn = 128\n')
    spec = tmp_path / "space.toml"
    spec.write_text(f'schema_version = 1\nworkloads = ["{wl}"]\naccelerators = ["hastily"]\n'
                    f'seq_lens = [128]\n[grid]\n"hastily.{LANES}" = "8,16"\n')
    r = cli("sweep", str(spec), "-o", str(wl), "--overwrite")
    assert r.code == 2 and "is also an input" in r.err and wl.read_text().startswith('name = "wee"'), r


_SUMMARY_EDITS = {
    "front entry empty": lambda d: d.update(front=[{}]),
    "front objectives not an object": lambda d: d["front"][0].update(objectives=5),
    "front objective not a number": lambda d: d["front"][0]["objectives"].update(
        {k: "abc" for k in d["front"][0]["objectives"]}),
    "counts missing": lambda d: d.pop("counts"),
    "counts inflated": lambda d: d.update(counts={"ok": 1000, "error": 5, "unsupported": 0}),
    "feasible not a count": lambda d: d.update(feasible="x"),
    "objectives not strings": lambda d: d.update(objectives=[{"a": 1}, {"b": 2}]),
    "constraints not a list": lambda d: d.update(constraints=None),
    "rows outside the directory": lambda d: d.update(rows="../../etc/passwd"),
    "done not a count": lambda d: d.update(done="many"),
    "grid entry without its parameter": lambda d: d["spec"]["grid"][0].pop("param"),
    "unknown status": lambda d: d.update(status="bogus"),
}
_ROW_EDITS = {
    "unknown status": lambda r: r.update(status="weird"),
    "extra not an object": lambda r: r.update(extra=5),
    "seq_len a list": lambda r: r.update(seq_len=[1]),
    "negative metric": lambda r: r.update(tops=-1e308),
    "no params_hash": lambda r: r.pop("params_hash"),
}


@pytest.fixture
def small_sweep(cli, tmp_path: Path):  # type: ignore[no-untyped-def]
    args = ("sweep", "bert-tiny", "-a", "hastily", "-l", "128", "-g", f"hastily.{LANES}=8,16,32",
            "--top", "0", "-j", "1", "-o", str(tmp_path / "r.jsonl"))
    assert cli(*args).code == 0
    return args


@pytest.mark.parametrize("edit", _SUMMARY_EDITS)
def test_a_hand_edited_summary_is_one_line_for_every_reader(cli, tmp_path: Path, small_sweep,  # type: ignore[no-untyped-def]
                                                             edit: str) -> None:
    summary = tmp_path / "r.summary.json"
    doc = json.loads(summary.read_text())
    _SUMMARY_EDITS[edit](doc)
    summary.write_text(json.dumps(doc))
    rows = (tmp_path / "r.jsonl").read_bytes()
    for args in ((*small_sweep, "--resume"), ("plot", str(summary), "-o", str(tmp_path / "f")),
                 ("plot", str(tmp_path / "r.jsonl"), "-o", str(tmp_path / "f"))):
        r = cli(*args)
        assert r.code == 2 and len(r.err.strip().splitlines()) == 1 and "summary.json" in r.err, (args, r)
    assert (tmp_path / "r.jsonl").read_bytes() == rows and not (tmp_path / "f").exists()


@pytest.mark.parametrize("edit", _ROW_EDITS)
def test_a_hand_edited_row_is_one_line_for_every_reader(cli, tmp_path: Path, small_sweep,  # type: ignore[no-untyped-def]
                                                         edit: str) -> None:
    out, summary = tmp_path / "r.jsonl", tmp_path / "r.summary.json"
    lines = out.read_text().splitlines()
    row = json.loads(lines[0])
    _ROW_EDITS[edit](row)
    out.write_text("\n".join([json.dumps(row), *lines[1:]]) + "\n")
    doc = json.loads(summary.read_text())  # as a sweep killed outright leaves it: rows are re-read
    doc.update(done=0, feasible=0, front=[], counts={"ok": 0, "error": 0, "unsupported": 0})
    summary.write_text(json.dumps(doc))
    for args in ((*small_sweep, "--resume"), ("plot", str(summary), "-o", str(tmp_path / "f")),
                 ("compare", str(out), str(out))):
        r = cli(*args)
        assert r.code == 2 and len(r.err.strip().splitlines()) == 1 and "line 1" in r.err, (args, r)


@pytest.mark.skipif(sys.platform == "win32", reason="advisory locks are POSIX")
def test_rows_another_sweep_is_writing_are_left_alone(small, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Two sweeps on one output once interleaved their rows (the file then held more rows
    than the sweep has points); the second is refused in one line, resume or overwrite."""
    import fcntl

    from hastily_bench.errors import UsageError

    spec, ev = small
    out = tmp_path / "s.jsonl"
    run_sweep(spec, ev, output=out, jobs=1, chunk_size=5)
    rows = out.read_bytes()
    fd = os.open(out, os.O_WRONLY | os.O_APPEND)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # as a running sweep holds it
        for kw in ({"resume": True}, {"overwrite": True}):
            with pytest.raises(UsageError, match="another sweep is writing it"):
                run_sweep(spec, ev, output=out, jobs=1, **kw)  # type: ignore[arg-type]
    finally:
        os.close(fd)
    assert out.read_bytes() == rows
    assert run_sweep(spec, ev, output=out, jobs=1, resume=True).done == spec.total


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_sweep_outputs_must_be_regular_files_and_plot_figures_are_fixed(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A FIFO as the rows or summary once hung the sweep; --figure on a sweep was ignored."""
    args = ("sweep", "bert-tiny", "-a", "hastily", "-l", "128", "-g", f"hastily.{LANES}=8,16", "--top", "0")
    fifo = tmp_path / "f.jsonl"
    os.mkfifo(fifo)
    r = cli(*args, "-o", str(fifo), "--overwrite")
    assert r.code == 2 and "not a regular file" in r.err, r
    os.mkfifo(tmp_path / "g.summary.json")
    r = cli(*args, "-o", str(tmp_path / "g.jsonl"), "--resume")
    assert r.code == 2 and "not a regular file" in r.err and not (tmp_path / "g.jsonl").exists(), r
    assert cli(*args, "-j", "1", "-o", str(tmp_path / "s.jsonl")).code == 0
    r = cli("plot", str(tmp_path / "s.jsonl"), "--figure", "speedup", "-o", str(tmp_path / "fig"))
    assert r.code == 2 and "Pareto front" in r.err and not (tmp_path / "fig").exists(), r


def test_rows_files_sharing_a_stem_do_not_share_a_summary(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """q.jsonl and q.csv both have the summary q.summary.json: a second sweep once replaced the
    first's summary (--overwrite), after which `plot q.jsonl` drew the other sweep's front and
    q.jsonl could not be resumed."""
    args = ("sweep", "bert-tiny", "-a", "hastily", "-l", "128", "--top", "0", "-j", "1")
    q = tmp_path / "q.jsonl"
    assert cli(*args, "-g", f"hastily.{LANES}=8,16", "-o", str(q)).code == 0
    before = (tmp_path / "q.summary.json").read_bytes()
    r = cli(*args, "-g", f"hastily.{LANES}=32,64", "-o", str(tmp_path / "q.csv"), "--overwrite")
    assert r.code == 2 and "is the summary of the rows in q.jsonl" in r.err, r
    assert (tmp_path / "q.summary.json").read_bytes() == before and not (tmp_path / "q.csv").exists()
    # a summary that describes other rows beside them (from an older version) is refused by readers
    doc = json.loads(before)
    doc["rows"] = "q.csv"
    (tmp_path / "q.summary.json").write_text(json.dumps(doc))
    (tmp_path / "q.csv").write_bytes(q.read_bytes())
    for command in (("plot", str(q), "-o", str(tmp_path / "fig")), ("compare", str(q), str(q)),
                    (*args, "-g", f"hastily.{LANES}=8,16", "-o", str(q), "--resume")):
        r = cli(*command)
        assert r.code == 2 and "describes the rows in q.csv, not q.jsonl" in r.err, (command, r)
    assert not (tmp_path / "fig").exists()
    # renamed together (the rows it names are gone), they are one sweep's again
    (tmp_path / "q.csv").unlink()
    assert cli("plot", str(q), "-o", str(tmp_path / "fig")).code == 0
    # renamed, then a new sweep under the old name: each summary still names its rows' stem
    (tmp_path / "q.summary.json").write_bytes(before)
    q.rename(tmp_path / "old.jsonl")
    (tmp_path / "q.summary.json").rename(tmp_path / "old.summary.json")
    assert cli(*args, "-g", f"hastily.{LANES}=32,64", "-o", str(q)).code == 0
    old = tmp_path / "old.jsonl"
    for command in (("plot", str(old), "-o", str(tmp_path / "fig2")), ("compare", str(old), str(old)),
                    (*args, "-g", f"hastily.{LANES}=8,16", "-o", str(old), "--resume"),
                    (*args, "-g", f"hastily.{LANES}=8,16", "-o", str(old), "--overwrite")):
        r = cli(*command)
        assert r.code in (0, 1) and "describes" not in r.err and "share" not in r.err, (command, r)


def test_an_output_name_with_a_backslash_resumes(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A backslash is part of a file name on POSIX: the summary naming such rows is valid."""
    if os.sep == "\\":
        pytest.skip("a separator on Windows")
    args = ("sweep", "bert-tiny", "-a", "hastily", "-l", "128", "-g", f"hastily.{LANES}=8,16", "--top", "0",
            "-j", "1", "-o", str(tmp_path / "a\\b.jsonl"))
    assert cli(*args).code == 0
    r = cli(*args, "--resume")
    assert r.code == 0, r

