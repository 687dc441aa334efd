"""The audit trail: administrative actions and security events, append-only and hash-chained.

Pure parts live here (``chain``: the record format, hashing and verification; ``origin``:
who is acting; ``events``: the kinds and the facade callers use); the one appender, the
only writer of the chain, is ``floatkey.actors.audit.AuditActor``. See docs/operations.md,
"Audit trail".
"""
