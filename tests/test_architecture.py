"""The house rules, read from the code's own imports (static: nothing is imported or run).

* Imports run one way, down the layers of :data:`LAYERS` (a module may import its own layer
  and the ones below it, never one above).
* No import loops, even within a layer.
* No module imports another module's private (single-underscore) name.
* Nothing outside the CLI imports it.
* Imports sit at the top of a module; inside a function only the heavy optional dependencies
  of :data:`LAZY` (they keep ``forecast --help`` and the light commands fast), and in the
  command line the job a command runs (:data:`DEFERRED_IN_CLI`).
* Every module stays under :data:`MAX_LINES` lines.
* A model opens no file: it gets its history, its neighbours (the unit graph the history
  carries) and its covariates from its caller (:data:`FILE_READERS`).
"""

from __future__ import annotations

import ast
import subprocess
import sys
import time
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("features", "forecast")

#: Lowest first. A module belongs to the first layer with a prefix that matches its name.
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("data and features", ("features",)),
    ("contracts", ("forecast.schema", "forecast.config", "forecast.errors", "forecast.limits", "forecast.panelfile")),  # and the package root below
    ("models", ("forecast.models",)),
    ("evaluation", ("forecast.evaluation",)),
    ("combination", ("forecast.ensemble", "forecast.catalog")),
    ("tracking", ("forecast.tracking",)),
    ("outputs", ("forecast.experiment", "forecast.ledger", "forecast.scenario", "forecast.report")),
    ("scheduled job", ("forecast.refresh",)),
    ("jobs", ("forecast.jobs",)),
    ("command line", ("forecast.cli", "forecast.__main__")),
)
#: Third-party modules that may be imported inside a function (heavy and optional).
LAZY = ("mlflow", "dask", "distributed", "playwright", "matplotlib")
#: What a command of the command line may import inside its function: the job it runs and pandas,
#: so that ``forecast COMMAND --help`` loads click and the light modules only. These imports
#: still count for the layers and loops above.
DEFERRED_IN_CLI = ("forecast", "features", "pandas")
MAX_LINES = 500
#: What a model may not do: read a file, directly or through the data layer's readers.
FILE_READERS = {
    "modules": ("features.gazetteer", "features.panel", "features.panel_files", "features.sources",
                "features.covariates", "features.download", "features.textfile", "features.workbook"),
    "calls": ("open", "read_csv", "read_parquet", "read_excel", "read_json", "read_table", "read_text",
              "read_bytes", "load_gazetteer", "read_panel", "read_events", "read_covariates"),
}


