"""Board manifests, evaluated by MicroPython's own `tools/manifestfile.py` (from the pinned source
tree): the lines `flash.py build` compiles are the very lines the esp32, unix and qemu ports
freeze, with upstream's semantics for include(), require(), package(), module(), freeze() and
add_library(), instead of a look-alike that could drift.

Two views of one manifest:
- `frozen_files()`: everything a firmware build freezes, including the port's base modules
  (`include("$(PORT_DIR)/...")`, `include("$(MPY_DIR)/...")`: asyncio, the network bundle, ...);
- `app_files()`: what the project adds on top, i.e. the same evaluation with those port-provided
  includes left out. Stock MicroPython already carries them; this is what `flash.py build`
  compiles, bundles ship and `flash.py deploy` copies (micropython-lib packages that our
  manifests `require()` are part of it).
"""

import os
import sys
from pathlib import Path

from flashtool import ROOT
from flashtool.build.upstream import lib_dir, source

# The MicroPython port whose base manifest a board's `$(PORT_DIR)` means, by board.json "mcu".
PORTS = {"host": "unix", "esp32": "esp32", "esp32s3": "esp32", "qemu-arm": "qemu"}
_PORT_PREFIXES = ("$(PORT_DIR)", "$(MPY_DIR)")


def _manifestfile():
    tools = str(source() / "tools")
    if tools not in sys.path:
        sys.path.insert(0, tools)
    import manifestfile

    return manifestfile


def variables(board_dir, mcu, gen_dir=None):
    """The path variables a port's build passes to makemanifest.py, for this board."""
    tree = source()
    return {
        "MPY_DIR": str(tree),
        "MPY_LIB_DIR": str(lib_dir(tree)),
        "PORT_DIR": str(tree / "ports" / PORTS[mcu]),
        "BOARD_DIR": str(Path(board_dir).resolve()),
        "GEN_DIR": str(gen_dir) if gen_dir else None,
    }


def _evaluate(manifest, path_vars, app_only):
    mf = _manifestfile()

    class Evaluator(mf.ManifestFile):
        def include(self, manifest_path, is_require=False, **kwargs):
            if app_only and isinstance(manifest_path, str) and \
                    manifest_path.startswith(_PORT_PREFIXES):
                return  # the port's own base modules: already in every stock firmware
            super().include(manifest_path, is_require, **kwargs)

    m = Evaluator(mf.MODE_FREEZE, path_vars)
    cwd = os.getcwd()
    try:
        m.execute(str(Path(manifest).resolve()))
    except mf.ManifestFileError as e:
        raise SystemExit("%s: %s" % (manifest, e)) from None
    finally:
        os.chdir(cwd)
    return [(f.target_path, Path(f.full_path)) for f in m.files()]


def app_files(manifest, path_vars):
    """{target: source path} that the project's manifest lines add (what `flash.py build`
    compiles)."""
    return dict(_evaluate(manifest, path_vars, app_only=True))


def frozen_files(manifest, path_vars):
    """[(target, source path)]: everything a firmware build of this manifest freezes."""
    return _evaluate(manifest, path_vars, app_only=False)


def firmware_files():
    """{target: source path} of the application alone (firmware/manifest.py and what it
    requires): the modules an app bundle ships."""
    return app_files(ROOT / "firmware" / "manifest.py",
                     variables(ROOT / "boards" / "host", "host"))
