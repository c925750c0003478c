"""``python -m recops.app.architecture``: the house rules that a wrong-way import or an oversized
module breaks, checked by reading every module's syntax tree (no import, no side effect).

The rules live in ``pyproject.toml`` under ``[tool.recops.architecture]``:

- ``layers``: package groups from the top (entry points) to the bottom (core); a module may import
  from its own group and the groups below it, never above;
- ``forbidden``: ``[importer, imported]`` pairs that are forbidden even within a layer (e.g.
  ``recops.serving`` must not import ``recops.training``); ``independent``: packages none of
  which imports another (the stages: what they share lives in the core);
- ``max_module_lines`` and ``max_function_lines``: size limits of product code.

Module names come from the file paths through ``[tool.setuptools] package-dir`` (``training/`` is
``recops.training``), since the stage folders live beside ``recops/``. ``make lint`` and the test
suite run this; it exits 1 and lists every violation.
"""

from __future__ import annotations

import argparse
import ast
import sys
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Rules:
    layers: list[list[str]]
    forbidden: list[tuple[str, str]]
    max_module_lines: int
    max_function_lines: int
    roots: dict[str, str]  # package -> folder, from package-dir
    extra_roots: dict[str, str]  # e.g. "dags" -> "dags" (entry-point files outside the package)

    @classmethod
    def load(cls, pyproject: Path) -> Rules:
        data = tomllib.loads(pyproject.read_text())
        arch = data["tool"]["recops"]["architecture"]
        independent = list(arch.get("independent", []))
        pairs = [(a, b) for a in independent for b in independent if a != b]
        return cls(
            layers=[list(group) for group in arch["layers"]],
            forbidden=[(a, b) for a, b in arch.get("forbidden", [])] + pairs,
            max_module_lines=int(arch["max_module_lines"]),
            max_function_lines=int(arch["max_function_lines"]),
            roots=dict(data["tool"]["setuptools"]["package-dir"]),
            extra_roots=dict(arch.get("extra_roots", {})),
        )


@dataclass(frozen=True)
class Violation:
    path: Path
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


def _within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def modules(root: Path, rules: Rules) -> Iterator[tuple[str, Path]]:
    """(module name, file) of every Python file under the mapped (disjoint) folders."""
    for package, folder in {**rules.roots, **rules.extra_roots}.items():
        base = root / folder
        for path in sorted(base.rglob("*.py")):
            parts = [p for p in path.relative_to(base).with_suffix("").parts if p != "__init__"]
            yield ".".join([package, *parts]), path


def imports(tree: ast.AST, module: str) -> Iterator[tuple[str, int]]:
    """Absolute names of every import in ``tree`` (relative ones resolved), with line numbers."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")[: -node.level]
                name = ".".join([*base, node.module] if node.module else base)
            else:
                name = node.module or ""
            yield name, node.lineno
            for alias in node.names:  # ``from recops import training``
                yield f"{name}.{alias.name}", node.lineno


def layer_of(module: str, rules: Rules) -> int | None:
    matches = [
        (len(pkg), index)
        for index, group in enumerate(rules.layers)
        for pkg in group
        if _within(module, pkg)
    ]
    return max(matches)[1] if matches else None


def check_file(module: str, path: Path, rules: Rules) -> list[Violation]:
    """Every rule broken by one module."""
    source = path.read_text(encoding="utf-8")
    tree = ast.parse(source, filename=str(path))
    found: list[Violation] = []
    lines = len(source.splitlines())
    if lines > rules.max_module_lines:
        found.append(Violation(path, 1, f"{module} has {lines} lines (limit {rules.max_module_lines})"))
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            length = (node.end_lineno or node.lineno) - node.lineno + 1
            if length > rules.max_function_lines:
                found.append(Violation(path, node.lineno, f"function {node.name} has {length} lines "
                                       f"(limit {rules.max_function_lines})"))
    own = layer_of(module, rules)
    reported: set[tuple[int, str]] = set()  # one report per line and rule
    for name, line in imports(tree, module):
        target = layer_of(name, rules)
        if own is not None and target is not None and target < own and (line, "layer") not in reported:
            reported.add((line, "layer"))
            found.append(Violation(path, line, f"{module} (layer {own}) imports {name} from a higher layer ({target})"))
        for importer, imported in rules.forbidden:
            rule = f"{importer}->{imported}"
            if _within(module, importer) and _within(name, imported) and (line, rule) not in reported:
                reported.add((line, rule))
                found.append(Violation(path, line, f"{module} imports {name}: {importer} must not import {imported}"))
    return found


def check(root: Path, rules: Rules) -> list[Violation]:
    """Every violation in the project at ``root``."""
    return [v for module, path in modules(root, rules) for v in check_file(module, path, rules)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Check the layer and size rules of the code.")
    parser.add_argument("root", nargs="?", type=Path, default=Path.cwd(), help="project root (pyproject.toml)")
    args = parser.parse_args(argv)
    rules = Rules.load(args.root / "pyproject.toml")
    violations = check(args.root, rules)
    for violation in violations:
        print(violation)
    count = sum(1 for _ in modules(args.root, rules))
    print(f"{count} modules checked, {len(violations)} violation(s)", file=sys.stderr)
    return 1 if violations else 0


if __name__ == "__main__":
    raise SystemExit(main())
