"""The installation key file: made whole or not at all, and never replaced once there."""

from __future__ import annotations

import logging
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from floatkey.licensing import installation

#: Runs in a child whose files may hold 40 bytes: the key's PEM (119 bytes) cannot be
#: written whole, as on a full disk.
FULL_DISK = """
import resource, signal, sys
from floatkey.errors import FloatkeyError
import pytest

from floatkey.licensing import installation
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (40, 40))
try:
    installation.load_or_create(sys.argv[1])
except FloatkeyError as exc:
    print(exc.code, exc.message)
except OSError as exc:
    print("OSError", exc)
"""


def test_a_key_that_cannot_be_written_whole_leaves_no_damaged_file(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", FULL_DISK, str(tmp_path)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("service_unavailable"), done.stdout
    assert installation.FILE_NAME in done.stdout
    assert list(tmp_path.iterdir()) == []  # no half key that would refuse every later report
    key = installation.load_or_create(tmp_path)  # with room again, the key is made
    assert installation.load_or_create(tmp_path).public_key() == key.public_key()
    assert [p.name for p in tmp_path.iterdir()] == [installation.FILE_NAME]


def test_a_key_others_can_read_is_made_owner_only_when_used(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    key = installation.load_or_create(tmp_path)
    path = tmp_path / installation.FILE_NAME
    path.chmod(0o644)  # e.g. put back from a backup with cp, under a umask of 022
    with caplog.at_level(logging.WARNING, logger="floatkey.licensing.installation"):
        assert installation.load_or_create(tmp_path).public_key() == key.public_key()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert "readable by others" in caplog.text and "PRIVATE" not in caplog.text
