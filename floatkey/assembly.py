"""Builds the ``Floatkey`` of a configuration, with its hardware-key subsystem."""

from __future__ import annotations

from floatkey.config import Settings
from floatkey.system import Floatkey


def build_system(settings: Settings) -> Floatkey:
    return Floatkey(settings)
