"""Signed lists for the readers: blocklist images and deltas."""
