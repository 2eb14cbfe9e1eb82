"""hastily_bench.io: the limits of the readers and the checks and paths of the writers."""

from __future__ import annotations

import os
import socket
import stat
from pathlib import Path

import pytest

from hastily_bench import io as hio
from hastily_bench.errors import UsageError


def test_read_text_drops_bom_and_names_bad_bytes(tmp_path: Path) -> None:
    p = tmp_path / "a.toml"
    p.write_bytes("\ufeffx = 1\n".encode())
    assert hio.load_toml(p) == {"x": 1}
    p.write_bytes(b"x = 1\n\xe4\n")
    with pytest.raises(UsageError, match=r"not a UTF-8 text file \(byte 0xe4 at offset 6\)"):
        hio.read_text(p)


def test_read_text_refuses_directories_missing_and_oversized(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(UsageError, match="is a directory"):
        hio.read_text(tmp_path)
    with pytest.raises(UsageError, match="no such file"):
        hio.read_text(tmp_path / "absent")
    p = tmp_path / "big.json"
    p.write_text("[" + "1," * 100 + "1]")
    monkeypatch.setattr(hio, "MAX_INPUT_BYTES", 64)
    with pytest.raises(UsageError, match="larger than the"):
        hio.load_json(p)


def test_read_text_of_an_endless_device_stops_at_the_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hio, "MAX_INPUT_BYTES", 1 << 16)
    with pytest.raises(UsageError, match="larger than"):
        hio.read_text("/dev/zero")


@pytest.mark.parametrize(("text", "message"), [
    ('{"a": NaN}', "NaN is not valid JSON"),
    ('{"a": -Infinity}', "-Infinity is not valid JSON"),
    ("[" * 33 + "]" * 33, "nested more than 32"),
    ("[" * 50_000, "nested"),
    ("1" * 101, "101 digits"),
    ("{", "malformed JSON"),
])
def test_parse_json_limits(text: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        hio.parse_json(text, "x.json")


def test_parse_json_accepts_the_limits_exactly() -> None:
    assert hio.parse_json("[" * 32 + "]" * 32, "x") is not None
    assert hio.parse_json("9" * 100, "x") == int("9" * 100)
    assert hio.parse_json("1e400", "x") == float("inf")  # a float, refused later where it matters


@pytest.mark.parametrize(("text", "message"), [
    ("a = " + "9" * 200, "more than 100 digits"),
    ("a = " + "9" * 5000, "more than 100 digits"),
    ("a = " + "[" * 40 + "]" * 40, "nested more than 32"),
    ("a = " + "[" * 3000 + "]" * 3000, "nested"),
    ("a = \n", "malformed TOML"),
])
def test_parse_toml_limits(text: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        hio.parse_toml(text, "x.toml")


def test_read_csv_counts_fields_and_skips_comments(tmp_path: Path) -> None:
    header, rows = hio.read_csv(None, text="# note\na,b\n\n1,2\n3,4\n", origin="m.csv")
    assert header == ["a", "b"] and rows == [(4, {"a": "1", "b": "2"}), (5, {"a": "3", "b": "4"})]
    with pytest.raises(UsageError, match="line 2 has 3 fields, the header has 2"):
        hio.read_csv(None, text="a,b\n1,2,3\n", origin="m.csv")
    with pytest.raises(UsageError, match="m.csv: "):
        hio.read_csv(None, text='a,b\n"1,2\n3,4\n', origin="m.csv")
    with pytest.raises(UsageError, match="duplicate column"):
        hio.read_csv(None, text="a,a\n1,2\n", origin="m.csv")


def test_output_kinds(tmp_path: Path) -> None:
    assert hio.output("-").is_stdout
    plain = hio.output(tmp_path / "o.json")
    assert plain.kind == "file" and plain.target == tmp_path / "o.json"
    target = tmp_path / "t.json"
    target.write_text("")
    (tmp_path / "l.json").symlink_to(target)
    link = hio.output(tmp_path / "l.json")
    assert link.kind == "file" and link.target == target.resolve()
    fifo = tmp_path / "f"
    os.mkfifo(fifo)
    assert hio.output(fifo).kind == "through"


def test_output_refusals(tmp_path: Path) -> None:
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    with pytest.raises(UsageError, match="dangling symbolic link"):
        hio.output(tmp_path / "dangling")
    with pytest.raises(UsageError, match="is a directory"):
        hio.output(tmp_path)
    sock_path = tmp_path / "s"
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(sock_path))
        with pytest.raises(UsageError, match="not a regular file"):
            hio.output(sock_path)


def test_check_outputs_refuses_shared_files(tmp_path: Path) -> None:
    a = hio.output(tmp_path / "a.json", option="--results")
    b = hio.output(tmp_path / "a.json", option="-o")
    with pytest.raises(UsageError, match="are the same file"):
        hio.check_outputs([a, b])
    with pytest.raises(UsageError, match="is also the output directory"):
        hio.check_outputs([a, tmp_path / "a.json"])
    (tmp_path / "in.json").write_text("{}")
    with pytest.raises(UsageError, match="is also an input"):
        hio.check_outputs([hio.output(tmp_path / "in.json")], inputs=[tmp_path / "in.json"])
    hio.check_outputs([a, None, tmp_path / "figs"], inputs=[tmp_path / "absent.json"])


def test_write_atomic_keeps_existing_mode_and_new_files_follow_umask(tmp_path: Path) -> None:
    p = tmp_path / "x.txt"
    p.write_text("old")
    p.chmod(0o640)
    hio.write_atomic(p, "new")
    assert p.read_text() == "new" and stat.S_IMODE(p.stat().st_mode) == 0o640
    umask = os.umask(0o022)
    try:
        hio.write_atomic(tmp_path / "y.bin", b"\x00\x01")
    finally:
        os.umask(umask)
    assert stat.S_IMODE((tmp_path / "y.bin").stat().st_mode) == 0o644
    assert (tmp_path / "y.bin").read_bytes() == b"\x00\x01"
    assert sorted(q.name for q in tmp_path.iterdir()) == ["x.txt", "y.bin"]


def test_write_error_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def enospc(*args: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(hio.os, "replace", enospc)
    with pytest.raises(UsageError, match=r"cannot write .*x.txt \(no space left on the device\)"):
        hio.write_atomic(tmp_path / "x.txt", "data")
    assert list(tmp_path.iterdir()) == []


def test_guarded_stream_turns_a_closed_pipe_into_its_own_exception() -> None:
    class Broken:
        encoding = "utf-8"

        def write(self, s: str) -> int:
            raise BrokenPipeError(32, "Broken pipe")

        def flush(self) -> None:
            raise BrokenPipeError(32, "Broken pipe")

    g = hio.GuardedStream(Broken())
    assert g.encoding == "utf-8"
    with pytest.raises(hio.StdoutPipeClosed):
        g.write("x")
    with pytest.raises(hio.StdoutPipeClosed):
        g.flush()
    assert not isinstance(hio.StdoutPipeClosed(), OSError)  # click would swallow an OSError
