"""Command-line options that several ``floatkey`` commands share."""

from __future__ import annotations

import argparse
from pathlib import Path


def data_dir_options() -> argparse.ArgumentParser:
    """``--config`` and ``--data-dir``, for the ``parents`` of a command working on a data
    directory (``floatkey users``, ``floatkey audit``)."""
    options = argparse.ArgumentParser(add_help=False)
    options.add_argument("--config", type=Path, help="YAML configuration file")
    options.add_argument("--data-dir", type=Path, help="data directory (overrides dataDir)")
    return options
