"""Host-side tooling behind flash.py (CPython only)."""
