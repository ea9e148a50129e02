"""Helpers the tests share (not tests, never imported by the code under test)."""
