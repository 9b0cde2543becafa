"""The layering rules a linter would keep: the CLI layer imports no heavy library at module level
(they cost seconds at start-up and every TAB press), and lower layers never import upper ones."""
from __future__ import annotations

import ast
import subprocess
import sys

import pytest

from conftest import REPO

HEAVY = ("torch", "transformers", "clarifai", "clarifai_grpc", "numpy", "onnxruntime", "PIL", "av",
         "pycocotools", "matplotlib", "safetensors")
CLI_MODULES = sorted(p.stem for p in (REPO / "segcli" / "cli").glob("*.py") if p.stem != "__init__")


@pytest.mark.parametrize("module", CLI_MODULES)
def test_cli_modules_import_no_heavy_library(module):
    code = (f"import sys, segcli.cli.{module}\n"
            f"heavy = sorted(m for m in {HEAVY!r} if m in sys.modules)\n"
            "assert not heavy, heavy\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr.strip().splitlines()[-1]


# package -> packages it must not import (at any level): arrows point down only.
# segcli.config sits above the backends (it reads their settings from the registry): the
# layers below take paths from segcli.core.paths.
FORBIDDEN = {
    "core": ("segcli.cli", "segcli.services", "segcli.backends", "segcli.engine", "segcli.render", "segcli.datasets",
             "segcli.config"),
    "engine": ("segcli.cli", "segcli.services", "segcli.backends", "segcli.config"),
    "datasets": ("segcli.cli", "segcli.services", "segcli.backends", "segcli.engine", "segcli.config"),
    "render": ("segcli.cli", "segcli.services", "segcli.backends", "segcli.engine", "segcli.config"),
    "backends": ("segcli.cli", "segcli.services"),
    "services": ("segcli.cli",),
}


def _imports(path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_imports_point_down(package):
    offenders = [f"{path.relative_to(REPO)} imports {name}"
                 for path in sorted((REPO / "segcli" / package).rglob("*.py"))
                 for name in _imports(path) if name.startswith(FORBIDDEN[package])]
    assert not offenders, offenders
