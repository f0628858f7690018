"""Import rules, read from the source with ``ast``: a pure core, an infra without parceler,
handlers that lead to one role module.

Every ``import`` counts, including those inside functions, except the ones under
``if TYPE_CHECKING:`` (types only, never executed). Importing ``a.b.c`` imports the
packages ``a`` and ``a.b`` too, so their ``__init__`` modules are followed.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE_ROOT = ROOT / "shared"

# Each Lambda role → the parceler module its handler calls (update here when modules move).
ROLE_MODULES = {
    "planner": "parceler.planner",
    "worker": "parceler.worker",
    "dead_letter": "parceler.dead_letter",
    "aggregator": "parceler.aggregator",
    "waiter": "parceler.waiter",
    "starter": "parceler.starter",
}
# What every handler may import besides its role module: settings, errors, pure models.
HANDLER_ALLOWED = frozenset(
    {"parceler", "parceler.settings", "parceler.errors", "parceler.models", "parceler.messages",
     "parceler.spec"}
)  # fmt: skip
# The pure core: no boto3, no botocore, no parceler.aws, directly or transitively.
PURE_CORE = (
    "parceler.errors",
    "parceler.models",
    "parceler.ledger",
    "parceler.messages",
    "parceler.partition",
    "parceler.fingerprint",
    "parceler.spec",
    "parceler.units",
    "parceler.settings",
    "parceler.report",
    "parceler.state_machine",
    "parceler.workarea",
    "parceler.details",
    "parceler.progress",
    "parceler.quotas",
)
FORBIDDEN_IN_CORE = ("boto3", "botocore", "parceler.aws")


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE_ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def _sources() -> dict[str, Path]:
    return {_module_name(p): p for p in (PACKAGE_ROOT / "parceler").rglob("*.py")}


def _runtime_nodes(tree: ast.AST) -> Iterator[ast.AST]:
    """Every node, skipping the bodies of ``if TYPE_CHECKING:`` blocks."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            yield from (n for child in node.orelse for n in [child, *_runtime_nodes(child)])
            continue
        yield node
        yield from _runtime_nodes(node)


def imports_of(path: Path, module: str | None = None) -> set[str]:
    """The absolute module names ``path`` imports at run time (``module`` resolves relative ones)."""
    found: set[str] = set()
    package = (
        module
        if module is not None and path.name == "__init__.py"
        else (module or "").rpartition(".")[0]
    )
    for node in _runtime_nodes(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            found.add(base)
            # ``from parceler import aws`` imports the module parceler.aws.
            found.update(
                f"{base}.{alias.name}"
                for alias in node.names
                if f"{base}.{alias.name}" in _sources()
            )
    # Importing a.b.c runs a/__init__ and a/b/__init__ first.
    return found | {
        ".".join(name.split(".")[:i]) for name in found for i in range(1, name.count(".") + 1)
    }


def reachable(module: str) -> dict[str, str]:
    """Every module ``module`` imports, directly or not, each with the module that imports it."""
    # Importing a.b.c runs the packages a and a.b first.
    parents = [".".join(module.split(".")[:i]) for i in range(1, module.count(".") + 1)]
    via: dict[str, str] = dict.fromkeys(parents, module)
    todo = [module, *parents]
    while todo:
        current = todo.pop()
        path = _sources().get(current)
        if path is None:
            continue  # outside parceler: a leaf
        for name in imports_of(path, current):
            if name not in via and name != module:
                via[name] = current
                todo.append(name)
    return via


def _chain(module: str, target: str, via: dict[str, str]) -> str:
    chain = [target]
    while chain[-1] != module:
        chain.append(via[chain[-1]])
    return " <- ".join(chain)


def test_the_pure_core_lists_only_real_modules() -> None:
    # A renamed module must fail here, not silently drop out of the rule.
    assert set(PURE_CORE) <= set(_sources()), set(PURE_CORE) - set(_sources())
    assert set(ROLE_MODULES.values()) <= set(_sources())


@pytest.mark.parametrize("module", PURE_CORE)
def test_the_pure_core_imports_no_aws(module: str) -> None:
    via = reachable(module)
    bad = sorted(
        name
        for name in via
        if any(name == f or name.startswith(f + ".") for f in FORBIDDEN_IN_CORE)
    )
    assert not bad, f"{module} imports AWS code: " + "; ".join(_chain(module, b, via) for b in bad)


def test_infra_imports_nothing_from_parceler() -> None:
    offenders = {
        str(path.relative_to(ROOT)): sorted(
            n for n in imports_of(path) if n.split(".")[0] == "parceler"
        )
        for path in sorted((ROOT / "infra").rglob("*.py"))
    }
    assert list((ROOT / "infra").rglob("*.py"))
    assert {k: v for k, v in offenders.items() if v} == {}


def test_every_role_has_a_handler_and_every_handler_a_role() -> None:
    handlers = {p.parent.name for p in (ROOT / "functions").glob("*/handler.py")}
    assert handlers == set(ROLE_MODULES)


@pytest.mark.parametrize("role", sorted(ROLE_MODULES))
def test_a_handler_imports_only_its_role_module_and_pure_models(role: str) -> None:
    path = ROOT / "functions" / role / "handler.py"
    used = {n for n in imports_of(path) if n.split(".")[0] == "parceler"}
    assert ROLE_MODULES[role] in used, f"{role} handler does not call {ROLE_MODULES[role]}"
    assert used - HANDLER_ALLOWED - {ROLE_MODULES[role]} == set()


def test_the_rules_see_through_re_exports_and_lazy_imports(tmp_path: Path) -> None:
    # The checker itself: a function-level import and a TYPE_CHECKING one.
    source = tmp_path / "m.py"
    source.write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    import botocore\n"
        "def f():\n    import boto3.session\n"
    )
    assert imports_of(source) == {"typing", "boto3", "boto3.session"}
    assert "boto3" in reachable("parceler.aws.ledger")
