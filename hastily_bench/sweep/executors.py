"""Where chunks run: this process, local worker processes, or a Dask cluster.

Every executor runs the same task, :func:`~hastily_bench.sweep.engine.evaluate_chunk`,
and hands back futures; the parent writes the rows in point order whatever order
they finish in, so the output does not depend on the executor.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import math
import multiprocessing
import os
import signal
import sys
import threading
from collections.abc import Iterable, Iterator
from typing import Any, Protocol

from .. import WORKER_IGNORES_SIGINT
from ..api import debug_enabled
from ..errors import HastilyError, UsageError
from ..host import IN_PROCESS
from .engine import ChunkResult, Evaluator, adopt, evaluate_chunk, ignore_sigint, worker_signals
from .grid import SweepSpec

EXECUTORS = ("local", "dask")


class Executor(Protocol):
    """Submit chunks, wait for some to finish, shut down."""

    workers: int
    description: str

    def submit(self, start: int, stop: int) -> Any: ...

    def wait_first(self, futures: Iterable[Any], timeout: float) -> set[Any]:
        """Some finished futures, or an empty set after ``timeout`` seconds."""
        ...

    def result(self, future: Any) -> ChunkResult: ...

    def lost(self) -> str | None:
        """Why a worker is gone (its exit), when one died; None while all run."""
        ...

    def close(self, *, cancel: bool, abandon: bool = False) -> None:
        """Shut down; ``cancel``: drop chunks not started; ``abandon``: do not wait for the
        running ones either (a second Ctrl-C: end the workers that run them)."""
        ...


class InProcessExecutor:
    """``--jobs 1``: no worker processes, no pickling."""

    description = "local, in-process"

    def __init__(self, spec: SweepSpec, evaluator: Evaluator) -> None:
        self.workers = 1
        self._ev = evaluator

    def submit(self, start: int, stop: int) -> cf.Future[ChunkResult]:
        fut: cf.Future[ChunkResult] = cf.Future()
        fut.set_result(self._ev.run_chunk(start, stop))
        return fut

    def wait_first(self, futures: Iterable[Any], timeout: float) -> set[Any]:
        return set(futures)

    def result(self, future: Any) -> ChunkResult:
        r: ChunkResult = future.result()
        return r

    def lost(self) -> str | None:
        return None

    def close(self, *, cancel: bool, abandon: bool = False) -> None:
        pass


class LocalExecutor:
    """``--jobs N``: N worker processes on this machine.

    On Linux, while this process runs a single thread, the workers are forked from it
    at once: they start in milliseconds with this process's evaluator (plugins loaded,
    graphs and memoised chips warm) instead of importing the package and building one
    each. Otherwise (threads running, another platform) they fork from a fork server
    that imported the package once; forking a threaded process can deadlock.
    """

    def __init__(self, spec: SweepSpec, jobs: int, evaluator: Evaluator | None = None) -> None:
        self.workers = jobs
        self._spec = spec
        self._debug = debug_enabled()  # the workers' own flag may differ (a fork server's)
        ctx: Any
        methods = multiprocessing.get_all_start_methods()
        if evaluator is not None and sys.platform == "linux" and "fork" in methods and _single_threaded():
            ctx = multiprocessing.get_context("fork")
            adopt(spec, evaluator)
            self.description = f"local, {jobs} processes"
        elif "forkserver" in methods:
            _refuse_in_process_accelerators(evaluator, "workers started from a fork server")
            ctx = multiprocessing.get_context("forkserver")
            ctx.set_forkserver_preload(["hastily_bench.sweep.engine", "hastily_bench.plugins.cim",
                                        "hastily_bench.plugins.gpu"])
            _start_forkserver_beside_the_package()
            self.description = f"local, {jobs} processes (fork server)"
        else:  # pragma: no cover - Windows
            _refuse_in_process_accelerators(evaluator, "spawned workers")
            ctx = multiprocessing.get_context("spawn")
            self.description = f"local, {jobs} processes (spawned)"
        self._pool = cf.ProcessPoolExecutor(max_workers=jobs, mp_context=ctx, initializer=worker_signals)
        self._writer_closed = False
        if ctx.get_start_method() == "fork":
            # the first task forks every worker now, before the caller starts any thread
            # (a progress bar); later forks never happen (a dead worker breaks the pool)
            self._pool.submit(int).result()
            self._close_result_writer()

    def submit(self, start: int, stop: int) -> cf.Future[ChunkResult]:
        fut = self._pool.submit(evaluate_chunk, self._spec, start, stop, self._debug)
        self._close_result_writer()
        return fut

    def _processes(self) -> list[Any]:
        return list((getattr(self._pool, "_processes", None) or {}).values())

    def _close_result_writer(self, *, force: bool = False) -> None:
        """Once every worker exists, drop this process's end of the pipe the workers send
        results on: a worker killed halfway through sending a chunk (SIGTERM to the process
        group) then ends the pool's read with end-of-file instead of blocking it forever.

        (``ProcessPoolExecutor``'s ``_processes`` and ``_result_queue._writer`` are private,
        read as CPython 3.11 and 3.12 define them; where they are missing nothing is closed
        and a dead worker is still noticed by :meth:`lost`.)"""
        if self._writer_closed or (not force and len(self._processes()) < self.workers):
            return
        queue = getattr(self._pool, "_result_queue", None)
        writer = getattr(queue, "_writer", None)
        if writer is not None:
            writer.close()
        self._writer_closed = True


    def wait_first(self, futures: Iterable[Any], timeout: float) -> set[Any]:
        done, _ = cf.wait(list(futures), timeout=timeout, return_when=cf.FIRST_COMPLETED)
        return done

    def result(self, future: Any) -> ChunkResult:
        r: ChunkResult = future.result()
        return r

    def lost(self) -> str | None:
        for p in self._processes():
            if p.exitcode is not None:
                how = (f"killed by signal {-p.exitcode}" if p.exitcode < 0
                       else f"exited with status {p.exitcode}")
                return f"a worker process died ({how})"
        return None

    def close(self, *, cancel: bool, abandon: bool = False) -> None:
        if abandon or self.lost():
            # the pool may be stuck reading a dead worker's torn result: drop this process's
            # end of the pipe (no worker starts after a death) and end every worker, so that
            # read ends (the pool then shuts down as broken); abandoned, the running chunks'
            # workers are ended alike instead of waited for
            self._close_result_writer(force=True)
            for p in self._processes():
                if p.exitcode is None:
                    p.kill()
            for p in self._processes():
                p.join(10)
        self._pool.shutdown(wait=True, cancel_futures=cancel)


class DaskExecutor:
    """``--executor dask``: a Dask distributed cluster, or a local one without ``--scheduler``."""

    def __init__(self, spec: SweepSpec, jobs: int, scheduler: str | None) -> None:
        try:
            from distributed import (  # untyped: calls below are checked by tests
                Client,
                LocalCluster,
            )
        except ImportError:
            raise UsageError("--executor dask needs dask.distributed: "
                             "pip install 'hastily-bench[dask]'") from None
        self._cluster: Any = None
        self._client: Any = None
        self._closed = False
        self._environ_before: str | None | bool = False  # False: the variable was never set
        self._debug = debug_enabled()  # a worker's own environment may differ
        try:
            with _sigint_deferred():  # a Ctrl-C meanwhile stops the sweep once this is done
                self._connect(spec, jobs, scheduler, Client, LocalCluster)
        except BaseException:
            self.close(cancel=True)
            raise

    def _connect(self, spec: SweepSpec, jobs: int, scheduler: str | None, client: Any,
                 local_cluster: Any) -> None:
        try:
            if scheduler:
                self._client = client(scheduler, timeout="10s")
            else:
                # the workers ignore Ctrl-C from their first import of hastily_bench on (the
                # terminal sends it to them too; a worker it killed mid-start printed a
                # traceback): they inherit this variable, not this process's handler. Set
                # until the cluster is closed (a worker the nanny restarts gets it too), and
                # before the cluster's threads exist (changing the environment while other
                # threads may read it is unsafe in C)
                self._environ_before = os.environ.get(WORKER_IGNORES_SIGINT)
                os.environ[WORKER_IGNORES_SIGINT] = "1"
                # its log is ours to keep quiet (CRITICAL only): the command reports what goes
                # wrong in one line, and a SIGTERM to the process group, which ends the
                # workers, would add the scheduler's complaints about them
                self._cluster = local_cluster(n_workers=jobs, threads_per_worker=1, processes=True,
                                              dashboard_address=":0", silence_logs=50)
                self._client = client(self._cluster)
                # the workers are our processes: Ctrl-C is the command's to handle (a remote
                # cluster is left alone; the nannies run in this process)
                self._client.run(ignore_sigint)
        except (OSError, TimeoutError, ValueError, TypeError) as exc:  # unreachable, or not an address
            text = _first_line(exc)
            if not scheduler:
                raise HastilyError(f"--executor dask: the local cluster did not start ({text})") from None
            raise UsageError(f"--scheduler {scheduler}: cannot connect ({text})") from None
        except RuntimeError as exc:  # distributed: "Nanny failed to start." (a worker died starting)
            if scheduler:
                raise
            cause = exc.__cause__ if exc.__cause__ is not None else exc
            raise HastilyError(f"--executor dask: the local cluster did not start ({_first_line(cause)})") from None
        info = self._client.scheduler_info()
        self.workers = max(1, sum(w.get("nthreads", 1) for w in info.get("workers", {}).values()))
        where = scheduler or "local cluster"
        self.description = f"dask, {where}, {self.workers} worker threads"
        # the spec travels once per worker, not once per task
        [self._spec] = self._client.scatter([spec], broadcast=True)

    def submit(self, start: int, stop: int) -> Any:
        return self._client.submit(evaluate_chunk, self._spec, start, stop, self._debug, pure=False)

    def wait_first(self, futures: Iterable[Any], timeout: float) -> set[Any]:
        from distributed import wait

        if timeout <= 0:  # (distributed's wait raises TimeoutError even when all are done)
            return {f for f in futures if f.done()}
        try:
            done, _ = wait(list(futures), timeout=timeout, return_when="FIRST_COMPLETED")
        except TimeoutError:
            return set()
        return set(done)

    def result(self, future: Any) -> ChunkResult:
        r: ChunkResult = future.result()
        return r

    def lost(self) -> str | None:
        return None  # the scheduler reschedules a lost worker's tasks

    def close(self, *, cancel: bool, abandon: bool = False) -> None:
        # once, shielded from a Ctrl-C that would leave the cluster half closed, and bounded
        # (a local cluster's workers may already be gone; abandoned: briefly)
        if self._closed:
            return
        self._closed = True
        timeout = 2 if abandon else 10
        with _sigint_deferred():
            if self._client is not None:
                with contextlib.suppress(Exception):
                    self._client.close(timeout=timeout)
            if self._cluster is not None:
                with contextlib.suppress(Exception):
                    self._cluster.close(timeout=timeout)
            if self._environ_before is not False:  # (the cluster's threads are gone)
                if self._environ_before is None:
                    os.environ.pop(WORKER_IGNORES_SIGINT, None)
                else:
                    os.environ[WORKER_IGNORES_SIGINT] = str(self._environ_before)


def _first_line(exc: BaseException) -> str:
    """An exception's first line of text, or its type's name when it has none."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


