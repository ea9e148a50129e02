"""Signed, flash-resident transit blocklist (see docs/blocklist.md)."""
