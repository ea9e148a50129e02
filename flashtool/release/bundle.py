"""The app bundle (`flash.py bundle`), i.e. the compiled .mpy files of the firmware (the output of
`flash.py build`), published by content hash, plus a signed `app` manifest listing each module
with its size and SHA-256.

Board support modules and the stable boot entry (main, bootsel) stay in the frozen firmware:
they choose the slot, so a bad bundle can never replace them. So does lib/p256: its native code
runs from flash when frozen, while loaded from an app slot the ESP32 port would need ~40 KB of
executable internal RAM for it (MicroPython's esp_native_code_commit); it changes with a
firmware image instead.
"""

from pathlib import Path

from flashtool import ROOT
from flashtool.build.manifest import firmware_files
from flashtool.release.sign import sign_files

FROZEN_ONLY = ("main.mpy", "bootsel.mpy")
FROZEN_PACKAGES = ("p256/",)  # native code (viper): frozen, never in an app slot


def app_files(build_dir):
    """{target: path} of the app modules in a build directory."""
    build_dir = Path(build_dir)
    out = {}
    for target in firmware_files():
        mpy = target[:-3] + ".mpy"
        if mpy not in FROZEN_ONLY and not mpy.startswith(FROZEN_PACKAGES):
            out[mpy] = build_dir / mpy
    return out


def bundle(out, version, key, build_dir=None, counter=0, **kw):
    build_dir = build_dir or ROOT / "build" / "host"
    return sign_files(out, "app", "app", version, app_files(build_dir), key, counter=counter,
                      **kw)
