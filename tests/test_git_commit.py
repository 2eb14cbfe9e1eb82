"""`metadata`'s git commit is read from .git without a subprocess; it must agree with git."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from hastily_bench.api import git_commit

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")


def _git(cwd: Path, *args: str) -> str:
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t", "HOME": str(cwd), "PATH": "/usr/bin:/bin"}
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True,
                          text=True).stdout.strip()


def test_git_commit_matches_git_in_checkouts_worktrees_and_packed_refs(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q", "-b", "main")
    assert git_commit(repo) is None  # no commit yet
    (repo / "f").write_text("1")
    _git(repo, "add", "f")
    _git(repo, "commit", "-qm", "one")
    (repo / "sub").mkdir()
    want = _git(repo, "rev-parse", "--short=12", "HEAD")
    assert git_commit(repo) == want and git_commit(repo / "sub") == want
    _git(repo, "pack-refs", "--all")  # the branch now lives in packed-refs only
    assert git_commit(repo) == want
    _git(repo, "worktree", "add", "-q", "-b", "other", str(tmp_path / "wt"))
    (tmp_path / "wt" / "g").write_text("2")
    _git(tmp_path / "wt", "add", "g")
    _git(tmp_path / "wt", "commit", "-qm", "two")
    assert git_commit(tmp_path / "wt") == _git(tmp_path / "wt", "rev-parse", "--short=12", "HEAD") != want
    _git(repo, "checkout", "-q", "--detach")
    assert git_commit(repo) == want
    outside = tmp_path / "plain"
    outside.mkdir()
    assert git_commit(outside) is None
