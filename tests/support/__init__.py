"""Shared test fixtures and helpers."""
