"""`kdjax/` is the library a user imports to distil: it never imports the paper harness
(`papers/`), the experiment configs (`experiments/`), the entry points (`launch/`) or the tests."""
import ast
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUTSIDE = ("papers", "experiments", "launch", "tests")


def _imports(path):
    for node in ast.walk(ast.parse(open(path).read(), path)):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module


def test_the_library_imports_nothing_outside_it():
    found = []
    for folder, _, files in os.walk(os.path.join(ROOT, "kdjax")):
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                found += [f"{os.path.relpath(path, ROOT)}: {m}" for m in _imports(path)
                          if m.split(".")[0] in OUTSIDE]
    assert not found, found

