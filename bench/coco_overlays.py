"""Default segcli_EfficientNetLite0 training on the seed's 10 real COCO photos, overlays as one PNG.

Runs the real CLI in a temporary segcli home: upload the COCO subset, train with the template's
defaults (more epochs than its 8, since 10 photos are few: --epochs), predict the same photos,
and tile the overlays (with their legends) into OUT (default bench/coco_overlays.png).
The photos are the training photos: this shows what the model learned, not held-out skill.
The raw photos are not copied anywhere; the figure is generated.

Usage: python bench/coco_overlays.py [--coco-dir ../shared/data/coco-seg-sample] [--epochs 30] [--out PNG]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO, cli, machine, segcli_env  # noqa: E402


def contact_sheet(overlays: list[Path], out: Path, height: int = 260, per_row: int = 5) -> None:
    from PIL import Image

    tiles = []
    for p in overlays:
        with Image.open(p) as im:
            im = im.convert("RGB")
            tiles.append(im.resize((round(im.width * height / im.height), height), Image.LANCZOS))
    rows = [tiles[i : i + per_row] for i in range(0, len(tiles), per_row)]
    width = max(sum(t.width for t in r) for r in rows)
    sheet = Image.new("RGB", (width, height * len(rows)), "white")
    for y, row in enumerate(rows):
        x = 0
        for t in row:
            sheet.paste(t, (x, y * height))
            x += t.width
    # 256 colours keep the file small; overlays are flat tints over photos.
    sheet.quantize(256, dither=Image.Dither.NONE).save(out, optimize=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--coco-dir", type=Path, default=REPO.parent / "shared" / "data" / "coco-seg-sample")
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "coco_overlays.png")
    args = ap.parse_args()
    print(f"machine: {machine()}; {time.strftime('%Y-%m-%d %H:%M')}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        env = {**segcli_env(Path(tmp) / "home"), "PYTHONPATH": str(REPO)}
        cli(env, "app", "create", "coco")
        cli(env, "dataset", "create", "photos", "--app", "coco")
        cli(
            env,
            "dataset",
            "upload",
            "photos",
            "--app",
            "coco",
            "--coco",
            str(args.coco_dir / "annotations" / "instances_val2017_subset.json"),
            "--images",
            str(args.coco_dir / "images"),
        )
        cli(env, "model", "create", "m", "--app", "coco")
        t0 = time.perf_counter()
        cli(
            env,
            "train",
            "--model",
            "m",
            "--app",
            "coco",
            "--dataset",
            "photos",
            "--template",
            "segcli_EfficientNetLite0",
            "--set",
            f"num_epochs={args.epochs}",
        )
        seconds = time.perf_counter() - t0
        show = json.loads(cli(env, "model", "show", "m", "--app", "coco", "-o", "json").stdout)
        version = show["model_versions"][-1]
        pred = Path(tmp) / "pred"
        cli(env, "predict", "--model", "m", "--app", "coco", str(args.coco_dir / "images"), "--out", str(pred))
        contact_sheet(sorted(pred.glob("*.overlay.png")), args.out)
    print(
        f"trained {args.epochs} epochs in {seconds:.0f} s (val mIoU {version.get('val_mIoU')}, "
        f"{len(version.get('concepts') or [])} concepts); wrote {args.out}"
    )


if __name__ == "__main__":
    main()
