"""The package's imports run one way: no cycle, and the test kit stays out of production."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from servers import ROOT

PACKAGE = ROOT / "flask_voxcallbacks"


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, modules: set[str]) -> set[str]:
    """The package's modules that ``path`` imports when it is imported (the statements at its top
    level; imports inside functions run later, for optional packages)."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
            target = f"{base}.{node.module}" if node.module else base
            found.add(target)
            found.update(
                f"{target}.{a.name}" for a in node.names if f"{target}.{a.name}" in modules
            )
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith(PACKAGE.name):
            found.add(node.module or "")
        elif isinstance(node, ast.If):
            assert "TYPE_CHECKING" not in ast.unparse(node.test), f"{name} hides an import"
    # Importing a submodule runs its package first.
    closure = set()
    for target in found & modules:
        parts = target.split(".")
        closure.update(".".join(parts[:n]) for n in range(2, len(parts) + 1))
    return (closure & modules) - {name}


def _graph() -> dict[str, set[str]]:
    paths = sorted(PACKAGE.rglob("*.py"))
    modules = {_module_name(p) for p in paths}
    return {_module_name(p): _imports(p, modules) for p in paths}


def test_the_import_graph_has_no_cycle() -> None:
    graph = _graph()
    assert graph["flask_voxcallbacks.views"] and graph["flask_voxcallbacks.handling"]
    state: dict[str, str] = {}

    def visit(module: str, path: list[str]) -> None:
        state[module] = "open"
        for target in sorted(graph.get(module, ())):
            if target == "flask_voxcallbacks":
                continue  # every submodule's package; its own imports are checked
            if state.get(target) == "open":
                raise AssertionError(" -> ".join([*path, module, target]))
            if target not in state:
                visit(target, [*path, module])
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [])


def test_the_layers_import_downwards_only() -> None:
    graph = _graph()
    # The view reaches the store, the signals and the payloads only through handling.
    assert graph["flask_voxcallbacks.views"] <= {
        "flask_voxcallbacks.handling",
        "flask_voxcallbacks.parsing",
        "flask_voxcallbacks.state",
    }
    for base in ("flask_voxcallbacks.store.base", "flask_voxcallbacks.queue.base"):
        assert graph[base] <= {base.rsplit(".", 1)[0]}, graph[base]
    assert "flask_voxcallbacks.testing" not in graph["flask_voxcallbacks.cli"]
    # The registry and the callback object sit below the payload declarations, which use them.
    assert graph["flask_voxcallbacks.registry"] == {"flask_voxcallbacks.fields"}
    for lower in ("callbacks", "signals", "registry", "fields"):
        assert "flask_voxcallbacks.payloads" not in graph[f"flask_voxcallbacks.{lower}"]


def test_importing_the_package_loads_neither_the_test_kit_nor_the_pytest_plugin() -> None:
    loaded = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, flask_voxcallbacks;"
            " print(' '.join(m for m in sys.modules if m.startswith('flask_voxcallbacks')))",
        ],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    ).stdout.split()
    assert "flask_voxcallbacks.handling" in loaded
    assert "flask_voxcallbacks.testing" not in loaded
    assert "flask_voxcallbacks.pytest_plugin" not in loaded


def test_the_package_lists_its_exports_and_exports_every_type_and_signal() -> None:
    import flask_voxcallbacks
    from flask_voxcallbacks import CALLBACK_TYPES, payloads

    source = (PACKAGE / "__init__.py").read_text()
    assert "import *" not in source
    exported = set(flask_voxcallbacks.__all__)
    assert all(hasattr(flask_voxcallbacks, name) for name in exported)
    for type_name, spec in CALLBACK_TYPES.items():
        assert spec.payload.__name__ in exported, f"{spec.payload.__name__} is not exported"
        signal = payloads.signal_names()[type_name]
        assert signal in exported, f"the signal {signal} of {type_name} is not exported"


def test_the_type_registry_is_read_only() -> None:
    import pytest

    from flask_voxcallbacks import CALLBACK_TYPES

    with pytest.raises(TypeError):
        CALLBACK_TYPES["made_up"] = CALLBACK_TYPES["min_balance"]  # type: ignore[index]