@contextlib.contextmanager
def _sigint_deferred() -> Iterator[None]:
    """Hold back Ctrl-C until the block ends, then raise it: what the block does (starting
    or closing a cluster) is never left half done. A SIGINT meanwhile is only recorded
    (a handler, which catches it whichever thread the kernel picks); the main thread only,
    where handlers can be set. After a Ctrl-C, whatever the block raised is the interruption
    (a cluster whose workers the Ctrl-C reached fails to start: the user stopped it)."""
    if threading.current_thread() is not threading.main_thread():
        yield  # a library user's worker thread: nothing to hold back
        return
    caught: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: caught.append(signum))
    failure: BaseException | None = None
    try:
        yield
    except BaseException as exc:  # re-raised below, unless it was the Ctrl-C's doing
        failure = exc
    finally:
        signal.signal(signal.SIGINT, previous)
    if caught:
        raise KeyboardInterrupt from None
    if failure is not None:
        raise failure


def _refuse_in_process_accelerators(evaluator: Evaluator | None, workers: str) -> None:
    """An accelerator registered in this process only (``PluginHost(extra_plugins=...)``)
    exists in no worker that loads plugins itself: refuse before any work."""
    if evaluator is None:
        return
    for reg, _, _ in evaluator.accels:
        if reg.plugin.distribution == IN_PROCESS:
            raise UsageError(f"accelerator {reg.spec.name!r} is registered in this process only "
                             f"(extra_plugins), so {workers} cannot load it; sweep it with jobs=1 "
                             "(or from a single-threaded process on Linux, whose workers are forked)")


