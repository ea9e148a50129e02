"""The house's layering, read from the import statements (CPython, ast): flash.py -> flashtool ->
boards and lib; firmware -> lib and the board API; nothing runs back up. A forbidden import
added anywhere fails here with the file, line and rule."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HARDWARE = {"machine", "esp32", "esp", "network"}


def _modules(paths):
    """Top-level module names a tree defines (files and packages)."""
    out = set()
    for p in paths:
        for f in p.glob("*.py"):
            out.add(f.stem)
        for d in p.iterdir():
            if d.is_dir() and (d / "__init__.py").exists():
                out.add(d.name)
    return out


def _imports(path):
    """(line, top-level module) of every absolute import in a file, nested ones included."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                yield node.lineno, a.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module.split(".")[0]


def violations(root):
    root = Path(root)
    boards = [d for d in (root / "boards").iterdir() if d.is_dir()] if (root / "boards").exists() \
        else []
    board_mods = _modules(boards) | {"hosttables"}  # generated from the board's tables
    firmware_mods = _modules([root / "firmware"]) if (root / "firmware").exists() else set()
    test_mods = {"conftest", "host_tests"} | {p.stem for p in (root / "host_tests").glob("*.py")} \
        if (root / "host_tests").exists() else {"conftest", "host_tests"}
    bad = []

    def check(path, forbidden, rule):
        for line, mod in _imports(path):
            if mod in forbidden:
                bad.append("%s:%d imports %s (%s)" % (path.relative_to(root), line, mod, rule))

    for path in sorted(root.glob("firmware/**/*.py")):
        if path.name == "manifest.py":
            continue
        check(path, {"flashtool"} | test_mods | (board_mods - {"board"}) | HARDWARE,
              "firmware uses lib/ and the board API only")
    for path in sorted(root.glob("lib/**/*.py")):
        if path.name == "manifest.py":
            continue
        check(path, {"flashtool"} | test_mods | board_mods | firmware_mods | HARDWARE,
              "lib/ is policy-free: injected buses, no firmware, no board")
    for path in sorted(root.glob("flashtool/**/*.py")) + sorted(root.glob("boards/**/*.py")):
        check(path, test_mods, "tests are not a library")
    for path in sorted(root.glob("**/*.py")):
        rel = path.relative_to(root)
        if rel.parts[0] in (".venv", "build", "var"):
            continue
        in_board = rel.parts[0] == "boards" and (rel.name == "board.py"
                                                  or rel.parts[1] == "esp32common")
        if not in_board:
            check(path, HARDWARE, "only the board module touches the hardware")
    return bad


def test_the_tree_keeps_its_layers():
    assert violations(ROOT) == []


def test_a_forbidden_import_is_caught(tmp_path):
    """The checker on a small tree with one import of each forbidden kind."""
    for d in ("firmware", "lib/drv/drv", "boards/host", "boards/esp32common", "flashtool",
              "host_tests"):
        (tmp_path / d).mkdir(parents=True)
    (tmp_path / "boards/host/board.py").write_text("import machine\n")  # allowed
    (tmp_path / "boards/host/nor.py").write_text("X = 1\n")
    (tmp_path / "boards/esp32common/esp32board.py").write_text("import esp32\n")  # allowed
    (tmp_path / "host_tests/conftest.py").write_text("")
    (tmp_path / "firmware/main.py").write_text("import board\n")  # allowed: the board API
    (tmp_path / "firmware/app.py").write_text("def f():\n    from flashtool import x\n")
    (tmp_path / "firmware/gate.py").write_text("import nor\n")
    (tmp_path / "lib/drv/drv/__init__.py").write_text("import app\nimport board\n")
    (tmp_path / "lib/drv/drv/hw.py").write_text("from machine import Pin\n")
    (tmp_path / "flashtool/tool.py").write_text("import conftest\n")
    found = violations(tmp_path)
    assert found == [
        "firmware/app.py:2 imports flashtool (firmware uses lib/ and the board API only)",
        "firmware/gate.py:1 imports nor (firmware uses lib/ and the board API only)",
        "lib/drv/drv/__init__.py:1 imports app (lib/ is policy-free: injected buses, no "
        "firmware, no board)",
        "lib/drv/drv/__init__.py:2 imports board (lib/ is policy-free: injected buses, no "
        "firmware, no board)",
        "lib/drv/drv/hw.py:1 imports machine (lib/ is policy-free: injected buses, no firmware, "
        "no board)",
        "flashtool/tool.py:1 imports conftest (tests are not a library)",
        "lib/drv/drv/hw.py:1 imports machine (only the board module touches the hardware)",
    ]
