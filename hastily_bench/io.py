"""Every user file read and every output written goes through this module.

Reading
-------
:func:`read_text`, :func:`load_json`, :func:`load_toml` and :func:`read_csv` turn every
failure into a one-line :class:`~hastily_bench.errors.UsageError`: a missing or unreadable
file, a directory, a file over :data:`MAX_INPUT_BYTES`, bytes that are not UTF-8, malformed
syntax, numbers with more than :data:`MAX_INT_DIGITS` digits (Python's own limit would raise
``ValueError``), nesting deeper than :data:`MAX_DEPTH` (which would otherwise be a
``RecursionError`` here or in a later recursive step such as schema validation), and JSON's
non-standard ``NaN`` / ``Infinity`` constants.

Writing
-------
A command first turns every destination into an :class:`Output` with :func:`output` and
checks them together with :func:`check_outputs` *before any work*: directory exists and is
writable, the name is not too long, the destination is not a directory, not one of the
command's input files, and no two outputs are the same file. Only then does it compute, and
:func:`write_output` writes:

- ``-`` is standard output;
- a regular file (or a missing one) is written atomically: a temporary file in the same
  directory, ``fsync``, ``rename`` over the destination, ``fsync`` of the directory. A reader
  sees the old file or the new one, never half; a completed file survives a crash. The
  temporary file is removed on any failure, on Ctrl-C (SIGINT) and on SIGTERM;
- a symbolic link is followed: its target is replaced atomically and the link stays;
- a character device or a FIFO is written through (opened and written, never replaced).

A failed write (disk full, file-size limit, permission, closed or unencodable standard
output) is a one-line :class:`UsageError`. A closed pipe on standard output
(``hastily-bench run ... | head -1``) is :class:`BrokenPipeError`, which the command line
turns into a quiet exit with status 141 (128 + SIGPIPE, what a shell reports for a program
killed by the signal), after pointing standard output at ``/dev/null`` as the Python
documentation's note on SIGPIPE recommends.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import io
import json
import os
import signal
import stat
import sys
import tempfile
import threading
import tomllib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import Terminated, UsageError

__all__ = [
    "EXIT_BROKEN_PIPE",
    "MAX_DEPTH",
    "MAX_INPUT_BYTES",
    "MAX_INT_DIGITS",
    "Output",
    "check_outputs",
    "load_json",
    "load_toml",
    "output",
    "read_csv",
    "read_text",
    "terminate_as_exit",
    "write_atomic",
    "write_output",
]

#: Largest input file read (64 MiB): far beyond any workload, claims or results file.
MAX_INPUT_BYTES = 64 << 20
#: Deepest nesting of arrays and tables/objects accepted in a JSON or TOML file.
MAX_DEPTH = 32
#: Most digits of an integer literal (Python's own ``int`` string limit is 4300).
MAX_INT_DIGITS = 100
#: Exit status after a closed pipe on standard output: 128 + SIGPIPE, as a shell reports it.
EXIT_BROKEN_PIPE = 128 + 13
#: Standard output is written in pieces of this many characters (see :func:`_write_stdout`).
_STDOUT_CHUNK = 1 << 15
#: Exit status after SIGTERM: 128 + SIGTERM.
EXIT_TERMINATED = 128 + 15


# --------------------------------------------------------------------------- reading


def read_text(path: Path | str, *, what: str = "") -> str:
    """Read a UTF-8 text file (at most :data:`MAX_INPUT_BYTES`); one-line errors.

    A leading byte-order mark is dropped. ``what`` (``"workload file"``) is named in errors.
    """
    p = Path(path)
    label = f"{p}" + (f" ({what})" if what else "")
    try:
        with open(p, "rb") as fh:
            if stat.S_ISDIR(os.fstat(fh.fileno()).st_mode):
                raise UsageError(f"{label}: is a directory")
            data = fh.read(MAX_INPUT_BYTES + 1)
    except FileNotFoundError:
        raise UsageError(f"{label}: no such file") from None
    except IsADirectoryError:
        raise UsageError(f"{label}: is a directory") from None
    except OSError as exc:
        raise UsageError(f"{label}: cannot read ({exc.strerror or exc})") from None
    if len(data) > MAX_INPUT_BYTES:
        raise UsageError(f"{label}: larger than the {MAX_INPUT_BYTES >> 20} MiB limit for input files")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UsageError(
            f"{label}: not a UTF-8 text file (byte 0x{data[exc.start]:02x} at offset {exc.start})"
        ) from None
    return text.removeprefix("\ufeff")


def _check_depth(doc: Any, origin: str) -> None:
    """Refuse nesting deeper than :data:`MAX_DEPTH` (iteratively: no recursion to overflow)."""
    stack: list[tuple[Any, int]] = [(doc, 0)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children: Any = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        if depth >= MAX_DEPTH:
            raise UsageError(f"{origin}: nested more than {MAX_DEPTH} levels deep")
        stack.extend((c, depth + 1) for c in children)


def ascii_int(text: str) -> int:
    """``int(text)`` for text a user typed; ``ValueError`` unless it is ASCII as well
    (``int()`` also reads other scripts' digits, ``"\uff11\uff12"`` is 12)."""
    if not text.isascii():
        raise ValueError(f"not an ASCII number: {text!r}")
    return int(text)


def ascii_float(text: str) -> float:
    """``float(text)`` for text a user typed; ``ValueError`` unless it is ASCII as well."""
    if not text.isascii():
        raise ValueError(f"not an ASCII number: {text!r}")
    return float(text)


def _parse_int(text: str) -> int:
    digits = len(text.lstrip("+-").replace("_", ""))
    if digits > MAX_INT_DIGITS:
        raise _TooManyDigits(digits)
    return int(text)


class _TooManyDigits(ValueError):
    def __init__(self, digits: int) -> None:
        super().__init__(f"an integer has {digits} digits (limit {MAX_INT_DIGITS})")


def _refuse_constant(name: str) -> Any:
    raise _BadConstant(name)


class _BadConstant(ValueError):
    def __init__(self, name: str) -> None:
        super().__init__(f"{name} is not valid JSON (use null or a finite number)")


def parse_json(text: str, origin: str) -> Any:
    """Parse JSON text with this module's limits (see the module docstring)."""
    try:
        doc = json.loads(text, parse_int=_parse_int, parse_constant=_refuse_constant)
    except (_TooManyDigits, _BadConstant) as exc:
        raise UsageError(f"{origin}: {exc}") from None
    except json.JSONDecodeError as exc:
        raise UsageError(f"{origin}: malformed JSON ({exc.msg} at line {exc.lineno})") from None
    except RecursionError:
        raise UsageError(f"{origin}: nested more than {MAX_DEPTH} levels deep") from None
    except ValueError as exc:  # e.g. a float literal Python refuses
        raise UsageError(f"{origin}: malformed JSON ({exc})") from None
    _check_depth(doc, origin)
    return doc


def parse_toml(text: str, origin: str) -> dict[str, Any]:
    """Parse TOML text with this module's limits (see the module docstring)."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{origin}: malformed TOML ({exc})") from None
    except RecursionError:
        raise UsageError(f"{origin}: nested more than {MAX_DEPTH} levels deep") from None
    except ValueError as exc:  # Python's int digit limit, and the like
        if "integer string conversion" in str(exc):
            raise UsageError(f"{origin}: an integer has more than {MAX_INT_DIGITS} digits") from None
        raise UsageError(f"{origin}: malformed TOML ({exc})") from None
    _check_depth(doc, origin)
    _check_toml_ints(doc, origin)
    return doc


def _check_toml_ints(doc: Any, origin: str) -> None:
    stack = [doc]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
        elif isinstance(node, int) and not isinstance(node, bool) and node.bit_length() > 333:
            # 333 bits ~ 100 decimal digits; the exact count would need str() of a huge int
            raise UsageError(f"{origin}: an integer has more than {MAX_INT_DIGITS} digits")


def load_json(path: Path | str, *, what: str = "") -> Any:
    """Read and parse a JSON file; every failure is a one-line :class:`UsageError`."""
    return parse_json(read_text(path, what=what), str(path))


def load_toml(path: Path | str, *, what: str = "") -> dict[str, Any]:
    """Read and parse a TOML file; every failure is a one-line :class:`UsageError`."""
    return parse_toml(read_text(path, what=what), str(path))


def read_csv(path: Path | str | None, *, text: str | None = None, origin: str | None = None,
             comment: str = "#") -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    """Read a CSV file with a header row: ``(header, [(line_number, row), ...])``.

    Blank lines and lines starting with ``comment`` are skipped. Every row must have as
    many fields as the header (a stray quote that swallows a line ends up here). Pass
    ``text`` instead of ``path`` for data already read (``origin`` names it in errors).
    """
    if text is None:
        assert path is not None
        text = read_text(path)
    where = origin or str(path)
    numbered = [(i, ln) for i, ln in enumerate(text.splitlines(), start=1)
                if ln.strip() and not ln.lstrip().startswith(comment)]
    if not numbered:
        raise UsageError(f"{where}: empty CSV file")
    reader = csv.reader([ln for _, ln in numbered], strict=True)
    try:
        header = [h.strip() for h in next(reader)]
        rows: list[tuple[int, dict[str, str]]] = []
        for fields in reader:
            idx = min(reader.line_num, len(numbered)) - 1
            line = numbered[idx][0]
            if len(fields) != len(header):
                raise UsageError(f"{where}: line {line} has {len(fields)} fields, the header has "
                                 f"{len(header)} (a stray quote or comma?)")
            rows.append((line, dict(zip(header, fields, strict=True))))
    except csv.Error as exc:
        line = numbered[min(reader.line_num, len(numbered)) - 1][0]
        raise UsageError(f"{where}: malformed CSV at line {line} ({exc})") from None
    if len(set(header)) != len(header):
        raise UsageError(f"{where}: duplicate column names in the header")
    return header, rows


# --------------------------------------------------------------------------- writing


@dataclass(frozen=True)
class Output:
    """A checked destination: standard output, a file, or a file to write through.

    Made by :func:`output`; ``kind`` is ``"stdout"``, ``"file"`` (atomic replace of
    ``target``, which is ``path`` or, for a symbolic link, the file it points at) or
    ``"through"`` (a character device or FIFO, opened and written).
    """

    path: Path
    kind: str
    target: Path
    option: str = "-o"

    @property
    def is_stdout(self) -> bool:
        return self.kind == "stdout"

    def __str__(self) -> str:
        return "standard output" if self.is_stdout else str(self.path)


def _writable_dir(d: Path) -> bool:
    return os.access(d, os.W_OK | os.X_OK)


def _name_max(d: Path) -> int:
    try:
        return os.pathconf(d, "PC_NAME_MAX")
    except (OSError, ValueError):
        return 255


def output(path: Path | str, *, option: str = "-o") -> Output:
    """Check one destination for writing; ``-`` is standard output.

    Raises :class:`UsageError` (naming ``option``) when it cannot be written: missing or
    unwritable directory, a directory, a name too long, a socket, an unwritable file.
    """
    if str(path) == "-":
        if sys.stdout is None:
            raise UsageError(f"{option} -: standard output is closed")
        return Output(Path("-"), "stdout", Path("-"), option)
    p = Path(path)
    label = f"{option} {p}"
    if not p.name:
        raise UsageError(f"{label}: not a file name")
    target = p
    try:
        st = os.stat(p)  # follows links
        exists = True
    except (FileNotFoundError, NotADirectoryError):
        exists = False  # the directory checks below say what is wrong
    except OSError as exc:
        if exc.errno == errno.ENAMETOOLONG:
            raise UsageError(f"{label}: file name too long") from None
        raise UsageError(f"{label}: cannot use ({exc.strerror})") from None
    if p.is_symlink():
        if not exists:
            raise UsageError(f"{label}: is a dangling symbolic link")
        target = Path(os.path.realpath(p))
    if exists:
        if stat.S_ISDIR(st.st_mode):
            raise UsageError(f"{label}: is a directory")
        if stat.S_ISCHR(st.st_mode) or stat.S_ISFIFO(st.st_mode):
            if not os.access(target, os.W_OK):
                raise UsageError(f"{label}: not writable")
            return Output(p, "through", target, option)
        if not stat.S_ISREG(st.st_mode):
            raise UsageError(f"{label}: not a regular file, character device or FIFO")
    parent = target.parent if str(target.parent) else Path(".")
    if not parent.is_dir():
        what = "is not a directory" if parent.exists() else "does not exist"
        raise UsageError(f"{label}: directory {str(parent)!r} {what}")
    if len(target.name.encode("utf-8", "surrogateescape")) > _name_max(parent):
        raise UsageError(f"{label}: file name too long (more than {_name_max(parent)} bytes)")
    # atomic replace needs a new file in the directory (and, if it exists, the file itself
    # must be ours to replace: an unwritable file is refused as a plain open() would)
    if not _writable_dir(parent):
        raise UsageError(f"{label}: directory {str(parent)!r} is not writable")
    if exists and not os.access(target, os.W_OK):
        raise UsageError(f"{label}: file is not writable")
    return Output(p, "file", target, option)


def output_dir(path: Path | str, *, option: str) -> Path:
    """Check a directory that a command will create (if missing) and write files into."""
    p = Path(path)
    label = f"{option} {p}"
    probe = p
    while not probe.exists():
        if probe.is_symlink():
            raise UsageError(f"{label}: {probe} is a dangling symbolic link")
        parent = probe.parent
        if parent == probe:
            break
        probe = parent
    if not probe.is_dir():
        raise UsageError(f"{label}: {str(probe)!r} exists and is not a directory")
    if not _writable_dir(probe):
        raise UsageError(f"{label}: directory {str(probe)!r} is not writable")
    return p


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.abspath(a) == os.path.abspath(b)


def check_outputs(outputs: Sequence[Output | Path | None], *,
                  inputs: Sequence[Path | str] = ()) -> None:
    """Refuse an output that is one of ``inputs`` or that two outputs share, in one line.

    ``outputs`` holds checked files (:class:`Output`) and checked directories (``Path``
    from :func:`output_dir`); ``None`` entries are skipped.
    """
    real = [o for o in outputs if o is not None]
    files = [o for o in real if isinstance(o, Output) and not o.is_stdout]
    for o in files:
        for i in inputs:
            ip = Path(i)
            if ip.exists() and o.target.exists() and _same_file(ip, o.target):
                raise UsageError(f"{o.option} {o.path}: is also an input of this command; "
                                 "writing it would destroy the input")
    dirs = [o for o in real if isinstance(o, Path)]
    for o in files:
        for d in dirs:
            if os.path.abspath(o.target) == os.path.abspath(d) or (d.exists() and _same_file(o.target, d)):
                raise UsageError(f"{o.option} {o.path}: is also the output directory {d}")
    for n, a in enumerate(files):
        for b in files[n + 1:]:
            if _same_file(a.target, b.target):
                raise UsageError(f"{a.option} {a.path} and {b.option} {b.path} are the same file")
    if sum(1 for o in real if isinstance(o, Output) and o.is_stdout) > 1:
        raise UsageError("only one output can be standard output ('-')")


def _write_error(dest: object, exc: OSError) -> UsageError:
    reason = {errno.EFBIG: "file too large for the file-size limit",
              errno.ENOSPC: "no space left on the device",
              errno.ENAMETOOLONG: "file name too long",
              errno.EACCES: "permission denied",
              errno.EROFS: "read-only file system",
              errno.EDQUOT: "disk quota exceeded"}.get(exc.errno or 0, exc.strerror or str(exc))
    return UsageError(f"cannot write {dest} ({reason})")


def _handler_raising_exit(signum: int, frame: object) -> None:
    raise Terminated(128 + signum)


@contextlib.contextmanager
def terminate_as_exit() -> Iterator[None]:
    """While active, SIGTERM raises :class:`~hastily_bench.errors.Terminated` (a
    ``SystemExit(143)``) so ``finally`` blocks clean up.

    Python turns SIGINT into :class:`KeyboardInterrupt` already; SIGTERM's default action
    kills the process without unwinding. Only the main thread can install handlers, and a
    handler someone else installed is left alone.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGTERM)
    if previous is not signal.SIG_DFL:
        yield
        return
    signal.signal(signal.SIGTERM, _handler_raising_exit)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _fsync_dir(d: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(d, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_atomic(path: Path | str, data: str | bytes) -> None:
    """Write a regular file atomically: temporary file, ``fsync``, rename, directory ``fsync``.

    A failure (including SIGINT and SIGTERM) leaves the old file as it was and no
    temporary file behind. A new file gets the permissions a plain ``open()`` would give;
    an existing one keeps its own.
    """
    dest = output(path)
    if dest.kind != "file":
        write_output(dest, data)
        return
    _replace(dest.target, data, label=str(dest.path))


def _replace(target: Path, data: str | bytes, *, label: str) -> None:
    raw = data.encode("utf-8") if isinstance(data, str) else data
    parent = target.parent if str(target.parent) else Path(".")
    try:
        mode = stat.S_IMODE(os.stat(target).st_mode)
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        mode = 0o666 & ~umask
    tmp: str | None = None
    with terminate_as_exit():
        try:
            fd, tmp = tempfile.mkstemp(prefix=f".{target.name[:64]}.", suffix=".tmp", dir=parent)
            with os.fdopen(fd, "wb") as fh:
                fh.write(raw)
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(tmp, mode)
            os.replace(tmp, target)
            tmp = None
            _fsync_dir(parent)
        except OSError as exc:
            raise _write_error(label, exc) from None
        finally:
            if tmp is not None:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)


def _write_stdout(data: str | bytes) -> None:
    stream: Any = sys.stdout
    if stream is None:
        raise UsageError("cannot write standard output (it is closed)")
    try:
        if isinstance(data, bytes):
            stream.flush()
            stream = stream.buffer
        # in pieces, flushed one by one: a reader that went away shows as EPIPE on the next
        # piece (one large write can end short without any error, and the rest is lost)
        for start in range(0, len(data), _STDOUT_CHUNK):
            stream.write(data[start : start + _STDOUT_CHUNK])
            stream.flush()
        stream.flush()
    except UnicodeEncodeError as exc:
        raise UsageError(unencodable_message(exc)) from None
    except BrokenPipeError:
        raise StdoutPipeClosed from None
    except OSError as exc:
        raise _write_error("standard output", exc) from None


class StdoutPipeClosed(Exception):  # noqa: N818 - an event, not an error
    """The reader of standard output went away (a pipe into ``head``).

    Deliberately not an :class:`OSError`: click would turn that into a bare exit 1.
    """


class GuardedStream:
    """A text stream wrapper whose writes raise :class:`StdoutPipeClosed` on a closed pipe."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def write(self, s: str) -> int:
        try:
            return int(self._stream.write(s))
        except BrokenPipeError:
            raise StdoutPipeClosed from None

    def flush(self) -> None:
        try:
            self._stream.flush()
        except BrokenPipeError:
            raise StdoutPipeClosed from None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def unencodable_message(exc: UnicodeEncodeError) -> str:
    """One line for output that standard output's encoding cannot represent."""
    return (f"cannot write standard output: its encoding ({exc.encoding}) cannot represent "
            f"{exc.object[exc.start:exc.end]!r}; set PYTHONIOENCODING=utf-8 or write a file with -o")


def write_output(dest: Output, data: str | bytes) -> None:
    """Write ``data`` (text is UTF-8 in files) to a destination checked by :func:`output`."""
    if dest.is_stdout:
        _write_stdout(data)
        return
    if dest.kind == "file":
        _replace(dest.target, data, label=str(dest.path))
        return
    raw = data.encode("utf-8") if isinstance(data, str) else data
    try:  # device or FIFO: write through, never replace
        with open(dest.target, "wb") as fh:
            fh.write(raw)
    except OSError as exc:
        raise _write_error(dest.path, exc) from None


def render_to_text(draw: Callable[[Any], None], *, width: int) -> str:
    """Text of what ``draw(console)`` prints on a recording rich console ``width`` wide."""
    from rich.console import Console

    rec = Console(record=True, width=width, file=io.StringIO())
    draw(rec)
    return rec.export_text()