def _single_threaded() -> bool:
    """No other thread in this process, Python's or a native library's (OpenBLAS starts
    threads when NumPy is imported): only then is forking it safe."""
    if threading.active_count() != 1:
        return False
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("Threads:"):
                    return int(line.split()[1]) == 1
    except (OSError, ValueError):
        pass
    return False


def default_jobs() -> int:
    """The machine's cores available to this process."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def max_jobs() -> int:
    """The most local worker processes a sweep starts: four per core, at least 64 (each
    is a Python process of some 30 MB; more only oversubscribe the cores)."""
    return max(64, 4 * default_jobs())


def default_chunk_size(points: int, workers: int) -> int:
    """Points per task: about eight tasks per worker, 64 to 512 points each.

    At most 512: a chunk's rows (about 5 kB each for the built-in CIM model) then stay
    a few MB, which the worker joins and the parent reads and writes in cache (2048-point
    chunks cost the parent 50% more CPU, measured on the README sweep)."""
    return max(64, min(512, math.ceil(points / (workers * 8))))


def check_executor(kind: str, *, jobs: int | None, scheduler: str | None) -> None:
    """Refuse bad executor options (before any work)."""
    if kind not in EXECUTORS:
        raise UsageError(f"--executor must be one of {', '.join(EXECUTORS)}, got {kind!r}")
    if jobs is not None and jobs < 1:
        raise UsageError(f"--jobs must be >= 1, got {jobs}")
    if jobs is not None and jobs > max_jobs():
        raise UsageError(f"--jobs must be at most {max_jobs()} on this machine ({default_jobs()} cores), "
                         f"got {jobs}")
    if scheduler and kind != "dask":
        raise UsageError("--scheduler needs --executor dask")


def make_executor(kind: str, spec: SweepSpec, evaluator: Evaluator, *, jobs: int | None,
                  scheduler: str | None, points: int | None = None,
                  chunk_size: int | None = None) -> Executor:
    """The executor for ``points`` points in chunks of ``chunk_size`` (default
    :func:`default_chunk_size`): local workers (or a local Dask cluster) are never more
    than the chunks they would share."""
    check_executor(kind, jobs=jobs, scheduler=scheduler)
    n = jobs or default_jobs()
    if points is not None:
        n = max(1, min(n, math.ceil(points / (chunk_size or default_chunk_size(points, n)))))
    if kind == "dask":
        _refuse_in_process_accelerators(evaluator, "Dask workers")
        return DaskExecutor(spec, n, scheduler)
    if n == 1:
        return InProcessExecutor(spec, evaluator)
    return LocalExecutor(spec, n, evaluator)


def _start_forkserver_beside_the_package() -> None:
    """Start the fork server from the directory that holds the imported ``hastily_bench``.

    The server is a fresh ``python -c`` whose first ``sys.path`` entry is its working
    directory, and Python 3.11's server ignores the parent's ``sys.path``: started from a
    source checkout with a non-editable install, it would import the source tree (without
    its compiled kernels) instead of the package the parent runs.
    """
    from multiprocessing import forkserver

    import hastily_bench

    here = os.getcwd()
    try:
        os.chdir(os.path.dirname(os.path.dirname(os.path.abspath(hastily_bench.__file__))))
        forkserver.ensure_running()
    finally:
        os.chdir(here)
