"""Namespaced presets: flattening, the consumed-key check, the shipped example."""

from __future__ import annotations

from pathlib import Path

import pytest

from hastily_bench import api
from hastily_bench.cim import (
    ADC,
    Chip,
    check_consumed,
    example_preset_path,
    flatten_params,
    load_component_params,
    load_component_preset,
)
from hastily_bench.errors import UsageError
from hastily_bench.params import load_toml


def spec(value: object, **extra: object) -> dict[str, object]:
    return {"value": value, **extra}


def test_groups_flatten_to_prefixed_names_with_their_metadata() -> None:
    table = {
        "adc": {"bits": spec(6, unit="bits", source="paper", note="6-bit ADCs", min=4, max=16)},
        "vfu": {"exp": {"method": spec("table", choices=["polynomial", "table"])}},
        "lut_exp": spec(True, source="paper"),
    }
    p = load_component_params(table, "t.toml")
    assert list(p) == ["adc_bits", "vfu_exp_method", "lut_exp"]
    bits = p["adc_bits"]
    assert (bits.value, bits.unit, bits.source, bits.note, bits.minimum, bits.maximum) == (
        6, "bits", "paper", "6-bit ADCs", 4, 16)
    assert p["vfu_exp_method"].choices == ("polynomial", "table")
    assert p.override("adc_bits", "8").i("adc_bits") == 8  # what --set hastily.adc_bits=8 does
    with pytest.raises(UsageError, match="above 16"):
        p.override("adc_bits", "17")


@pytest.mark.parametrize(("table", "msg"), [
    ({"adc": {"bits": spec(6)}, "adc_bits": spec(7)}, "'adc_bits' is defined twice"),
    ({"adc": {"bits": 6}}, "'adc_bits' must be a table"),
    ({"adc": {}}, "group 'adc' is empty"),
    ({"adc": {"bits": spec(6, colour="red")}}, "unknown keys"),
    ({"adc": {"bits": spec(6, source="rumour")}}, "source 'rumour'"),
])
def test_malformed_tables_fail_in_one_line(table: dict[str, object], msg: str) -> None:
    with pytest.raises(UsageError, match=msg) as exc:
        load_component_params(table, "t.toml")
    assert "\n" not in str(exc.value) and str(exc.value).startswith("t.toml: ")


def test_a_key_no_component_reads_fails_loading() -> None:
    doc = load_toml(example_preset_path("hastily-paper"))
    doc["params"]["adc"]["bit"] = spec(6)  # misspelt
    with pytest.raises(UsageError, match=r"'adc_bit' read by no component \(did you mean 'adc_bits'") as exc:
        load_component_params(doc["params"], "p.toml", consumers=[Chip.param_keys()])
    assert "\n" not in str(exc.value)
    # the same table loads when a model declares the key as its own
    load_component_params(doc["params"], "p.toml", consumers=[Chip.param_keys(), {"adc_bit"}])


def test_a_key_a_component_needs_must_be_present() -> None:
    table = flatten_params(load_toml(example_preset_path("hastily-paper"))["params"], origin="x")
    del table["adc_ref_bits"]
    with pytest.raises(UsageError, match="missing parameter 'adc_ref_bits'"):
        load_component_params(table, "p.toml", consumers=[Chip.param_keys()])


def test_check_consumed_accepts_exact_cover() -> None:
    check_consumed({"adc_bits": 1}, [{"adc_bits"}], origin="x")
    with pytest.raises(UsageError, match="parameters 'a', 'b' read by no component"):
        check_consumed({"a": 1, "b": 2}, [set()], origin="x")


def test_shipped_example_preset_loads_and_every_value_has_a_source() -> None:
    p = load_component_preset(example_preset_path("hastily-paper"), consumers=[Chip.param_keys()])
    assert set(p) == set(Chip.param_keys())
    assert ADC.param_keys() <= set(p)
    for param in p.values():
        assert param.note or param.description, f"{param.name} says nowhere where it comes from"
        if param.source == "assumed":
            assert param.note or param.description
    assert p.i("adc_bits") == 6 and p.i("array_lut_entries") == 128 and p.i("vfu_lanes") == 16
    with pytest.raises(UsageError, match="no CIM component preset named 'isaac2'"):
        example_preset_path("isaac2")


def test_preset_file_errors(tmp_path: Path) -> None:
    f = tmp_path / "p.toml"
    f.write_text("[params.adc]\nbits = { value = 6 }\n")
    with pytest.raises(UsageError, match="missing 'schema_version'"):
        load_component_preset(f)
    f.write_text("schema_version = 1\n")
    with pytest.raises(UsageError, match=r"missing \[params\] table"):
        load_component_preset(f)


def test_public_api_reexports_the_library() -> None:
    for name in ("ADC", "Chip", "CellArray", "VFU", "ExpRoutine", "map_weights", "map_kv", "capacity",
                 "load_component_params", "load_component_preset", "check_consumed"):
        assert name in api.__all__ and getattr(api, name) is not None
