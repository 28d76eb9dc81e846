"""The import direction between packages (README "Where things are"): a test that fails when an
import, at module level or inside a function, crosses a boundary the wrong way."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# package prefix -> the project packages its modules may import (the longest matching prefix wins)
ALLOWED: dict[str, tuple[str, ...]] = {
    "sw.tans": ("sw.tans",),
    "sw.container": ("sw.tans", "sw.container"),
    "sw.quant": ("sw.quant",),
    "sw.data": ("sw.data", "sw.container.files", "sw.factory"),  # safe file access; importing user factories
    "sw.models": ("sw.models", "sw.factory"),
    "sw.factory": (),                    # the standard library only
    "sw.train": ("sw.train", "sw.data", "sw.models", "sw.container.files"),
    "sw.methods": ("sw.methods", "sw.quant", "sw.train", "sw.container", "sw.tans", "sw.data", "sw.models"),
    "sw.evaluation": ("sw.evaluation", "sw.methods", "sw.quant", "sw.train", "sw.container", "sw.tans",
                      "sw.data", "sw.models"),
    "sw": ("sw",),                       # the CLI and the pipeline: anything in sw, never hw or sim
    "hw.core": ("hw.core", "sw.tans"),
    "hw.fetch": ("hw.fetch", "hw.core", "sw.tans", "sw.container"),
    "hw.boards": ("hw.boards", "hw.core", "hw.tools", "sw.tans"),
    "hw": ("hw", "sw.tans", "sw.container"),
    "sim": ("sim", "hw", "sw"),
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path) -> list[tuple[int, str]]:
    """(line, absolute module) for every import statement in the file, relative ones resolved."""
    tree = ast.parse(path.read_text(), str(path))
    here = module_name(path)
    package = here if path.name == "__init__.py" else here.rpartition(".")[0]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[:len(package.split(".")) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            # `from sw import container` imports sw.container: name what is imported, not its parent
            out += [(node.lineno, f"{mod}.{a.name}") for a in node.names]
    return out


def rule_for(module: str) -> tuple[str, ...]:
    best = max((p for p in ALLOWED if module == p or module.startswith(p + ".")), key=len)
    return ALLOWED[best]


def inside(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


SOURCES = sorted(p for pkg in ("sw", "hw", "sim") for p in (ROOT / pkg).rglob("*.py"))


def test_every_source_is_covered():
    assert len(SOURCES) > 50
    for p in SOURCES:
        rule_for(module_name(p))     # raises ValueError (empty max) for a module outside every rule


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_point_one_way(path: Path):
    me = module_name(path)
    allowed = rule_for(me)
    bad = [f"{path.relative_to(ROOT)}:{line} imports {mod}" for line, mod in imports_of(path)
           if inside(mod, ("sw", "hw", "sim", "tests")) and not inside(mod, allowed)]
    assert not bad, "\n".join(bad)


def test_checker_catches_a_crossing(tmp_path):
    """The checker itself: a sw module importing sim, even lazily in a function, is found."""
    fake = ROOT / "sw" / "_layout_probe.py"
    fake.write_text("def f():\n    from sim.layer_check import main\n    from ..hw import x\n")
    try:
        mods = [m for _, m in imports_of(fake)]
        assert mods == ["sim.layer_check.main", "hw.x"]
        assert not any(inside(m, rule_for(module_name(fake))) for m in mods)
    finally:
        fake.unlink()


def test_no_script_shadows_a_package():
    """Benchmark scripts put their folder on sys.path (which the cocotb runner hands to the
    simulator): a script named like a project package would be imported in its place."""
    clash = [p.name for d in ("benchmarks", "scripts", "tests") for p in (ROOT / d).glob("*.py")
             if p.stem in ("sw", "hw", "sim", "tests", "cocotb", "amaranth", "torch", "numpy")]
    assert not clash
