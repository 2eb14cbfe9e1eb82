"""Shared fixtures; also refuses to run the suite against a missing kernel build."""

from __future__ import annotations

import os

import pytest


def pytest_sessionstart(session: pytest.Session) -> None:
    # CI must never pass green on the NumPy fallback by accident: the compiled
    # kernels are required unless pure-Python mode was asked for explicitly.
    from hastily_bench import kernels

    if not kernels.COMPILED and os.environ.get("HASTILY_PURE_PYTHON") != "1":
        pytest.exit(
            "hastily_bench.kernels: the compiled extension is missing "
            f"({kernels.IMPORT_ERROR}); build it (pip install .) or set HASTILY_PURE_PYTHON=1",
            returncode=1,
        )
