"""The example third-party plugin, installed for real with pip into a fresh virtual environment."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import site
import subprocess
import sys
from pathlib import Path

import pytest

import hastily_bench

EXAMPLE = Path(__file__).parents[1] / "examples" / "hastily-example-accel"
TIMEOUT_S = 120


def build_isolation_args() -> list[str]:
    """Build offline with this environment's setuptools when it can make wheels by itself.

    setuptools >= 70.1 builds wheels without the ``wheel`` package; otherwise let
    pip fetch the build requirements into an isolated environment.
    """
    try:
        import setuptools
    except ImportError:
        return []
    major_minor = tuple(int(x) for x in setuptools.__version__.split(".")[:2] if x.isdigit())
    if major_minor >= (70, 1) or importlib.util.find_spec("wheel") is not None:
        return ["--no-build-isolation"]
    return []


def outer_site_dirs() -> list[str]:
    """Where this interpreter finds hastily_bench and its dependencies.

    ``site.addsitedir`` on each, from a ``.pth`` file, also processes their own
    ``.pth`` files, so editable installs and development links keep working.
    """
    dirs = [*site.getsitepackages()]
    if site.ENABLE_USER_SITE:
        dirs.append(site.getusersitepackages())
    dirs.append(str(Path(hastily_bench.__file__).resolve().parents[1]))
    return list(dict.fromkeys(d for d in dirs if Path(d).is_dir()))


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A virtual environment seeing this one's packages, with the example plugin pip-installed."""
    root = tmp_path_factory.mktemp("example-plugin")
    src = root / "hastily-example-accel"
    # build from a copy: setuptools writes build/ and *.egg-info next to the sources
    shutil.copytree(
        EXAMPLE, src, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__")
    )
    env_dir = root / "venv"
    subprocess.run(
        [sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(env_dir)],
        check=True,
        timeout=TIMEOUT_S,
    )
    python = env_dir / "bin" / "python"
    purelib = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
            check=True,
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
        ).stdout.strip()
    )
    lines = "; ".join(f"site.addsitedir({d!r})" for d in outer_site_dirs())
    (purelib / "_hastily_outer_env.pth").write_text(f"import site; {lines}\n")
    install = subprocess.run(
        [
            str(python),
            "-m",
            "pip",
            "install",
            "--no-deps",
            "--disable-pip-version-check",
            "--no-input",
            "-q",
            *build_isolation_args(),
            str(src),
        ],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        cwd=root,
        check=False,
    )
    assert install.returncode == 0, install.stdout + install.stderr
    return env_dir


def hb(venv: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the hastily-bench command with the venv's interpreter, outside the source tree."""
    env = {k: v for k, v in os.environ.items() if k != "HASTILY_DISABLE_PLUGIN_AUTOLOAD"}
    return subprocess.run(
        [str(venv / "bin" / "python"), "-c", "from hastily_bench.cli import main; main()", *args],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        cwd=venv.parent,
        env=env,
        check=False,
    )


@pytest.mark.slow
def test_plugin_is_installed_in_the_venv_not_here(venv: Path) -> None:
    out = subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-c",
            (
                "import hastily_example_accel, importlib.metadata as m; "
                "print(hastily_example_accel.__file__); print(m.version('hastily-example-accel'))"
            ),
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        cwd=venv.parent,
    ).stdout.split()
    assert Path(out[0]).is_relative_to(venv) and out[1] == "0.1.0"
    assert importlib.util.find_spec("hastily_example_accel") is None


@pytest.mark.slow
def test_accelerators_and_plugins_list_it_with_its_distribution(venv: Path) -> None:
    proc = hb(venv, "accelerators", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    accels = {a["name"]: a for a in json.loads(proc.stdout)}
    systolic = accels["systolic-128"]
    assert (systolic["plugin"], systolic["distribution"], systolic["version"]) == (
        "example-accel",
        "hastily-example-accel",
        "0.1.0",
    )
    assert systolic["default"] is False and systolic["arithmetic"] == "int8+exact-exp"
    assert systolic["params"]["pe_rows"] == {
        "value": 128,
        "unit": "PEs",
        "source": "paper",
        "description": "rows of the array = input (k) elements consumed per cycle",
        "note": "Norrie et al., 'The design process for Google's training chips: TPUv2 and TPUv3', "
        "IEEE Micro 2021: 128 x 128 MXU",
    }
    assert "a40-tensorrt" in accels
    proc = hb(venv, "plugins", "--format", "json")
    plugin = next(p for p in json.loads(proc.stdout) if p["name"] == "example-accel")
    assert (plugin["status"], plugin["distribution"], plugin["builtin"]) == (
        "loaded",
        "hastily-example-accel",
        False,
    )
    assert plugin["accelerators"] == ["systolic-128"]


@pytest.mark.slow
def test_run_reports_both_accelerators_ok(venv: Path) -> None:
    proc = hb(
        venv,
        "run",
        "bert-base",
        "-a",
        "systolic-128",
        "-a",
        "a40-tensorrt",
        "-l",
        "128",
        "--numerics",
        "off",
        "--format",
        "json",
    )
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    results = {r["accelerator"]: r for r in doc["results"]}
    assert set(results) == {"systolic-128", "a40-tensorrt"}
    assert all(r["status"] == "ok" for r in results.values())
    systolic = results["systolic-128"]
    assert systolic["plugin"] == "example-accel"
    assert 0 < systolic["tops"] <= systolic["extra"]["peak_tops"] == pytest.approx(32.768)
    assert systolic["extra"]["weights_resident"] is False
    assert any(p["distribution"] == "hastily-example-accel" for p in doc["metadata"]["plugins"])
    # an override reaches the installed plugin; an unknown parameter is one line, exit 2
    proc = hb(
        venv,
        "run",
        "bert-base",
        "-a",
        "systolic-128",
        "-l",
        "128",
        "--numerics",
        "off",
        "--format",
        "json",
        "--set",
        "systolic-128.dram_bandwidth_gbs=1000",
    )
    faster = json.loads(proc.stdout)["results"][0]
    assert faster["latency_s"] < systolic["latency_s"]
    proc = hb(venv, "run", "bert-base", "-a", "systolic-128", "--set", "systolic-128.pe_row=64")
    assert proc.returncode == 2 and "did you mean 'pe_rows'" in proc.stderr


@pytest.mark.slow
def test_disabling_autoload_hides_it(venv: Path) -> None:
    env_proc = subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-c",
            "from hastily_bench.cli import main; main()",
            "run",
            "bert-base",
            "-a",
            "systolic-128",
            "-l",
            "128",
            "--numerics",
            "off",
        ],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        cwd=venv.parent,
        env={**os.environ, "HASTILY_DISABLE_PLUGIN_AUTOLOAD": "1"},
        check=False,
    )
    assert env_proc.returncode == 2 and "unknown accelerator 'systolic-128'" in env_proc.stderr


@pytest.mark.slow
def test_the_plugins_own_tests_pass_in_the_venv(venv: Path) -> None:
    src = venv.parent / "hastily-example-accel"
    proc = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pytest", "tests", "-q", "-p", "no:cacheprovider"],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        cwd=src,
        env={k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")},
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert " passed" in proc.stdout
