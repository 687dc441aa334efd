"""What the ``floatkey`` commands share: their data-directory options and how they end."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from floatkey.errors import ConfigError, FloatkeyError, StorageError

#: Exit status of a command that could not start its work: a bad configuration, or a data
#: directory it cannot use. Nothing was changed.
CANNOT_START = 2
#: Exit status of a command whose request was refused (the error's code says why).
REFUSED = 1


def data_dir_options() -> argparse.ArgumentParser:
    """``--config`` and ``--data-dir``, for the ``parents`` of a command working on a data
    directory (``floatkey users``, ``floatkey audit``)."""
    options = argparse.ArgumentParser(add_help=False)
    options.add_argument("--config", type=Path, help="YAML configuration file")
    options.add_argument("--data-dir", type=Path, help="data directory (overrides dataDir)")
    return options


def run_command(
    prog: str,
    work: Callable[[], int | None],
    *,
    refused: int = REFUSED,
    storage_hint: Callable[[StorageError], str | None] | None = None,
) -> int:
    """Run a command's ``work`` and turn floatkey's errors into one line on standard error
    and an exit status, the same way for every command.

    A configuration or storage error ends with :data:`CANNOT_START` (and ``storage_hint``'s
    advice, where it has one); a refusal prints its code and sentence and ends with
    ``refused`` (``floatkey audit`` keeps 1 for a broken chain, so its refusals end with 2).
    """
    try:
        return int(work() or 0)
    except (ConfigError, StorageError) as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        hint = storage_hint(exc) if storage_hint and isinstance(exc, StorageError) else None
        if hint:
            print(f"{prog}: {hint}", file=sys.stderr)
        return CANNOT_START
    except FloatkeyError as exc:
        print(f"{prog}: {exc.code}: {exc.message}", file=sys.stderr)
        return refused
