"""The portable lib modules the host tools share with the reader (same bytes signed on the
laptop as checked on the gate), imported from lib/ without installing them."""

import sys

from flashtool.manifest import ROOT

for _name in ("signedmanifest", "rsapkcs1"):
    _p = str(ROOT / "lib" / _name)
    if _p not in sys.path:
        sys.path.append(_p)

import rsapkcs1  # noqa: E402
import signedmanifest  # noqa: E402

__all__ = ["rsapkcs1", "signedmanifest"]
