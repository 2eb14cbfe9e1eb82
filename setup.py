"""Build the Cython kernels; all metadata lives in pyproject.toml.

Environment switches (all optional):

``HASTILY_DEBUG_BUILD=1``
    bounds checking, no -O3, for hunting memory errors in the kernels.
``HASTILY_NO_OPENMP=1``
    build without OpenMP even when the compiler supports it.
``HASTILY_PORTABLE_BUILD=1``
    accepted for compatibility; every build is portable now. The kernels are compiled once
    per SIMD level (``kernels/simd/hb_level_*.c`` with the flags of ``_LEVEL_FLAGS``) and the
    best level the CPU supports is chosen at import (``hastily_bench.kernels.backend()``), so
    no ``-march=native`` is needed and a wheel runs on any x86-64 (aarch64: scalar).
``HASTILY_TARGET_MACHINE=aarch64``
    the machine to build for when it is not this one's ``platform.machine()``: only x86
    builds the AVX2 and AVX-512 levels.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HERE = Path(__file__).parent
DEBUG = os.environ.get("HASTILY_DEBUG_BUILD") == "1"


def _compiler_accepts(flag: str) -> bool:
    """Return True when the C compiler compiles and links a test program with ``flag``."""
    src = "#include <omp.h>\nint main(void){return omp_get_max_threads() < 0;}\n"
    if "openmp" not in flag:
        src = "int main(void){return 0;}\n"
    return _compiles(src, [flag])


def _compiles(src: str, flags: list[str]) -> bool:
    """Return True when the C compiler compiles and links ``src`` with ``flags``."""
    cc = os.environ.get("CC", "cc")
    if shutil.which(cc.split()[0]) is None:
        return False
    with tempfile.TemporaryDirectory() as tmp:
        c_file = Path(tmp, "t.c")
        c_file.write_text(src)
        res = subprocess.run(
            [*cc.split(), *flags, str(c_file), "-o", str(Path(tmp, "t"))],
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
    if os.environ.get("HASTILY_NO_OPENMP") != "1" and _compiler_accepts("-fopenmp"):
        compile_args.append("-fopenmp")
        link_args.append("-fopenmp")
    return compile_args, link_args


SIMD_DIR = Path("kernels", "simd")
#: Extra flags of each SIMD level's translation unit (GCC/Clang; MSVC: /arch:). The scalar
#: level gets none: it runs on any CPU of the platform.
_LEVEL_FLAGS = {
    "avx2": ["-mavx2"],
    "avx512": ["-mavx2", "-mavx512f", "-mavx512dq", "-mavx512bw", "-mavx512vl", "-mavx512vnni"],
}
#: MSVC: AVX2 only (its /arch:AVX512 does not enable the VNNI the avx512 level needs).
_MSVC_LEVEL_FLAGS = {"avx2": ["/arch:AVX2"]}
#: A probe per level: the intrinsics it needs must compile with its flags.
_LEVEL_PROBE = {
    "avx2": "#include <immintrin.h>\nint main(void){__m256i a = _mm256_set1_epi32(1);"
    "return _mm256_extract_epi32(_mm256_add_epi32(a, a), 0) != 2;}\n",
    "avx512": "#include <immintrin.h>\nint main(void){__m512i a = _mm512_set1_epi32(1);"
    "a = _mm512_dpwssd_epi32(a, a, a); return _mm512_reduce_add_epi32(a) == 0;}\n",
}


def _x86() -> bool:
    machine = os.environ.get("HASTILY_TARGET_MACHINE", platform.machine()).lower()
    return machine in ("x86_64", "amd64", "i686", "x86")


def _simd_levels() -> dict[str, list[str]]:
    """SIMD levels to compile beside scalar, with their flags: x86 only, and only those the
    compiler accepts (an old compiler builds fewer levels; dispatch then offers fewer)."""
    if not _x86():
        return {}
    if sys.platform == "win32":
        return dict(_MSVC_LEVEL_FLAGS)
    return {lv: f for lv, f in _LEVEL_FLAGS.items() if _compiles(_LEVEL_PROBE[lv], f)}


class BuildExt(build_ext):
    """build_ext that compiles ``kernels/simd/hb_level_*.c`` once per level with that level's
    flags (a setuptools Extension has one set of flags for all its sources) and links the
    objects into every kernel extension."""

    def build_extension(self, ext: Extension) -> None:
        levels = _simd_levels()
        macros: list[tuple[str, str | None]] = [(f"HB_BUILT_{lv.upper()}", "1") for lv in levels]
        base = [a for a in ext.extra_compile_args if "openmp" not in a]
        if sys.platform != "win32":
            base += ["-Wall", "-Wextra"]
        units = [("hb_dispatch.c", [], macros), ("hb_peak.c", [], []), ("hb_level_scalar.c", [], [])]
        units += [(f"hb_level_{lv}.c", flags, []) for lv, flags in levels.items()]
        headers = [str(p) for p in sorted(SIMD_DIR.glob("*.h"))]
        objects: list[str] = []
        for src, flags, defs in units:
            objects += self.compiler.compile(
                [str(SIMD_DIR / src)],
                output_dir=os.path.join(self.build_temp, ext.name),
                macros=defs,
                include_dirs=[str(SIMD_DIR)],
                extra_postargs=base + flags,
                depends=headers,
                debug=self.debug,
            )
        ext.extra_objects = [*objects, *(ext.extra_objects or [])]
        ext.depends = [*headers, *(ext.depends or [])]
        super().build_extension(ext)


def _extensions() -> list[Extension]:
    compile_args, link_args = _flags()
    exts = []
    for pyx in sorted((HERE / "kernels").glob("*.pyx")):
        exts.append(
            Extension(
                f"hastily_bench.kernels.{pyx.stem}",
                [str(pyx.relative_to(HERE))],
                include_dirs=[numpy.get_include(), "kernels", str(SIMD_DIR)],
                define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
                extra_compile_args=compile_args,
                extra_link_args=link_args,
            )
        )
    return exts


setup(
    cmdclass={"build_ext": BuildExt},
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
