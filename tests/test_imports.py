"""How the package's modules import each other."""

import ast
import os
import subprocess
import sys

import take_a_number

PACKAGE = os.path.dirname(take_a_number.__file__)


def imports(module):
    """``(submodules, names from the package itself)`` that ``module`` imports."""
    path = os.path.join(PACKAGE, module + ".py")
    if not os.path.exists(path):
        return set(), set()  # a subpackage: its own modules import each other
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read())
    submodules, names = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            if node.module is not None:
                submodules.add(node.module.split(".")[0])
            else:
                for alias in node.names:
                    path = os.path.join(PACKAGE, alias.name)
                    is_module = os.path.exists(path + ".py") or os.path.isdir(path)
                    (submodules if is_module else names).add(alias.name)
    return submodules, names


def test_no_module_the_package_loads_imports_a_name_from_the_package():
    # ``from . import __version__`` in openapi.py made a cycle: __init__.py had
    # to set names before its own imports, and silence the linter for it.
    loaded, todo = set(), ["__init__"]
    while todo:
        module = todo.pop()
        submodules, names = imports(module)
        if module != "__init__":
            assert not names, f"{module}.py imports {names} from the package"
        loaded.add(module)
        todo.extend(submodules - loaded)
    assert {"application", "openapi"} <= loaded


def test_the_package_init_imports_first_and_needs_no_lint_exception():
    with open(os.path.join(PACKAGE, "__init__.py"), encoding="utf-8") as f:
        assert "noqa: E402" not in f.read()


def test_the_tests_without_a_browser_do_not_load_playwright():
    tests = os.path.dirname(os.path.abspath(__file__))
    check = (
        f"import sys; sys.path.insert(0, {tests!r}); import conftest, support; "
        "sys.exit(any(name.startswith('playwright') for name in sys.modules))"
    )
    assert subprocess.run([sys.executable, "-c", check]).returncode == 0
