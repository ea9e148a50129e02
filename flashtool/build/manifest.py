"""A small evaluator for MicroPython manifest.py files (the subset this project uses):
include(), package(), module(), require() of our own lib packages, metadata().

The same manifests drive `flash.py build` here and the frozen firmware build in the esp32 port.
"""

import os
from pathlib import Path

from flashtool import ROOT


class Manifest:
    def __init__(self, board_dir):
        self.board_dir = Path(board_dir)
        self.files = {}  # target path inside the image -> source Path
        self.metadata = {}

    def _path(self, p, here):
        p = p.replace("$(BOARD_DIR)", str(self.board_dir))
        p = p.replace("$(PROJECT_DIR)", str(ROOT))
        if "$(" in p:
            return None  # a port-provided manifest ($(PORT_DIR), $(MPY_DIR)): not ours to build
        path = Path(p)
        return path if path.is_absolute() else (here / path)

    def execute(self, path):
        path = Path(path).resolve()
        here = path.parent

        def include(p, **kw):
            target = self._path(p, here)
            if target is None:
                return
            if target.is_dir():
                target = target / "manifest.py"
            self.execute(target)

        def require(name, **kw):
            lib = ROOT / "lib" / name / "manifest.py"
            if lib.exists():
                self.execute(lib)

        def package(name, files=None, base_path=".", opt=None):
            base = self._path(base_path, here)
            top = base / name
            for root, _dirs, names in os.walk(top):
                for n in sorted(names):
                    if n.endswith(".py"):
                        src = Path(root) / n
                        self.files[str(src.relative_to(base))] = src

        def module(name, base_path=".", opt=None):
            base = self._path(base_path, here)
            self.files[name] = base / name

        def metadata(**kw):
            self.metadata.setdefault(str(path), kw)

        def freeze(*a, **kw):
            raise ValueError("%s: use package()/module(), not freeze()" % path)

        code = compile(path.read_text(encoding="utf-8"), str(path), "exec")
        exec(code, {"include": include, "require": require, "package": package,
                    "module": module, "metadata": metadata, "freeze": freeze})
        return self
