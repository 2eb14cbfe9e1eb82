"""Shared fixtures; also refuses to run the suite against a missing kernel build."""

from __future__ import annotations

import os

import pytest


def pytest_sessionstart(session: pytest.Session) -> None:
    # measure numerics for real in tests, never from a user's cache (tests of the cache set it)
    os.environ["HASTILY_NUMERICS_CACHE"] = "off"
    # CI must never pass green on the NumPy fallback by accident: the compiled
    # kernels are required unless pure-Python mode was asked for explicitly.
    from hastily_bench import kernels

    if not kernels.COMPILED and os.environ.get("HASTILY_PURE_PYTHON") != "1":
        pytest.exit(
            "hastily_bench.kernels: the compiled extension is missing "
            f"({kernels.IMPORT_ERROR}); build it (pip install .) or set HASTILY_PURE_PYTHON=1",
            returncode=1,
        )


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden",
        action="store_true",
        default=False,
        help="rewrite tests/golden/*.json from the current models (review the diff!)",
    )


@pytest.fixture(scope="session")
def host():  # type: ignore[no-untyped-def]
    """A plugin host with the built-ins only (no third-party entry points)."""
    from hastily_bench.host import PluginHost

    return PluginHost(autoload=False)


class CliResult:
    def __init__(self, code: int, out: str, err: str) -> None:
        self.code, self.out, self.err = code, out, err

    def __repr__(self) -> str:
        return f"CliResult(code={self.code}, err={self.err!r}, out={self.out[:200]!r})"


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """Run ``hastily-bench ARGS`` in-process; returns exit code, stdout and stderr."""
    from hastily_bench.cli import main

    monkeypatch.setenv("HASTILY_DISABLE_PLUGIN_AUTOLOAD", "1")

    def run(*args: str) -> CliResult:
        capsys.readouterr()
        with pytest.raises(SystemExit) as exc:
            main(list(args))
        captured = capsys.readouterr()
        code = exc.value.code if isinstance(exc.value.code, int) else 0
        return CliResult(code, captured.out, captured.err)

    return run
