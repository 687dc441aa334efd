"""The record of refused PINs: kept across restarts, owner-only, never the PIN itself."""

from __future__ import annotations

import logging
import stat
from pathlib import Path

import pytest

from floatkey.errors import ConfigError
from floatkey.hardware.refused_pins import FILE_NAME, RefusedPins

PIN = "24681357"


def test_a_refused_pin_is_remembered_by_the_next_process(tmp_path: Path) -> None:
    path = tmp_path / FILE_NAME
    RefusedPins(path).remember("1001", PIN)
    again = RefusedPins(path)
    assert again.refused("1001", PIN)
    assert not again.refused("1001", "24681358"), "another PIN must be tried"
    assert not again.refused("1002", PIN), "another key has not refused it"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert PIN not in path.read_text()
    assert [p.name for p in tmp_path.iterdir()] == [FILE_NAME], "no temporary file left"


def test_an_accepted_pin_forgets_the_refusal(tmp_path: Path) -> None:
    path = tmp_path / FILE_NAME
    RefusedPins(path).remember("1001", PIN)
    RefusedPins(path).forget("1001")
    assert not RefusedPins(path).refused("1001", PIN)


@pytest.mark.parametrize("text", ["{not json", '{"version": 9, "keys": {}}', '{"version": 1, "keys": []}'])
def test_a_damaged_record_is_a_config_error_naming_the_file(tmp_path: Path, text: str) -> None:
    path = tmp_path / FILE_NAME
    path.write_text(text)
    with pytest.raises(ConfigError, match=f"{path}: .*delete it"):
        RefusedPins(path)


def test_an_unwritable_record_is_logged_and_kept_in_memory(tmp_path: Path, caplog) -> None:
    path = tmp_path / "missing-dir" / FILE_NAME
    record = RefusedPins(path)
    with caplog.at_level(logging.ERROR):
        record.remember("1001", PIN)
    assert record.refused("1001", PIN)
    assert f"cannot write {path}" in caplog.text and PIN not in caplog.text
