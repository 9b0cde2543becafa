"""segcli predict: masks, overlays and predictions.json for images, folders, globs and videos."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from segcli.cli.context import (
    STATE,
    AppOpt,
    EngineOpt,
    FiniteFloat,
    MaxMegapixelsOpt,
    OutputOpt,
    OverlapOpt,
    PrecisionOpt,
    QuietOpt,
    RequiredModelOpt,
    TileOpt,
    TrainedVersionOpt,
    one_of,
    out,
)
from segcli.render.progress import progress_mode

DRAFT_FORMATS = ("coco", "labelme", "yolo")  # render/preannotations.FORMATS (not imported: start-up)


def predict(
    inputs: Annotated[list[str], typer.Argument(help="Image files, folders, globs or videos.")],
    model: RequiredModelOpt,
    app: AppOpt = None,
    version: TrainedVersionOpt = None,
    out_dir: Annotated[
        Optional[Path],
        typer.Option("--out", help="Write <name>.mask.png, <name>.overlay.png and predictions.json here."),
    ] = None,
    threshold: Annotated[
        float,
        typer.Option("--threshold", click_type=FiniteFloat(0.0, 1.0), help="Drop regions whose score is below this."),
    ] = 0.05,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, max=128, help="Images per forward pass.")] = 8,
    engine: EngineOpt = "auto",
    precision: PrecisionOpt = "fp32",
    tile: TileOpt = "auto",
    overlap: OverlapOpt = None,
    max_megapixels: MaxMegapixelsOpt = None,
    drafts: Annotated[
        Optional[str],
        typer.Option(
            "--format",
            callback=lambda v: v if v is None else one_of(*DRAFT_FORMATS)(v),
            help="Also write pre-annotations a labelling tool imports as drafts, in --out DIR/FORMAT/: "
            "coco | labelme | yolo (segcli dataset upload --from reads them back).",
        ),
    ] = None,
    quiet: QuietOpt = False,
    output: OutputOpt = "table",
) -> None:
    """Segment images and videos with a trained model version.

    Photos of any size: predicted at the version's geometry (resized per image_size, or at
    native resolution with sliding windows, see --tile), masks at the photo's own size, in
    bounded memory (a 100-megapixel photo needs --max-megapixels 120, and under 2 GB).

    predictions.json: {"classes": [...], "items": [...], "skipped": [...]}; classes[i] is the
    concept whose pixels have value i in every mask PNG (classes[0] = background); each item has
    input, mask_path, overlay_path and regions (concept, score, area, bbox, mask as COCO RLE);
    skipped lists the inputs that could not be read ({input, reason}). Exit 5 when none could.

    --format coco|labelme|yolo also writes the predictions as pre-annotations in DIR/FORMAT/
    (the images beside them), to correct in CVAT, Label Studio or LabelMe and upload back with
    segcli dataset upload D --from DIR/FORMAT.

    --precision int8 (or fp16) runs a quantized (half-precision) copy of the version on ONNX
    Runtime, built on first use and cached beside its weights; its held-out mIoU is measured then
    and shown by segcli model show.

    \b
    Examples:
      segcli predict photos/ --model m --app a --out preds
      segcli predict photos/ --model m --app a --out preds --precision int8
    """
    from segcli.services.predict import predict as run_predict

    sink = out(output, quiet)
    doc = run_predict(
        STATE.backend,
        STATE.app_id(app),
        model,
        version,
        inputs,
        out_dir,
        threshold,
        batch_size,
        progress_mode(quiet),
        sink.warn,
        engine=engine,
        notify=sink.info,
        tile=tile,
        overlap=overlap,
        drafts=drafts,
        precision=precision,
    )
    if output != "table":
        sink.data(doc)
        return
    rows = [
        {
            "input": item["input"],
            "regions": ", ".join(f"{r['concept']['name']} {r['score']:.2f}" for r in item["regions"]),
            "overlay": item.get("overlay_path"),
        }
        for item in doc["items"]
    ]
    sink.data(rows, ["input", "regions", "overlay"], title="predictions")
    if out_dir is not None:
        skipped = f" ({len(doc['skipped'])} inputs skipped)" if doc["skipped"] else ""
        sink.info(f"wrote {len(doc['items'])} masks and overlays, and predictions.json, to {out_dir}{skipped}")
        if drafts:
            sink.info(
                f"pre-annotations ({drafts}) in {out_dir / drafts}: upload corrected ones with "
                f"segcli dataset upload DATASET --from {out_dir / drafts}"
            )
