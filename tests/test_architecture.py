"""The package's shape: layers, private modules, the public namespaces and their docstrings.

Every concept lives in one subpackage; a subpackage uses another only through its public
names (``phasetools.<sub>``), and data flows one way (theory -> langevin / training ->
stats -> compare -> io / plot / sweep -> reproduce -> cli). Top-level private modules
(``phasetools/_rng.py``, ``_validation.py``, ``_numba.py``, ``_progress.py``, ``_dask.py``) are shared
infrastructure, not a subpackage's internals.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
from pathlib import Path

import pytest

import phasetools

ROOT = Path(phasetools.__file__).parent
SUBPACKAGES = sorted(p.name for p in ROOT.iterdir() if p.is_dir() and (p / "__init__.py").exists())

# What each subpackage may import (function-level imports included). Top-level modules
# (results, the private infrastructure) are open to all.
ALLOWED = {
    "theory": set(),
    "stats": set(),
    "langevin": {"theory", "stats"},
    "training": {"theory", "stats"},
    "nonlinear": {"theory", "stats", "io", "compare"},
    "io": set(),
    "sweep": {"io"},
    "plot": {"theory", "stats", "langevin", "training"},
    "compare": {"theory", "stats"},
    "reproduce": {"theory", "stats", "langevin", "training", "compare", "io", "plot", "sweep"},
    "cli": {"theory", "stats", "langevin", "training", "nonlinear", "compare", "io", "plot", "sweep", "reproduce",
            "rare", "diagnose"},
    "rare": {"theory", "stats", "langevin", "training", "nonlinear"},
    "diagnose": {"theory", "stats", "training", "io"},
}


def _modules():
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        yield ".".join(parts), path


def _imports(module: str, path: Path):
    """(target module, imported names, line) of every phasetools import in ``path``."""
    tree = ast.parse(path.read_text(), filename=str(path))
    is_pkg = path.name == "__init__.py"
    package = module if is_pkg else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target == "phasetools" or target.startswith("phasetools."):
                yield target, [a.name for a in node.names], node.lineno
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith("phasetools"):
                    yield a.name, [], node.lineno


def _subpackage(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in SUBPACKAGES else None


def _edges():
    for module, path in _modules():
        src = _subpackage(module)
        for target, names, line in _imports(module, path):
            dst = _subpackage(target)
            if dst is None and target == "phasetools":
                for name in names:  # from .. import theory
                    if name in SUBPACKAGES:
                        yield module, src, f"phasetools.{name}", name, [], line
                continue
            yield module, src, target, dst, names, line


def test_every_subpackage_has_a_layer_rule():
    assert set(SUBPACKAGES) == set(ALLOWED), "add the new subpackage to ALLOWED (and to docs/contributing.md)"


def test_no_private_import_across_subpackages():
    bad = []
    for module, src, target, dst, names, line in _edges():
        if dst is None or dst == src:
            continue
        private_module = any(p.startswith("_") for p in target.split(".")[2:])
        private_names = [n for n in names if n.startswith("_") and n != "__version__"]
        if private_module or private_names:
            bad.append(f"{module}:{line} imports {target} {private_names or ''}")
    assert not bad, "private names of another subpackage:\n" + "\n".join(bad)


def test_imports_follow_the_layers():
    bad = [f"{module}:{line} ({src}) imports {target}" for module, src, target, dst, _, line in _edges()
           if src is not None and dst is not None and dst != src and dst not in ALLOWED[src]]
    assert not bad, "imports against the layers:\n" + "\n".join(bad)


def test_no_circular_imports_between_subpackages():
    graph = {s: set() for s in SUBPACKAGES}
    for _, src, _, dst, _, _ in _edges():
        if src and dst and src != dst:
            graph[src].add(dst)
    state = {}

    def visit(node, stack):
        state[node] = "open"
        for nxt in graph[node]:
            if state.get(nxt) == "open":
                pytest.fail("import cycle: " + " -> ".join(stack + [node, nxt]))
            if nxt not in state:
                visit(nxt, stack + [node])
        state[node] = "done"

    for s in SUBPACKAGES:
        if s not in state:
            visit(s, [])


def test_top_level_names_every_public_subpackage():
    doc = phasetools.__doc__ or ""
    public = [s for s in SUBPACKAGES if not s.startswith("_")]
    missing = [s for s in public if f"\n{s}\n" not in doc]
    assert not missing, f"phasetools/__init__.py does not describe: {missing}"
    assert set(public) <= set(phasetools.__all__)


def _exported_functions():
    for sub in SUBPACKAGES:
        if sub == "cli":
            continue
        mod = importlib.import_module(f"phasetools.{sub}")
        for name in getattr(mod, "__all__", []):
            obj = getattr(mod, name)
            if inspect.isclass(obj) and issubclass(obj, BaseException):
                continue  # exceptions and warnings take a message
            if inspect.isfunction(obj) or (inspect.isclass(obj) and not hasattr(obj, "__dataclass_fields__")
                                           and obj.__init__ is not object.__init__):
                yield f"phasetools.{sub}.{name}", obj


def _has_parameters(obj) -> bool:
    target = obj.__init__ if inspect.isclass(obj) else obj
    try:
        sig = inspect.signature(target)
    except (TypeError, ValueError):
        return False
    return any(p.name not in ("self", "cls") for p in sig.parameters.values())


def test_exported_functions_have_numpydoc_parameters():
    missing = []
    for qual, obj in _exported_functions():
        if not _has_parameters(obj):
            continue
        doc = inspect.getdoc(obj) or ""
        if "Parameters\n----------" not in doc:
            missing.append(qual)
    assert not missing, f"{len(missing)} exported functions lack a numpydoc Parameters section:\n" + "\n".join(missing)


def test_every_module_imports():
    for info in pkgutil.walk_packages([str(ROOT)], prefix="phasetools."):
        if not info.name.endswith("__main__"):  # that one runs the command line
            importlib.import_module(info.name)
