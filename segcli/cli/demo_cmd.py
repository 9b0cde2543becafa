"""segcli demo: the whole pipeline on generated data, printing each command as it runs it.

With -o json the steps' own data output goes to stderr with their progress, the eval step runs
with -o json captured, and the one summary object is the last (and only) thing on stdout.
"""

from __future__ import annotations

import contextlib
import io
import json
import shlex
import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from segcli.cli import complete
from segcli.cli.context import OutputOpt, out
from segcli.core.errors import ExitCode, SegcliError
from segcli.core.template_names import EFFNET

DEMO_APP, DEMO_DATASET, DEMO_HELD_OUT, DEMO_MODEL = "segcli-demo", "shapes", "shapes-held-out", "shapes-segmenter"
DEMO_TEMPLATE = EFFNET
HELD_OUT_IMAGES = 24  # enough that one odd image does not swing the demo's mIoU


def _run(argv: list[str], stdout) -> None:
    """One real CLI step in-process; its stdout goes to `stdout` (stderr in json mode)."""
    from segcli.cli.main import main

    print(f"\n$ segcli {shlex.join(argv)}", file=sys.stderr, flush=True)
    with contextlib.redirect_stdout(stdout):
        code = main(argv)
    if code != 0:
        failed = SegcliError(
            f"demo step failed (exit {code}): segcli {shlex.join(argv)}", hint="re-run that command with --debug"
        )
        if code in set(ExitCode):
            failed.exit_code = ExitCode(code)  # the step's reason (11 missing extra, 12 disk...)
        raise failed


def demo(
    directory: Annotated[Path, typer.Option("--dir", help="Where to put the generated data and outputs.")] = Path(
        "segcli-demo"
    ),
    images: Annotated[int, typer.Option("--images", min=8, max=2000, help="Training images to generate.")] = 160,
    size: Annotated[int, typer.Option("--size", min=64, max=1024, help="Image side in pixels.")] = 192,
    # 10, not 8: the held-out mIoU after 8 epochs was 0.9008 on an AMD EPYC and 0.8991 on an
    # Intel Xeon (the same seeds; the CPUs' kernels round differently); 10 gave 0.9080 on the Xeon
    # for ~10 s more (bench/RESULTS.md, "The demo across CPUs").
    epochs: Annotated[int, typer.Option("--epochs", min=1, max=200, help="Training epochs.")] = 10,
    template: Annotated[
        str, typer.Option("--template", help="Training template.", autocompletion=complete.templates)
    ] = DEMO_TEMPLATE,
    output: OutputOpt = "table",
) -> None:
    """Generate a shapes dataset and run every step: app, upload, version, model, params, train, predict, eval.

    Deterministic data (circles, squares, triangles; colour does not tell the class), a few CPU
    minutes end to end. The overlays land in DIR/predictions/. -o json prints one summary
    object ({"mIoU", "per_class", "seconds", "overlays", "model", "app"}) on stdout.
    """
    from segcli.datasets.synth import generate_shapes

    started = time.monotonic()
    sink = out(output)
    step_out = sys.stdout if output == "table" else sys.stderr
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        from segcli.core.faults import cannot_write

        raise cannot_write(exc, directory, hint="choose another --dir") from None
    data, held_out, predictions = directory / "data", directory / "held-out", directory / "predictions"
    generate_shapes(data, n=images, size=size, seed=0)
    generate_shapes(held_out, n=HELD_OUT_IMAGES, size=size, seed=1)
    print(f"generated {images} training and {HELD_OUT_IMAGES} held-out images in {directory}", file=sys.stderr)
    params = directory / "params.yaml"
    steps = [
        ["app", "create", DEMO_APP, "--exist-ok"],
        ["dataset", "create", DEMO_DATASET, "--app", DEMO_APP, "--exist-ok"],
        [
            "dataset",
            "upload",
            DEMO_DATASET,
            "--app",
            DEMO_APP,
            "--images",
            str(data / "images"),
            "--masks",
            str(data / "masks"),
        ],
        ["app", "concepts", DEMO_APP],
        ["model", "types"],
        ["model", "create", DEMO_MODEL, "--app", DEMO_APP, "--exist-ok"],
        ["template", "list"],
        [
            "template",
            "params",
            template,
            "-f",
            str(params),
            "--app",
            DEMO_APP,
            "--dataset",
            DEMO_DATASET,
            "--all-concepts",
            "--set",
            f"num_epochs={epochs}",
            "--set",
            f"image_size=[{size},{size}]",
        ],
        ["train", "--model", DEMO_MODEL, "--app", DEMO_APP, "--params", str(params)],
        ["predict", "--model", DEMO_MODEL, "--app", DEMO_APP, str(held_out / "images"), "--out", str(predictions)],
        ["dataset", "create", DEMO_HELD_OUT, "--app", DEMO_APP, "--exist-ok"],
        [
            "dataset",
            "upload",
            DEMO_HELD_OUT,
            "--app",
            DEMO_APP,
            "--images",
            str(held_out / "images"),
            "--masks",
            str(held_out / "masks"),
        ],
    ]
    for argv in steps:
        _run(argv, step_out)
    eval_argv = ["model", "eval", "--model", DEMO_MODEL, "--app", DEMO_APP, "--dataset", DEMO_HELD_OUT]
    if output == "table":
        _run(eval_argv, step_out)
        print(f"\ndone in {time.monotonic() - started:.0f} s. Overlays: {predictions}/*.overlay.png", file=sys.stderr)
        return
    captured = io.StringIO()
    _run([*eval_argv, "-o", "json"], captured)
    result = json.loads(captured.getvalue())
    sink.data(
        {
            "mIoU": result["mIoU"],
            "per_class": result["per_class"],
            "seconds": round(time.monotonic() - started, 1),
            "overlays": str(predictions),
            "model": DEMO_MODEL,
            "app": DEMO_APP,
            "template": template,
        }
    )
