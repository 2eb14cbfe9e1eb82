from __future__ import annotations

import json

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from hastily_bench.errors import UsageError
from hastily_bench.params import Param, ParamSet, params_from_mapping


@pytest.fixture
def ps() -> ParamSet:
    return ParamSet([
        Param("clock_hz", 1e9, "Hz", "assumed", minimum=1.0),
        Param("lanes", 16, "lanes", "paper", minimum=1),
        Param("lut_exp", True, "", "paper"),
        Param("mode", "linear", "", "paper", choices=("none", "linear")),
    ])


def test_override_parses_to_the_parameter_type(ps: ParamSet) -> None:
    q = ps.override("clock_hz", "2e9").override("lanes", "32").override("lut_exp", "false")
    assert q.f("clock_hz") == 2e9 and q.i("lanes") == 32 and q.b("lut_exp") is False
    assert q["lanes"].source == "user" and "was 16" in q["lanes"].note
    assert ps.i("lanes") == 16  # immutable


@pytest.mark.parametrize(("name", "value", "msg"), [
    ("lanes", "3.5", "takes an integer"),
    ("clock_hz", "fast", "takes a number"),
    ("lut_exp", "maybe", "takes true/false"),
    ("mode", "cubic", "not one of none, linear"),
    ("lanes", "0", "below"),
    ("clock_hz", "nan", "finite"),
    ("lanes", "\uff13\uff12", "takes an integer"),  # fullwidth "32": int() would read it
    ("clock_hz", "\u0662e9", "takes a number"),  # Arabic-Indic 2
])
def test_bad_values(ps: ParamSet, name: str, value: str, msg: str) -> None:
    with pytest.raises(UsageError, match=msg):
        ps.override(name, value)


def test_unknown_parameter_suggests(ps: ParamSet) -> None:
    with pytest.raises(UsageError, match="did you mean 'lanes'"):
        ps.override("lane", "3")


def test_digest_changes_with_values(ps: ParamSet) -> None:
    assert ps.digest() == ParamSet(list(ps.values())).digest()
    assert ps.digest() != ps.override("lanes", "8").digest()
    assert ps.digest("plugin 1.0") != ps.digest("plugin 1.1")


def test_mapping_requires_value_and_known_source() -> None:
    with pytest.raises(UsageError, match="must be a table with a 'value'"):
        params_from_mapping({"x": 3}, origin="f.toml")
    with pytest.raises(UsageError, match="source 'guess'"):
        params_from_mapping({"x": {"value": 3, "source": "guess"}}, origin="f.toml")


@settings(max_examples=200, deadline=None)
@given(swaps=st.lists(st.tuples(st.sampled_from(["f", "i", "b"]),
                                st.one_of(st.floats(allow_nan=False, allow_infinity=False),
                                          st.integers(-5, 5), st.booleans())), max_size=6))
@example(swaps=[("f", 0.0), ("f", -0.0), ("i", 1), ("f", 1), ("b", True)])
def test_replaced_sets_print_and_hash_as_fresh_ones(swaps) -> None:  # type: ignore[no-untyped-def]
    """The cached JSON members of sets made by ``replacing`` (0.0 and -0.0, 1 and 1.0
    included) equal a fresh set's, so rows and params_hash do not depend on the path."""
    base = ParamSet([Param("f", 1.0), Param("i", 1), Param("b", False)])
    base.values_json()
    cur = base
    for name, value in swaps:
        kind = type(base[name].value)
        if kind is bool and type(value) is not bool or kind is not bool and type(value) is bool:
            continue
        v = float(value) if kind is float else int(value) if kind is int else value
        cur = cur.replacing([Param(name, v)])
        fresh = ParamSet(list(cur.values()))
        assert cur.to_json() == json.dumps(cur.as_dict(), separators=(",", ":")) == fresh.to_json()
        assert cur.digest("x") == fresh.digest("x")


_NAMES = ["m", "c", "z", "a", "q", "b", "y", "d"]  # definition order is not sorted order


@settings(max_examples=200, deadline=None)
@given(swaps=st.lists(st.tuples(st.sampled_from(_NAMES), st.integers(-3, 3)), max_size=6),
       asks=st.lists(st.lists(st.sampled_from(_NAMES), max_size=8).map(tuple), max_size=4),
       again=st.lists(st.tuples(st.sampled_from(_NAMES), st.integers(-3, 3)), max_size=3))
def test_copies_of_a_base_share_its_runs_and_keys_exactly(swaps, asks, again) -> None:  # type: ignore[no-untyped-def]
    """A copy made by ``replacing`` joins its base's unchanged JSON runs with its own members
    and patches the base's ``values_of`` answers: every text, hash and key equals a fresh
    set's, whichever names are swapped (first, last, adjacent, twice) and asked for."""
    base = ParamSet([Param(n, k) for k, n in enumerate(_NAMES)])
    base.values_json()
    for names in asks:
        base.values_of(names)  # the base answers some first
    copies = [base.replacing([Param(n, v) for n, v in swaps])]
    copies.append(copies[0].replacing([Param(n, v) for n, v in again]))  # a copy of a copy
    copies.append(base.replacing([Param(n, v) for n, v in swaps]))  # the base's runs again
    for cur in copies:
        fresh = ParamSet(list(cur.values()))
        assert cur.to_json() == fresh.to_json() == json.dumps(cur.as_dict(), separators=(",", ":"))
        assert cur.digest("x") == fresh.digest("x")
        for names in [*asks, tuple(_NAMES), tuple(reversed(_NAMES))]:
            assert cur.values_of(names) == fresh.values_of(names) == tuple(cur[n].value for n in names)
