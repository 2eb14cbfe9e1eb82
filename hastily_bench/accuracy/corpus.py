"""The evaluation corpus: first sentences of the Python standard library's docstrings.

Real English the project did not write, about code, several thousand sentences. Docstrings
change slightly between Python patch releases, so the extracted corpus ships as a data file
(``stdlib_sentences.txt``, provenance in its ``#`` header) and every machine reads the same
bytes. :func:`extract` regenerates it (``python -m hastily_bench.accuracy.corpus OUT``).

Selection and order
-------------------
For every module of :data:`MODULES` (imported by name, sorted), every public function and
class defined in it (``__module__`` equal to the module, names sorted) and every public
method defined in such a class (names sorted): the first sentence of its own docstring
(``__doc__``, not inherited, ``inspect.cleandoc``): the first paragraph with whitespace collapsed, cut after the first ``". "``
(or its end), kept when it has 4 to 40 words, only printable ASCII, and does not open with a
call signature or an assignment (``ast``'s grammar lines). Duplicates are dropped. The sentences are then ordered by the SHA-256 of their
UTF-8 text, so that the first N of the file are a mix of all modules for any N.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import platform
import re
import sys
from functools import lru_cache
from importlib import resources

__all__ = ["CORPUS_FILE", "MODULES", "extract", "load_sentences"]

CORPUS_FILE = "stdlib_sentences.txt"

#: Standard-library modules whose docstrings make the corpus (pure-Python, present everywhere).
MODULES = (
    "argparse", "ast", "asyncio", "base64", "bisect", "calendar", "cmd", "codecs", "collections",
    "concurrent.futures", "configparser", "contextlib", "copy", "csv", "dataclasses", "datetime",
    "decimal", "difflib", "email", "email.message", "email.utils", "enum", "filecmp",
    "fileinput", "fnmatch", "fractions", "ftplib", "functools", "getopt", "gettext", "glob",
    "gzip", "heapq", "hmac", "html", "html.parser", "http.client", "http.cookies",
    "http.server", "imaplib", "inspect", "ipaddress", "json", "locale", "logging",
    "logging.handlers", "mailbox", "mimetypes", "netrc", "ntpath", "numbers", "operator",
    "optparse", "os", "pathlib", "pdb", "pickle", "pkgutil", "platform", "plistlib",
    "poplib", "posixpath", "pprint", "pydoc", "queue", "quopri", "random", "re", "reprlib",
    "sched", "secrets", "selectors", "shelve", "shlex", "shutil", "smtplib", "socket",
    "socketserver", "statistics", "string", "subprocess", "tarfile", "tempfile", "textwrap",
    "threading", "timeit", "tokenize", "trace", "traceback", "types", "typing", "unittest",
    "unittest.mock", "urllib.parse", "urllib.request", "uuid", "warnings", "wave", "weakref",
    "xml.dom.minidom", "xml.etree.ElementTree", "zipfile",
)

_SIGNATURE = re.compile(r"^[\w.]+\(|^\w+ = ")
_PRINTABLE = re.compile(r"^[\x20-\x7e]+$")


def _first_sentence(doc: str) -> str | None:
    para = " ".join(doc.strip().split("\n\n", 1)[0].split())
    cut = para.find(". ")
    sentence = para if cut < 0 else para[: cut + 1]
    words = sentence.split()
    if not 4 <= len(words) <= 40 or not _PRINTABLE.match(sentence) or _SIGNATURE.match(sentence):
        return None
    return sentence


def extract() -> list[str]:
    """Extract the corpus from the running interpreter's standard library (see module doc).

    Returns
    -------
    list of str
        The sentences in corpus order.
    """
    found: dict[str, None] = {}
    for modname in sorted(MODULES):
        module = importlib.import_module(modname)
        for name in sorted(vars(module)):
            obj = vars(module)[name]
            if name.startswith("_") or not (inspect.isclass(obj) or inspect.isfunction(obj)):
                continue
            if getattr(obj, "__module__", None) != modname:
                continue
            objs = [obj]
            if inspect.isclass(obj):
                objs += [vars(obj)[m] for m in sorted(vars(obj))
                         if not m.startswith("_") and inspect.isfunction(vars(obj)[m])]
            for item in objs:
                doc = item.__doc__ if isinstance(item.__doc__, str) else None
                sentence = _first_sentence(inspect.cleandoc(doc)) if doc else None
                if sentence is not None:
                    found.setdefault(sentence)
    return sorted(found, key=lambda s: hashlib.sha256(s.encode()).hexdigest())


def render(sentences: list[str]) -> str:
    """The data file's text: a provenance header and one sentence per line."""
    header = [
        "# First sentences of docstrings of Python's standard library (hastily_bench.accuracy.corpus).",
        f"# Extracted with CPython {platform.python_version()} ({sys.platform}) by",
        "#   python -m hastily_bench.accuracy.corpus hastily_bench/accuracy/stdlib_sentences.txt",
        "# Text: Python Software Foundation, PSF License Agreement (docstrings of the standard library).",
        f"# {len(sentences)} sentences, ordered by SHA-256 of their text.",
    ]
    return "\n".join(header + sentences) + "\n"


@lru_cache(maxsize=1)
def _shipped() -> tuple[str, ...]:
    text = resources.files("hastily_bench.accuracy").joinpath(CORPUS_FILE).read_text("utf-8")
    return tuple(line for line in text.splitlines() if line and not line.startswith("#"))


def load_sentences(n: int | None = None) -> list[str]:
    """The first ``n`` sentences of the shipped corpus (all when ``n`` is None).

    Raises
    ------
    ValueError
        When ``n`` is below 2 or above the corpus size.
    """
    sentences = _shipped()
    if n is None:
        return list(sentences)
    if isinstance(n, bool) or not isinstance(n, int) or not 2 <= n <= len(sentences):
        raise ValueError(f"sentences: expected an integer in [2, {len(sentences)}], got {n!r}")
    return list(sentences[:n])


def _main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m hastily_bench.accuracy.corpus OUT", file=sys.stderr)
        return 2
    with open(argv[0], "w", encoding="utf-8", newline="\n") as fh:
        fh.write(render(extract()))
    return 0


if __name__ == "__main__":
    raise SystemExit(_main(sys.argv[1:]))
