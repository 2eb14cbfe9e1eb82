"""Build the Cython kernels; all metadata lives in pyproject.toml.

Environment switches (all optional):

``HASTILY_DEBUG_BUILD=1``
    bounds checking, no -O3, for hunting memory errors in the kernels.
``HASTILY_NO_OPENMP=1``
    build without OpenMP even when the compiler supports it.
``HASTILY_PORTABLE_BUILD=1``
    do not add ``-march=native`` (for wheels that move between machines).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup

HERE = Path(__file__).parent
DEBUG = os.environ.get("HASTILY_DEBUG_BUILD") == "1"


def _compiler_accepts(flag: str) -> bool:
    """Return True when the C compiler compiles and links a test program with ``flag``."""
    cc = os.environ.get("CC", "cc")
    if shutil.which(cc.split()[0]) is None:
        return False
    src = "#include <omp.h>\nint main(void){return omp_get_max_threads() < 0;}\n"
    if "openmp" not in flag:
        src = "int main(void){return 0;}\n"
    with tempfile.TemporaryDirectory() as tmp:
        c_file = Path(tmp, "t.c")
        c_file.write_text(src)
        res = subprocess.run(
            [*cc.split(), flag, str(c_file), "-o", str(Path(tmp, "t"))],
            capture_output=True,
        )
        return res.returncode == 0


def _flags() -> tuple[list[str], list[str]]:
    compile_args: list[str] = []
    link_args: list[str] = []
    if sys.platform == "win32":
        return (["/O2", "/openmp"], [])
    compile_args += ["-O0", "-g"] if DEBUG else ["-O3"]
    # The kernels must equal the NumPy reference bit for bit: no fused multiply-add
    # (it rounds once where the specification rounds twice), no fast-math reassociation.
    if _compiler_accepts("-ffp-contract=off"):
        compile_args.append("-ffp-contract=off")
    if os.environ.get("HASTILY_PORTABLE_BUILD") != "1" and _compiler_accepts("-march=native"):
        compile_args.append("-march=native")
    if os.environ.get("HASTILY_NO_OPENMP") != "1" and _compiler_accepts("-fopenmp"):
        compile_args.append("-fopenmp")
        link_args.append("-fopenmp")
    return compile_args, link_args


def _extensions() -> list[Extension]:
    compile_args, link_args = _flags()
    exts = []
    for pyx in sorted((HERE / "kernels").glob("*.pyx")):
        exts.append(
            Extension(
                f"hastily_bench.kernels.{pyx.stem}",
                [str(pyx.relative_to(HERE))],
                include_dirs=[numpy.get_include(), "kernels"],
                define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
                extra_compile_args=compile_args,
                extra_link_args=link_args,
            )
        )
    return exts


setup(
    ext_modules=cythonize(
        _extensions(),
        compiler_directives={
            "language_level": 3,
            "boundscheck": DEBUG,
            "wraparound": False,
            "initializedcheck": DEBUG,
            "cdivision": True,
            "nonecheck": False,
            "embedsignature": True,
        },
        annotate=os.environ.get("HASTILY_ANNOTATE") == "1",
    ),
)
