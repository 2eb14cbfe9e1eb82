"""The ISAAC-style example plugin (built on hastily_bench.cim), installed for real and tested."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from test_example_plugin import TIMEOUT_S, build_isolation_args, outer_site_dirs

EXAMPLE = Path(__file__).parents[1] / "examples" / "hastily-isaac-accel"


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A virtual environment seeing this one's packages, with the ISAAC example pip-installed."""
    root = tmp_path_factory.mktemp("isaac-plugin")
    src = root / "hastily-isaac-accel"
    shutil.copytree(EXAMPLE, src, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    env_dir = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(env_dir)],
                   check=True, timeout=TIMEOUT_S)
    python = env_dir / "bin" / "python"
    purelib = Path(subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        check=True, capture_output=True, text=True, timeout=TIMEOUT_S,
    ).stdout.strip())
    lines = "; ".join(f"site.addsitedir({d!r})" for d in outer_site_dirs())
    (purelib / "_hastily_outer_env.pth").write_text(f"import site; {lines}\n")
    install = subprocess.run(
        [str(python), "-m", "pip", "install", "--no-deps", "--disable-pip-version-check", "--no-input",
         "-q", *build_isolation_args(), str(src)],
        capture_output=True, text=True, timeout=TIMEOUT_S, cwd=root, check=False,
    )
    assert install.returncode == 0, install.stdout + install.stderr
    return env_dir


@pytest.mark.slow
def test_isaac_plugin_runs_through_the_cli(venv: Path) -> None:
    proc = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "from hastily_bench.cli import main; main()", "run",
         "bert-mini", "-a", "isaac-reram", "-l", "128", "--numerics", "off", "--format", "json"],
        capture_output=True, text=True, timeout=TIMEOUT_S, cwd=venv.parent,
        env={k: v for k, v in os.environ.items() if k != "HASTILY_DISABLE_PLUGIN_AUTOLOAD"}, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    (result,) = json.loads(proc.stdout)["results"]
    assert result["status"] == "ok" and result["plugin"] == "isaac-accel"
    assert result["extra"]["imas_available"] == 2016 and result["extra"]["chip_scaled"] is False


@pytest.mark.slow
def test_the_isaac_plugins_own_tests_pass_in_the_venv(venv: Path) -> None:
    proc = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pytest", "tests", "-q", "-p", "no:cacheprovider"],
        capture_output=True, text=True, timeout=TIMEOUT_S, cwd=venv.parent / "hastily-isaac-accel",
        env={k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}, check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert " passed" in proc.stdout
