"""Predict: the whole `segcli predict` command on a folder of N images (decode, inference, masks +
overlays + predictions.json written, start-up and model load included) vs a bare ONNX Runtime
loop over the same images already decoded and normalised in memory (goal >= 0.8x its img/s).

Trains a segcli_UNet version for 1 epoch in a temporary segcli home, exports it with
`segcli model export` (the anchor's graph), and warms predict's own cached graph with a first
predict on one image (its time, which includes the once-per-version export, is printed apart).
The anchor and the command alternate (anchor, command, anchor, ..., anchor) so that load on a
shared machine hits both: each command run is compared with the mean of the anchors just before
and after it, median of `--rounds` reported. CPU seconds per image (user + sys, all threads) are
printed too: on a loaded machine they move much less than wall time.
Usage: python bench/bench_predict.py [--n 400] [--size 256] [--model-size small] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import SEGCLI, machine, segcli_env, shapes, timed, train_model  # noqa: E402


def load_inputs(images: Path, meta: dict, batch: int) -> list:
    import json

    import numpy as np
    from PIL import Image

    mean = np.asarray(json.loads(meta["segcli.mean"]), np.float32)
    std = np.asarray(json.loads(meta["segcli.std"]), np.float32)
    arrays = [np.asarray(Image.open(p).convert("RGB")) for p in sorted(images.iterdir())]
    x = [((a.astype(np.float32) / 255.0 - mean) / std).transpose(2, 0, 1) for a in arrays]
    return [np.ascontiguousarray(np.stack(x[i : i + batch])) for i in range(0, len(x), batch)]


def cpu_s(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def bare_ort(onnx_file: Path, batches: list) -> tuple[float, float]:
    """(img/s, CPU ms per image) of session.run + argmax over in-memory batches: the floor any
    predict command stands on."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(onnx_file), providers=["CPUExecutionProvider"])
    session.run(None, {"pixel_values": batches[0]})  # warm-up
    n = sum(len(b) for b in batches)
    start, cpu = time.perf_counter(), cpu_s(resource.RUSAGE_SELF)
    for x in batches:
        session.run(None, {"pixel_values": x})[0].argmax(1)
    return n / (time.perf_counter() - start), (cpu_s(resource.RUSAGE_SELF) - cpu) / n * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=400)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--model-size", default="small")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--torch", action="store_true", help="also time --engine torch once")
    args = parser.parse_args()
    train_data, images = shapes(48, args.size, seed=0), shapes(args.n, args.size, seed=7) / "images"
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        env = segcli_env(tmp_path / "home")
        env.pop("PYTHONDONTWRITEBYTECODE", None)  # as installed: modules compiled once
        train_model(env, train_data, args.model_size, args.size)
        onnx_file = tmp_path / "model.onnx"
        export_s = timed(
            [*SEGCLI, "model", "export", "--model", "m", "--app", "b", "--format", "onnx", "-f", str(onnx_file), "-q"],
            env,
        )
        first = tmp_path / "first"
        first.mkdir()
        os.symlink(next(images.iterdir()), first / "one.png")
        first_s = timed([*SEGCLI, "predict", "--model", "m", "--app", "b", str(first), "-q", "-o", "json"], env)

        import onnx

        meta = {p.key: p.value for p in onnx.load(str(onnx_file)).metadata_props}
        batches = load_inputs(images, meta, batch=8)
        anchors, ours, ratios, cpu_anchor, cpu_ours = [], [], [], [], []
        a, c = bare_ort(onnx_file, batches)
        anchors.append(a)
        cpu_anchor.append(c)
        for r in range(args.rounds):
            before = cpu_s(resource.RUSAGE_CHILDREN)
            seconds = timed(
                [
                    *SEGCLI,
                    "predict",
                    "--model",
                    "m",
                    "--app",
                    "b",
                    str(images),
                    "--out",
                    str(tmp_path / f"out{r}"),
                    "-q",
                    "-o",
                    "json",
                ],
                env,
            )
            cpu_ours.append((cpu_s(resource.RUSAGE_CHILDREN) - before) / args.n * 1000)
            ours.append(args.n / seconds)
            a, c = bare_ort(onnx_file, batches)
            anchors.append(a)
            cpu_anchor.append(c)
            ratios.append(ours[-1] / ((anchors[-2] + anchors[-1]) / 2))
        torch_img_s = None
        if args.torch:
            seconds = timed(
                [
                    *SEGCLI,
                    "predict",
                    "--model",
                    "m",
                    "--app",
                    "b",
                    str(images),
                    "--out",
                    str(tmp_path / "out-torch"),
                    "--engine",
                    "torch",
                    "-q",
                    "-o",
                    "json",
                ],
                env,
            )
            torch_img_s = args.n / seconds
    print(f"machine: {machine()}")
    print(f"{args.n} images {args.size}px, segcli_UNet {args.model_size} (1 epoch), batch 8, {args.rounds} rounds")
    print(f"model export --format onnx:   {export_s:6.2f} s  (whole command: start-up, torch export, check)")
    print(f"first predict (1 image):      {first_s:6.2f} s  (start-up and model load; training built the ONNX graph)")
    for r in range(args.rounds):
        print(
            f"round {r + 1}: bare ONNX Runtime loop {anchors[r]:6.1f} / {anchors[r + 1]:6.1f} img/s (anchor, before / "
            f"after), segcli predict {ours[r]:6.1f} img/s -> {ratios[r]:.2f}x"
        )
    print(
        f"segcli predict / bare ORT: median {statistics.median(ratios):.2f}x (goal >= 0.8x); whole command "
        f"incl. start-up, model load, decode, masks + overlays + predictions.json"
    )
    print(
        f"CPU per image: bare ORT {statistics.median(cpu_anchor):.1f} ms, segcli predict "
        f"{statistics.median(cpu_ours):.1f} ms (whole command) -> {statistics.median(cpu_anchor) / statistics.median(cpu_ours):.2f}x"
    )
    if torch_img_s is not None:
        print(
            f"segcli predict --engine torch: {torch_img_s:6.1f} img/s "
            f"({torch_img_s / statistics.median(anchors):.2f}x the anchor)"
        )
    print(f"load average after: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
