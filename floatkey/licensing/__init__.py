"""Vendor licenses: signed license files, activation requests, usage reports, and their
verification.

Pure code (no actor, no thread): the vendor's command signs with it, the server verifies
with it, and the directory actor installs only what verified (docs/licensing.md).
"""
