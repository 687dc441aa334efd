"""Persistence: one LMDB environment per process, msgpack values, group commit."""

from floatkey.storage.environment import DATABASES, SCHEMA_VERSION, Storage

__all__ = ["DATABASES", "SCHEMA_VERSION", "Storage"]
