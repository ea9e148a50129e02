"""Host-side simulators of the emulated reader's hardware (CPython, outside the reader's heap)."""
