"""Predict: `segcli predict` on a folder of N images (masks + overlays + JSON written) vs the bare
model forward loop on the same, already decoded and preprocessed images (goal >= 0.8x its img/s).

Trains a small segcli_UNet version first (a few CPU seconds) in a temporary segcli home.
Usage: python bench/bench_predict.py [--n 200] [--size 256] [--template segcli_UNet]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import SEGCLI, machine, segcli_env, shapes, timed  # noqa: E402


def bare_forward_img_s(model_dir: Path, images: Path, batch: int) -> float:
    import numpy as np
    import torch
    from PIL import Image

    from segcli.engine import data
    from segcli.engine.predict import Predictor

    predictor = Predictor.load(model_dir)
    arrays = [np.asarray(Image.open(p).convert("RGB")) for p in sorted(images.iterdir())]
    resized = [data.resize_image(a, data.resized_hw(*a.shape[:2], predictor.image_size)) for a in arrays]
    batches = [data.to_batch(resized[i:i + batch], [np.zeros(r.shape[:2], np.uint8) for r in resized[i:i + batch]])[0]
               for i in range(0, len(resized), batch)]
    with torch.inference_mode(), predictor.rt.autocast():
        predictor.model(batches[0])  # warm-up
        start = time.perf_counter()
        for x in batches:
            predictor.model(x).argmax(1)
        elapsed = time.perf_counter() - start
    return len(arrays) / elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--template", default="segcli_UNet")
    args = parser.parse_args()
    train_data, images = shapes(48, args.size, seed=0), shapes(args.n, args.size, seed=7) / "images"
    with tempfile.TemporaryDirectory() as tmp:
        env = segcli_env(Path(tmp) / "home")
        for argv in (["app", "create", "b"], ["dataset", "create", "d", "--app", "b"],
                     ["dataset", "upload", "d", "--app", "b", "--images", str(train_data / "images"),
                      "--masks", str(train_data / "masks"), "-q"],
                     ["model", "create", "m", "--app", "b"],
                     ["train", "--template", args.template, "--model", "m", "--app", "b", "--dataset", "d",
                      "--set", "num_epochs=1", "--set", f"image_size=[{args.size},{args.size}]", "-q"]):
            timed([*SEGCLI, *argv], env)
        predict_s = timed([*SEGCLI, "predict", "--model", "m", "--app", "b", str(images), "--out",
                           str(Path(tmp) / "out"), "-q", "-o", "json"], env)
        model_dir = next((Path(tmp) / "home" / "data" / "runs").iterdir()) / "model"
        bare = bare_forward_img_s(model_dir, images, batch=8)
    ours = args.n / predict_s
    print(f"machine: {machine()}")
    print(f"{args.n} images {args.size}px, template {args.template}, batch 8")
    print(f"bare forward loop:  {bare:7.1f} img/s   (anchor; decoded+preprocessed in memory, no output)")
    print(f"segcli predict:     {ours:7.1f} img/s   ratio {ours / bare:.2f}x (goal >= 0.8x); "
          f"whole command incl. start-up, model load, decode, masks+overlays+JSON")


if __name__ == "__main__":
    main()
