"""Turning the source tree into what a board runs: the manifest evaluator and mpy-cross."""
