"""The direction of imports drawn in docs/ARCHITECTURE.md holds in the code: no module
imports (at load time) from a layer above its own."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "campaign"

LAYERS = {
    8: ["cli", "weights.__main__"],
    7: ["config", "phi4.config", "weights.config", "complex_langevin.campaign"],
    6: ["hmc", "training", "samplers.job", "analysis.measure", "figures", "phi4.hmc", "phi4.jobs",
        "phi4.stages", "phi4.figures", "phi4.diffusion", "weights", "complex_langevin.job",
        "complex_langevin.pipeline", "complex_langevin.diffusion", "complex_langevin.store",
        "complex_langevin.figures", "complex_langevin.study"],
    5: ["jobs", "preemption", "runtime"],
    4: ["samplers", "diffusion", "flat_diffusion", "analysis", "io"],
    3: ["groups", "lattice", "actions", "observables", "exact", "fields", "phi4", "complex_langevin"],
    2: ["stats", "cumulants", "bounds"],
    1: ["theories", "settings", "device", "seeds", "progress", "errors"],
}
# (importer, imported): the exceptions ARCHITECTURE.md names
ALLOWED = {("analysis", "analysis.measure"), ("config", "weights.config")}
LAYER_OF = {name: n for n, names in LAYERS.items() for name in names}


def layer(module: str) -> int | None:
    parts = module.split(".")
    for k in range(len(parts), 0, -1):
        if ".".join(parts[:k]) in LAYER_OF:
            return LAYER_OF[".".join(parts[:k])]
    return None


def load_time_imports(path: Path, module: str, is_package: bool):
    """Relative imports at module level (not inside functions: those run at call time)."""
    package = module.split(".") if is_package else module.split(".")[:-1]
    for node in ast.parse(path.read_text()).body:
        nodes = [node] + (list(ast.walk(node)) if isinstance(node, (ast.If, ast.Try)) else [])
        for n in nodes:
            if isinstance(n, ast.ImportFrom) and n.level > 0:
                base = package[: len(package) - (n.level - 1)] if n.level > 1 else package
                if n.module:
                    yield ".".join([*base, n.module])
                else:
                    yield from (".".join([*base, a.name]) for a in n.names)


def modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        is_package = parts[-1] == "__init__"
        module = ".".join(parts[:-1] if is_package else parts)
        if module:
            yield path, module, is_package


def upward_imports():
    bad = []
    for path, module, is_package in modules():
        mine = layer(module)
        for target in load_time_imports(path, module, is_package):
            theirs = layer(target)
            if mine is not None and theirs is not None and theirs > mine and (module, target) not in ALLOWED:
                bad.append(f"{module} (layer {mine}) imports {target} (layer {theirs})")
    return bad


def test_every_module_has_a_layer():
    assert [m for _, m, _ in modules() if layer(m) is None] == []


def test_imports_point_down_the_layers():
    assert upward_imports() == []


def test_the_check_sees_an_upward_import(monkeypatch):
    """Power: with errors.py drawn at the top, every module that imports it breaks the rule."""
    monkeypatch.setitem(LAYER_OF, "errors", 9)
    bad = upward_imports()
    assert "hmc (layer 6) imports errors (layer 9)" in bad


def test_the_library_never_imports_cli():
    """Not even inside a function: parsing lives in cli.py and the workflow scripts."""
    users = []
    for path, module, _ in modules():
        if module in ("cli", "weights.__main__"):
            continue
        for n in ast.walk(ast.parse(path.read_text())):
            if isinstance(n, ast.ImportFrom) and (n.module or "").split(".")[-1] == "cli":
                users.append(module)
    assert users == []