def module_name(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")


@cache
def modules() -> dict[str, Path]:
    return {module_name(p): p for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py"))}


@cache
def tree(name: str) -> ast.Module:
    return ast.parse(modules()[name].read_text(encoding="utf-8"))


def imports(name: str) -> list[tuple[ast.stmt, str, list[str]]]:
    """(node, imported module, imported names) for every import of the module, top level or not."""
    path = modules()[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = []
    for node in ast.walk(tree(name)):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([node.module] if node.module else []))
            out.append((node, base, [a.name for a in node.names]))
        elif isinstance(node, ast.Import):
            out.extend((node, a.name, []) for a in node.names)
    return out


def internal_targets(base: str, names: list[str]) -> list[str]:
    """The project modules an import statement loads (``from pkg import mod`` loads pkg.mod)."""
    found = [base] if base in modules() else []
    found += [f"{base}.{n}" for n in names if f"{base}.{n}" in modules()]
    return found


def layer(name: str) -> int:
    if name == "forecast":  # the package's empty __init__
        return 1
    for i, (_, prefixes) in enumerate(LAYERS):
        if any(name == p or name.startswith(p + ".") for p in prefixes):
            return i
    raise AssertionError(f"{name} is in no layer of tests/test_architecture.py::LAYERS; add it where it belongs")


def edges() -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for name in modules():
        for _, base, names in imports(name):
            for target in internal_targets(base, names):
                # A package's __init__ re-exporting its own submodules is not a dependency of theirs.
                if target != name and not name.startswith(target + "."):
                    out.setdefault(name, set()).add(target)
    return out


def test_every_module_is_in_a_layer():
    for name in modules():
        layer(name)


def test_imports_run_down_the_layers_only():
    upward = [f"{a} ({LAYERS[layer(a)][0]}) imports {b} ({LAYERS[layer(b)][0]})"
              for a, targets in edges().items() for b in sorted(targets) if layer(b) > layer(a)]
    assert not upward, "imports that run back up the layers:\n" + "\n".join(upward)


def test_there_are_no_import_loops():
    graph = edges()
    loops: list[list[str]] = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(v: str) -> None:
        state[v] = 1
        stack.append(v)
        for w in sorted(graph.get(v, ())):
            if state.get(w) == 1:
                loops.append(stack[stack.index(w):] + [w])
            elif w not in state:
                visit(w)
        stack.pop()
        state[v] = 2

    for v in sorted(modules()):
        if v not in state:
            visit(v)
    assert not loops, "import loops:\n" + "\n".join(" -> ".join(loop) for loop in loops)


def test_no_module_imports_another_modules_private_names():
    private = [f"{name} imports {base}.{n}" for name in modules() for _, base, names in imports(name)
               for n in names if n.startswith("_") and not n.startswith("__") and base in modules() and base != name]
    assert not private, "private names used across modules (make them public in their owner):\n" + "\n".join(private)


def test_nothing_outside_the_cli_imports_it():
    users = [f"{name} imports {t}" for name in modules() if not name.startswith(("forecast.cli", "forecast.__main__"))
             for _, base, names in imports(name) for t in internal_targets(base, names) + [base]
             if t == "forecast.cli" or t.startswith("forecast.cli.")]
    assert not users, "\n".join(users)


def test_features_never_imports_forecast():
    bad = [f"{name} imports {base}" for name in modules() if name.startswith("features")
           for _, base, _ in imports(name) if base == "forecast" or base.startswith("forecast.")]
    assert not bad, "\n".join(bad)


def test_imports_sit_at_the_top_except_heavy_optional_dependencies():
    inner = []
    for name in modules():
        top = set(map(id, tree(name).body))
        for node in tree(name).body:  # `if TYPE_CHECKING:` and `try:` blocks at the top count as top
            if isinstance(node, (ast.If, ast.Try)):
                top.update(id(n) for n in ast.walk(node))
        deferred = LAZY + DEFERRED_IN_CLI if name.startswith("forecast.cli") else LAZY
        for node, base, _ in imports(name):
            if id(node) not in top and base.split(".")[0] not in deferred:
                inner.append(f"{modules()[name].relative_to(ROOT)}:{node.lineno}: {ast.unparse(node)}")
    assert not inner, "imports inside functions (move them to the top):\n" + "\n".join(inner)


def test_no_model_opens_a_file():
    found = []
    for name in [m for m in modules() if m.startswith("forecast.models")]:
        for node, module, _ in imports(name):
            if module.startswith(FILE_READERS["modules"]):
                found.append(f"{modules()[name].relative_to(ROOT)}:{node.lineno}: imports {module}")
        for node in ast.walk(tree(name)):
            if isinstance(node, ast.Call):
                called = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
                if called in FILE_READERS["calls"]:
                    found.append(f"{modules()[name].relative_to(ROOT)}:{node.lineno}: calls {called}()")
    assert not found, ("models read files (give them what they need through the history: the unit graph in "
                       "history.attrs, covariates as columns):\n" + "\n".join(found))


def test_every_module_is_a_room_of_one_job_under_the_line_limit():
    big = {str(p.relative_to(ROOT)): n for p in modules().values()
           if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert not big, f"modules over {MAX_LINES} lines (split them by job): {big}"


def test_forecast_help_imports_neither_pandas_nor_the_models():
    code = ("import sys; from forecast.cli import main\n"
            "try:\n    main(['--help'], prog_name='forecast')\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in ('pandas', 'numpy', 'mlflow', 'forecast.jobs') if m in sys.modules))")
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stdout
    assert "Commands:" in out.stdout
    # Not a timing test (benchmarks measure it); a generous bound that only a regression misses.
    assert time.perf_counter() - start < 10


@pytest.mark.parametrize("command", sorted(__import__("forecast.cli", fromlist=["COMMANDS"]).COMMANDS))
def test_the_top_level_help_line_of_each_command_is_its_own(command):
    from forecast.cli import COMMANDS, main

    loaded = main.get_command(None, command)
    assert loaded is not None and loaded.name == command
    assert loaded.help.strip().splitlines()[0] == COMMANDS[command][1]
