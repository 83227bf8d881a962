"""Mitigations and the measures that explain them (see docs/tolerance.md)."""
