"""The disk cache of measured attention errors: hits, misses, invalidation, opt-out."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hastily_bench import api, numerics_cache
from hastily_bench.numerics_cache import cached


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HASTILY_NUMERICS_CACHE", str(tmp_path))
    numerics_cache.clear_memory()
    yield tmp_path
    numerics_cache.clear_memory()


def _boom() -> float:
    raise AssertionError("computed although cached")


def test_values_are_computed_once_then_read_from_disk(cache: Path) -> None:
    calls = []
    assert cached(("k", 1), lambda: calls.append(1) or 0.25) == 0.25
    assert cached(("k", 1), _boom) == 0.25  # in memory
    numerics_cache.clear_memory()  # a new process
    assert cached(("k", 1), _boom) == 0.25
    assert cached(("k", 2), lambda: 0.5) == 0.5 and calls == [1]
    [f] = cache.glob("numerics-*.json")
    assert f.name == f"numerics-{numerics_cache.fingerprint()}.json"
    doc = json.loads(f.read_text())
    assert doc["schema_version"] == 1 and sorted(doc["values"].values()) == [0.25, 0.5]


def test_other_code_means_another_file_and_bad_files_are_ignored(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cached(("k",), lambda: 1.0)
    monkeypatch.setattr(numerics_cache, "fingerprint", lambda: "0000000000000000")
    numerics_cache.clear_memory()
    assert cached(("k",), lambda: 2.0) == 2.0  # not the other fingerprint's value
    (cache / "numerics-0000000000000000.json").write_text("{not json")
    numerics_cache.clear_memory()
    assert cached(("k",), lambda: 3.0) == 3.0


def test_off_always_computes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HASTILY_NUMERICS_CACHE", "off")
    numerics_cache.clear_memory()
    assert numerics_cache.cache_dir() is None
    assert cached(("k",), lambda: 7.0) == 7.0 and cached(("k",), lambda: 8.0) == 8.0


def test_a_cached_run_equals_a_measured_run(cache: Path, host) -> None:  # type: ignore[no-untyped-def]
    req = api.RunRequest(workloads=["bert-tiny"], seq_lens=[128, 256], numerics="sample")
    first = api.run(req, host=host)
    numerics_cache.clear_memory()
    second = api.run(req, host=host)  # every error and the backend name from the cache file
    assert [r.to_dict() for r in first.results] == [r.to_dict() for r in second.results]
    assert first.metadata["kernels_backend"] == second.metadata["kernels_backend"]
    values = json.loads(next(cache.glob("numerics-*.json")).read_text())["values"]
    assert any("attention_rel_error" in k for k in values) and '["kernels_backend"]' in values


def test_a_corrupt_or_hand_edited_cache_is_a_miss(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(numerics_cache, "fingerprint", lambda: "1111111111111111")
    path = cache / "numerics-1111111111111111.json"
    path.write_text("[" * 100_000)  # too deep for json
    numerics_cache.clear_memory()
    assert cached(("k",), lambda: 4.0) == 4.0
    key = json.dumps(["k"])
    path.write_text(json.dumps({"schema_version": 1, "values": {key: "not a number"}}))
    numerics_cache.clear_memory()
    assert cached(("k",), lambda: 5.0) == 5.0  # a string where a float belongs is recomputed
