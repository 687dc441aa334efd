"""The administrator's web console: static files served at ``/`` (docs/console.md)."""
