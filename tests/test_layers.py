"""The package's layers: every import inside ``edgecap/`` goes down (or stays on its floor), and
no modules import each other in a circle. Function-level imports count: a lazy import is still
a dependency. Test files beside the models are left out (they may use anything)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: floors from the ground up; a module may import its own floor and those below
FLOORS = [
    ("edgecap", "edgecap.paths", "edgecap.utils"),
    ("edgecap.decoding",),
    ("edgecap.runtime",),
    ("edgecap.data", "edgecap.visualize"),
    ("edgecap.models",),
    ("edgecap.config",),
    ("edgecap.runs",),
    ("edgecap.evaluation",),
    ("edgecap.training", "edgecap.export"),
    ("edgecap.bench", "edgecap.bench_video", "edgecap.release", "edgecap.beam", "edgecap.web"),
    ("edgecap.cli",),
]


def _floor(module: str) -> int:
    best, floor = -1, None
    for i, names in enumerate(FLOORS):
        for name in names:
            if (module == name or module.startswith(name + ".")) and len(name) > best:
                best, floor = len(name), i
    assert floor is not None, f"{module} is on no floor of FLOORS"
    return floor


def _modules() -> dict[str, Path]:
    out = {}
    for path in (ROOT / "edgecap").rglob("*.py"):
        if path.name.endswith("_test.py"):
            continue
        parts = path.relative_to(ROOT).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def _imports(path: Path, module: str, known: set[str]) -> set[str]:
    """The edgecap modules ``path`` imports: ``from a.b import c`` is ``a.b.c`` when that is a module."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(
                    package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else [])
                )
            for alias in node.names:
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base)
    return {m for m in found if m in known and m != module}


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {m: _imports(p, m, set(modules)) for m, p in modules.items()}


def test_every_import_goes_down():
    upward = [
        f"{a} (floor {_floor(a)}) imports {b} (floor {_floor(b)})"
        for a, targets in _graph().items()
        for b in targets
        if _floor(b) > _floor(a)
    ]
    assert upward == []


def test_no_modules_import_each_other_in_a_circle():
    graph = _graph()
    # package faces (__init__ re-exporting their own submodules) are not edges of a circle
    graph = {a: {b for b in bs if not b.startswith(a + ".") and not a.startswith(b + ".")} for a, bs in graph.items()}
    index, low, stack, on, circles, counter = {}, {}, [], set(), [], [0]

    def visit(v):  # Tarjan's strongly connected components
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                on.discard(w)
                component.add(w)
                if w == v:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    assert circles == []


def test_the_layer_check_sees_an_upward_import(tmp_path):
    """The walker reads function-level and relative imports (so the two tests above can fail)."""
    code = tmp_path / "x.py"
    code.write_text("def f():\n    from edgecap.cli import main\n    from .vocabulary import Vocabulary\n")
    found = _imports(code, "edgecap.runtime.x", {"edgecap.cli", "edgecap.runtime.vocabulary", "edgecap.runtime.x"})
    assert found == {"edgecap.cli", "edgecap.runtime.vocabulary"} and _floor("edgecap.cli") > _floor(
        "edgecap.runtime.x"
    )


def test_a_subcommand_imports_no_other_subcommand():
    """`edgecap caption` imports the caption module alone (the cold start on a Pi); every name
    of the lazy group resolves to a command of that name."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from edgecap.cli import COMMANDS, main\n"
        "assert all(main.get_command(None, n).name == n for n in ['caption'])\n"
        "print(sorted(m for m in sys.modules if m.startswith('edgecap.cli.')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "['edgecap.cli.caption', 'edgecap.cli.common']"
    from edgecap.cli import COMMANDS, main

    assert all(main.get_command(None, name).name == name for name in COMMANDS)
