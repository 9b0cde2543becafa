"""segcli demo: the whole pipeline on generated data, printing each command as it runs it."""
from __future__ import annotations

import shlex
import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from segcli.cli import complete
from segcli.core.errors import InvalidInputError, SegcliError

DEMO_APP, DEMO_DATASET, DEMO_HELD_OUT, DEMO_MODEL = "segcli-demo", "shapes", "shapes-held-out", "shapes-segmenter"


def _run(argv: list[str]) -> None:
    from segcli.cli.main import main

    print(f"\n$ segcli {shlex.join(argv)}", file=sys.stderr, flush=True)
    code = main(argv)
    if code != 0:
        raise SegcliError(f"demo step failed (exit {code}): segcli {shlex.join(argv)}",
                          hint="re-run that command with --debug")


def demo(
    directory: Annotated[Path, typer.Option("--dir", help="Where to put the generated data and outputs.")] = Path("segcli-demo"),
    images: Annotated[int, typer.Option("--images", min=8, max=2000, help="Training images to generate.")] = 160,
    size: Annotated[int, typer.Option("--size", min=64, max=1024, help="Image side in pixels.")] = 128,
    epochs: Annotated[int, typer.Option("--epochs", min=1, max=200, help="Training epochs.")] = 25,
    template: Annotated[str, typer.Option("--template", help="Training template.", autocompletion=complete.templates)] = "segcli_UNet",
) -> None:
    """Generate a shapes dataset and run every step: app, upload, version, model, params, train, predict, eval.

    Deterministic data (circles, squares, triangles; colour does not tell the class), a few CPU
    minutes end to end. The overlays land in DIR/predictions/.
    """
    from segcli.datasets.synth import generate_shapes

    started = time.monotonic()
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InvalidInputError(f"cannot write {directory}: {exc.strerror}", hint="choose another --dir") from None
    data, held_out = directory / "data", directory / "held-out"
    generate_shapes(data, n=images, size=size, seed=0)
    generate_shapes(held_out, n=8, size=size, seed=1)
    print(f"generated {images} training and 8 held-out images in {directory}", file=sys.stderr)
    params = directory / "params.yaml"
    steps = [
        ["app", "create", DEMO_APP, "--exist-ok"],
        ["dataset", "create", DEMO_DATASET, "--app", DEMO_APP, "--exist-ok"],
        ["dataset", "upload", DEMO_DATASET, "--app", DEMO_APP, "--images", str(data / "images"), "--masks", str(data / "masks")],
        ["app", "concepts", DEMO_APP],
        ["model", "types"],
        ["model", "create", DEMO_MODEL, "--app", DEMO_APP, "--exist-ok"],
        ["template", "list"],
        ["template", "params", template, "-f", str(params), "--app", DEMO_APP, "--dataset", DEMO_DATASET,
         "--all-concepts", "--set", f"num_epochs={epochs}", "--set", f"image_size=[{size},{size}]"],
        ["train", "--model", DEMO_MODEL, "--app", DEMO_APP, "--params", str(params)],
        ["predict", "--model", DEMO_MODEL, "--app", DEMO_APP, str(held_out / "images"), "--out", str(directory / "predictions")],
        ["dataset", "create", DEMO_HELD_OUT, "--app", DEMO_APP, "--exist-ok"],
        ["dataset", "upload", DEMO_HELD_OUT, "--app", DEMO_APP, "--images", str(held_out / "images"),
         "--masks", str(held_out / "masks")],
        ["model", "eval", "--model", DEMO_MODEL, "--app", DEMO_APP, "--dataset", DEMO_HELD_OUT],
    ]
    for argv in steps:
        _run(argv)
    print(f"\ndone in {time.monotonic() - started:.0f} s. Overlays: {directory / 'predictions'}/*.overlay.png",
          file=sys.stderr)
