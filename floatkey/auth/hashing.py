"""argon2id password hashes, computed in the caller's thread with bounded concurrency.

A hash costs about 64 MiB and a fifth of a second of one core (argon2-cffi's defaults,
RFC 9106's second recommendation). Hashing runs in the request thread rather than in
the AuthActor, so one slow login never holds up another user's; a semaphore bounds how
many run at once, so a flood of logins cannot take the machine's memory.
"""

from __future__ import annotations

import secrets
import threading

import argon2


class PasswordHashing:
    def __init__(self, hasher: argon2.PasswordHasher | None = None, concurrency: int = 4) -> None:
        self._hasher = hasher or argon2.PasswordHasher()
        self._slots = threading.BoundedSemaphore(concurrency)
        self._dummy: str | None = None
        self._dummy_lock = threading.Lock()

    def hash(self, password: str) -> str:
        with self._slots:
            return self._hasher.hash(password)

    def verify(self, stored: str | None, password: str) -> bool:
        """Whether ``password`` matches ``stored``.

        ``stored`` None (no such user) verifies against a hash of a random password made
        with the same parameters, so an unknown user costs the same time as a wrong password.
        """
        target = stored if stored is not None else self._dummy_hash()
        with self._slots:
            try:
                matched: bool = self._hasher.verify(target, password)
            except (argon2.exceptions.VerificationError, argon2.exceptions.InvalidHashError):
                matched = False
        return matched and stored is not None

    def needs_rehash(self, stored: str) -> bool:
        """Whether ``stored`` was made with other parameters than this hasher's (an older
        argon2-cffi, or other settings); a login then stores a fresh hash of the password."""
        try:
            return self._hasher.check_needs_rehash(stored)
        except argon2.exceptions.InvalidHashError:
            return True

    def _dummy_hash(self) -> str:
        with self._dummy_lock:
            if self._dummy is None:
                self._dummy = self.hash(secrets.token_urlsafe(24))
            return self._dummy
