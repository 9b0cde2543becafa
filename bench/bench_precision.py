"""Precision and engines (issue 22): `segcli predict --precision int8|fp16|fp32` vs the bare
float32 ONNX Runtime loop (the anchor, as bench_predict.py: the exported file's session.run +
argmax over batches already decoded and normalised in memory) on the same N images, and the
held-out mIoU of each precision on the demo data and on data it was not tuned on.

Goal: int8 predict >= 1.6x the anchor's images/s, held-out mIoU within 0.01 of float32.

1. The demo model: `segcli demo` (EfficientNet-Lite0, 160 shapes images at 192 px, 10 epochs),
   or an existing demo home (--demo-home, a SEGCLI_HOME where `segcli demo` ran).
2. Speed: the anchor and each precision's whole predict command alternate (anchor, int8,
   anchor, fp32, anchor, fp16, anchor, ...) on N generated images at the demo's size; each
   command is compared with the mean of the anchors just before and after it; medians of
   --rounds. The graphs are built by a warm-up predict on one image first (time printed apart).
3. mIoU per precision: `segcli model eval --precision P` on the demo's held-out dataset (24
   images the model never saw), and the version's own held-out split (model show).
4. Not tuned on: bench/bigscene.py data (big photos, other classes), a segcli_UNet trained on
   it, fp32 vs int8 eval on its test images (--skip-other skips it).
5. --recipes: the int8 choices measured on the demo model: QDQ vs QOperator, MinMax / Entropy /
   Percentile calibration, Conv only vs the default operator set; bare predict-graph img/s
   relative to float32's in the same run, held-out mIoU. engine/precision.INT8 is the choice.
6. --openvino: OpenVINO's CPU plugin vs ONNX Runtime's CPU provider on the same exported file
   and the same batches (fp32, and the int8 QDQ export), alternated.
7. --lanes: the engine's model runs over the N images in batches of 8, one at a time on its
   all-cores session vs side by side in lanes (engine/onnx_predict.LANES), per precision, alternated.
8. --model-bound unet|segformer (repeatable): steps 2-3 again on another architecture trained
   here on generated shapes at 256 px, where the model, not decoding and writing, is most of
   each image's cost (MODEL_BOUND).

Usage: python bench/bench_precision.py [--n 400] [--rounds 2] [--demo-home DIR] [--recipes]
       [--openvino] [--lanes] [--skip-other] [--skip-speed] [--model-bound unet|segformer ...]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_predict import bare_ort, load_inputs  # noqa: E402

from common import SEGCLI, cli, machine, segcli_env, shapes, timed  # noqa: E402

DEMO_APP, DEMO_MODEL, DEMO_HELD_OUT, DEMO_SIZE = "segcli-demo", "shapes-segmenter", "shapes-held-out", 192
PRECISIONS = ("int8", "fp32", "fp16")


def load_line() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def demo_home(args, tmp: Path) -> dict:
    if args.demo_home:
        return segcli_env(Path(args.demo_home))
    env = segcli_env(tmp / "demo-home")
    seconds = timed([*SEGCLI, "demo", "--dir", str(tmp / "demo"), "-o", "json"], env)
    print(f"segcli demo (train, predict, eval): {seconds:.0f} s", flush=True)
    return env


def model_dir(env: dict) -> Path:
    runs = sorted((Path(env["SEGCLI_HOME"]) / "data" / "runs").iterdir(), key=lambda p: p.stat().st_mtime)
    return runs[-1] / "model"


def eval_miou(env: dict, app: str, model: str, dataset: str, precision: str) -> float:
    done = cli(
        env,
        "model",
        "eval",
        "--model",
        model,
        "--app",
        app,
        "--dataset",
        dataset,
        "--precision",
        precision,
        "-q",
        "-o",
        "json",
    )
    return json.loads(done.stdout)["mIoU"]


def speed(env: dict, tmp: Path, images: Path, rounds: int, app: str = DEMO_APP, model: str = DEMO_MODEL) -> dict:
    tmp = tmp / f"speed-{app}-{model}"
    tmp.mkdir(exist_ok=True)
    onnx_file = tmp / "fp32.onnx"
    cli(env, "model", "export", "--model", model, "--app", app, "-f", str(onnx_file), "-q")
    first = tmp / "first"
    first.mkdir(exist_ok=True)
    if not (first / "one.jpg").exists():
        os.symlink(next(images.iterdir()), first / "one.jpg")
    warm = {}
    for p in PRECISIONS:  # builds (and measures held-out mIoU of) each precision's graph, once
        warm[p] = timed(
            [
                *SEGCLI,
                "predict",
                "--model",
                model,
                "--app",
                app,
                str(first),
                "--precision",
                p,
                "-q",
                "-o",
                "json",
            ],
            env,
        )
    import onnx

    meta = {p.key: p.value for p in onnx.load(str(onnx_file)).metadata_props}
    batches = load_inputs(images, meta, batch=8)
    n = sum(len(b) for b in batches)
    anchors = [bare_ort(onnx_file, batches)[0]]
    ratios: dict = {p: [] for p in PRECISIONS}
    img_s: dict = {p: [] for p in PRECISIONS}
    for r in range(rounds):
        for p in PRECISIONS:
            seconds = timed(
                [
                    *SEGCLI,
                    "predict",
                    "--model",
                    model,
                    "--app",
                    app,
                    str(images),
                    "--out",
                    str(tmp / f"out-{p}-{r}"),
                    "--precision",
                    p,
                    "-q",
                    "-o",
                    "json",
                ],
                env,
            )
            img_s[p].append(n / seconds)
            anchors.append(bare_ort(onnx_file, batches)[0])
            ratios[p].append(img_s[p][-1] / ((anchors[-2] + anchors[-1]) / 2))
            print(
                f"round {r + 1} {p}: {img_s[p][-1]:.1f} img/s, anchors {anchors[-2]:.1f} / {anchors[-1]:.1f} "
                f"-> {ratios[p][-1]:.2f}x  (load {load_line()})",
                flush=True,
            )
    agree = {}
    import numpy as np
    from PIL import Image

    for p in ("fp16", "int8"):
        same = [
            np.mean(np.asarray(Image.open(a)) == np.asarray(Image.open(b)))
            for a, b in zip(
                sorted((tmp / "out-fp32-0").glob("*.mask.png")), sorted((tmp / f"out-{p}-0").glob("*.mask.png"))
            )
        ]
        agree[p] = float(np.mean(same))
    return {
        "n": n,
        "warm": warm,
        "anchors": anchors,
        "ratios": ratios,
        "img_s": img_s,
        "agree": agree,
        "onnx_file": onnx_file,
        "batches": batches,
    }


def report_speed(s: dict, what: str, rounds: int) -> None:
    print(f"\n{s['n']} images {what}, batch 8, {rounds} rounds")
    print(
        "first predict per precision (1 image; builds the graph, measures held-out mIoU): "
        + ", ".join(f"{p} {t:.1f} s" for p, t in s["warm"].items())
    )
    for p in PRECISIONS:
        print(
            f"segcli predict --precision {p}: median {statistics.median(s['img_s'][p]):.1f} img/s = "
            f"{statistics.median(s['ratios'][p]):.2f}x the bare fp32 ORT loop "
            f"(rounds: {', '.join(f'{r:.2f}' for r in s['ratios'][p])})"
        )
    print("mask pixels equal to fp32's: " + ", ".join(f"{p} {v:.4f}" for p, v in s["agree"].items()), flush=True)


# Models whose per-image cost is the model's own (plain or attention convolutions at 256 px),
# unlike the demo's EfficientNet-Lite0 at 192 px, where decoding and writing weigh as much:
# template, --set values, epochs.
MODEL_BOUND = {
    "unet": ("segcli_UNet", ["model_size=small"], 30),  # the template's default epochs: a trained model
    "segformer": (
        "MMSegmentation_SegFormer",
        ["model_size=b0", "pretrained_weights=None", "batch_size=8", "per_item_lrate=7.5e-5"],
        20,
    ),
}
MODEL_BOUND_SIZE = 256


def train_app(env: dict, app: str, model: str, datasets: dict, template: str, settings: list[str]) -> None:
    """App `app` with one dataset per `datasets` item (name -> a folder of images/ + masks/) and
    model `model` trained with `template` on the dataset named "train" (`settings`: k=v)."""
    cli(env, "app", "create", app)
    for name, data in datasets.items():
        cli(env, "dataset", "create", name, "--app", app)
        cli(
            env,
            "dataset",
            "upload",
            name,
            "--app",
            app,
            "--images",
            str(data / "images"),
            "--masks",
            str(data / "masks"),
            "-q",
        )
    cli(env, "model", "create", model, "--app", app)
    sets = [x for kv in settings for x in ("--set", kv)]
    cli(env, "train", "--template", template, "--model", model, "--app", app, "--dataset", "train", *sets, "-q")


def model_bound(arch: str, tmp: Path, n: int, rounds: int) -> None:
    """The speed part and held-out mIoU per precision on another architecture, trained here on
    generated shapes at 256 px (160 train, 24 held out, n others for speed)."""
    template, sets, epochs = MODEL_BOUND[arch]
    size = MODEL_BOUND_SIZE
    train, held, images = shapes(160, size, 0), shapes(24, size, 1), shapes(n, size, 7) / "images"
    env = segcli_env(tmp / f"{arch}-home")
    start = time.perf_counter()
    train_app(
        env,
        "mb",
        arch,
        {"train": train, "held": held},
        template,
        [*sets, f"num_epochs={epochs}", f"image_size=[{size},{size}]"],
    )
    print(
        f"\n{arch}: {template} {' '.join(sets)}, {epochs} epochs at {size} px: uploaded and trained in {time.perf_counter() - start:.0f} s",
        flush=True,
    )
    report_speed(speed(env, tmp, images, rounds, "mb", arch), f"{size}px, {template}", rounds)
    got = {p: eval_miou(env, "mb", arch, "held", p) for p in PRECISIONS}
    print(
        "held-out mIoU (24 images): " + ", ".join(f"{p} {m:.4f} ({m - got['fp32']:+.4f})" for p, m in got.items()),
        flush=True,
    )


def recipes(env: dict, images: Path) -> None:
    """int8 choices on the demo model: bare predict-graph speed vs float32's, held-out mIoU."""
    import numpy as np
    import onnxruntime as ort
    from PIL import Image

    from segcli.core.metrics import ConfusionMatrix
    from segcli.engine import precision as P
    from segcli.engine.onnx_predict import session_options

    mdir = model_dir(env)
    fp32 = (mdir / "model.onnx").read_bytes()
    classes = json.loads((mdir / "config.json").read_text())["classes"]
    train = shapes(160, DEMO_SIZE, seed=0) / "images"  # the demo's training images (its calibration)
    held = shapes(24, DEMO_SIZE, seed=1)  # the demo's held-out images
    calib = [np.asarray(Image.open(p).convert("RGB")) for p in sorted(train.iterdir())[::5][:32]]
    imgs = [np.asarray(Image.open(p).convert("RGB")) for p in sorted(images.iterdir())[:96]]  # speed: 96 images
    test = [np.asarray(Image.open(p).convert("RGB")) for p in sorted((held / "images").iterdir())]
    masks = [np.asarray(Image.open(p)) for p in sorted((held / "masks").iterdir())]

    def run(data: bytes, batch_images) -> tuple[float, list]:
        sess = ort.InferenceSession(data, sess_options=session_options(), providers=["CPUExecutionProvider"])
        hw = np.asarray(batch_images[0].shape[:2], np.int64)
        batches = [np.stack(batch_images[i : i + 8]) for i in range(0, len(batch_images), 8)]
        sess.run(None, {"image": batches[0], "out_size": hw})
        start, labels = time.perf_counter(), []
        for b in batches:
            labels.extend(sess.run(["label"], {"image": b, "out_size": hw})[0])
        return len(batch_images) / (time.perf_counter() - start), labels

    def miou(data: bytes) -> float:
        _, labels = run(data, test)
        m = ConfusionMatrix(len(classes))
        for lab, target in zip(labels, masks):
            m.update(lab, target)  # the shapes masks' values are the class indices
        return m.compute(classes)["mIoU"]

    base = miou(fp32)
    print(
        f"\nint8 recipes on the demo model ({len(imgs)} images for speed, {len(test)} held-out for mIoU); "
        f"fp32 held-out mIoU {base:.4f}",
        flush=True,
    )
    grid = [
        P.Int8Recipe(f, c, ops)
        for f in ("QDQ", "QOperator")
        for c in ("MinMax", "Entropy", "Percentile")
        for ops in (("Conv", "MatMul"), ())
    ]
    for recipe in [None, *grid]:
        try:
            start = time.perf_counter()
            if recipe is None:
                data, name = P.fp16_graph(fp32, "k"), "fp16"
            else:
                data, name = P.int8_graph(fp32, "k", P.predict_feeds(calib), recipe), recipe.tag()
            build = time.perf_counter() - start
            ref, _ = run(fp32, imgs)
            got, _ = run(data, imgs)
            m = miou(data)
            print(
                f"{name:42s} {got:6.1f} img/s = {got / ref:.2f}x fp32 ({ref:.1f}); held-out mIoU {m:.4f} "
                f"({m - base:+.4f}); built in {build:.1f} s; load {load_line()}",
                flush=True,
            )
        except Exception as exc:  # noqa: BLE001 - a recipe ONNX Runtime cannot run is a result too
            print(f"{recipe}: failed ({exc.__class__.__name__}: {str(exc)[:120]})", flush=True)


def openvino_vs_ort(env: dict, tmp: Path, onnx_file: Path, batches: list, rounds: int) -> None:
    import openvino as ov

    int8_file = tmp / "int8.onnx"
    cli(
        env,
        "model",
        "export",
        "--model",
        DEMO_MODEL,
        "--app",
        DEMO_APP,
        "-f",
        str(int8_file),
        "--precision",
        "int8",
        "-q",
    )
    n = sum(len(b) for b in batches)

    def ov_loop(path: Path, hint: str) -> float:
        core = ov.Core()
        # INFERENCE_PRECISION_HINT: OpenVINO's CPU plugin runs float32 models in bf16 by
        # default on CPUs with AVX512-BF16/AMX (this one): f32 compares the engines, bf16 is
        # another precision.
        compiled = core.compile_model(
            core.read_model(str(path)),
            "CPU",
            {"INFERENCE_NUM_THREADS": str(os.cpu_count() or 1), "INFERENCE_PRECISION_HINT": hint},
        )
        request = compiled.create_infer_request()
        request.infer({"pixel_values": batches[0]})
        start = time.perf_counter()
        for x in batches:
            request.infer({"pixel_values": x})
            request.get_output_tensor(0).data.argmax(1)
        return n / (time.perf_counter() - start)

    print(
        f"\nOpenVINO {ov.__version__} CPU vs ONNX Runtime CPU on the fp32 export, same {n} images "
        f"(img/s; ORT runs the same file as OpenVINO unless said):",
        flush=True,
    )
    for name, path, hint in (
        ("fp32 file, OV f32", onnx_file, "f32"),
        ("fp32 file, OV bf16", onnx_file, "bf16"),
        ("int8 file, OV f32", int8_file, "f32"),
    ):
        ratios = []
        for r in range(rounds):
            a = bare_ort(onnx_file, batches)[0]
            o = ov_loop(path, hint)
            b = bare_ort(onnx_file, batches)[0]
            ratios.append(o / ((a + b) / 2))
            print(
                f"  {name} round {r + 1}: ORT fp32 {a:.1f} / {b:.1f}, OpenVINO {o:.1f} -> {ratios[-1]:.2f}x "
                f"(load {load_line()})",
                flush=True,
            )
        print(f"  {name}: OpenVINO / ORT fp32 median {statistics.median(ratios):.2f}x", flush=True)
    ort8 = statistics.median(bare_ort(int8_file, batches)[0] / bare_ort(onnx_file, batches)[0] for _ in range(rounds))
    print(f"  for reference: ORT on the int8 file / ORT fp32: {ort8:.2f}x", flush=True)


def lanes_vs_one(env: dict, images: Path, rounds: int) -> None:
    """The engine's model runs (OnnxPredictor.run on prepared batches of 8, as predict runs them)
    one at a time on the all-cores session vs side by side in lanes, alternated, per precision."""
    from concurrent.futures import ThreadPoolExecutor

    import numpy as np
    from PIL import Image

    from segcli.engine.onnx_predict import OnnxPredictor

    mdir = model_dir(env)
    pictures = [np.asarray(Image.open(p).convert("RGB")) for p in sorted(images.iterdir())]
    print(f"\nlanes: the engine's runs over {len(pictures)} images, batch 8, one at a time vs side by side", flush=True)
    for p in PRECISIONS:  # the graphs exist: speed()'s warm-up built them, or an earlier run
        engine = OnnxPredictor.load(mdir, precision_name=p)
        prepared = [engine.prepare(pictures[i : i + 8], 8) for i in range(0, len(pictures), 8)]
        lanes = engine.open_lanes(len(prepared))
        with ThreadPoolExecutor(lanes) as pool:

            def side_by_side() -> float:
                start = time.perf_counter()
                list(pool.map(lambda b: engine.run(b, lane=True), prepared))
                return len(pictures) / (time.perf_counter() - start)

            def one_at_a_time() -> float:
                start = time.perf_counter()
                for b in prepared:
                    engine.run(b)
                return len(pictures) / (time.perf_counter() - start)

            side_by_side(), one_at_a_time()  # warm-up: every session's first run
            pairs = [(one_at_a_time(), side_by_side()) for _ in range(rounds)]
        ratio = statistics.median(b / a for a, b in pairs)
        print(
            f"  {p}: one at a time {statistics.median(a for a, _ in pairs):.1f} img/s, {lanes} lanes "
            f"{statistics.median(b for _, b in pairs):.1f} img/s -> {ratio:.2f}x (load {load_line()})",
            flush=True,
        )


def other_dataset(tmp: Path) -> None:
    """A segcli_UNet trained on bench/bigscene.py data: fp32 vs int8 eval on its test images."""
    import subprocess

    data = tmp / "bigscene"
    subprocess.run(
        [
            sys.executable,
            str(Path(__file__).with_name("bigscene.py")),
            str(data),
            "--train",
            "32",
            "--test",
            "16",
            "--seed",
            "5",
        ],
        check=True,
        capture_output=True,
    )
    env = segcli_env(tmp / "big-home")
    train_app(
        env,
        "g",
        "u",
        {"train": data / "train", "test": data / "test"},
        "segcli_UNet",
        ["num_epochs=8", "model_size=small", "image_size=[256,256]"],
    )
    print(
        "\nnot tuned on: bigscene (32 train / 16 test photos, 1600-2400 px), segcli_UNet small at 256 px, 8 epochs",
        flush=True,
    )
    got = {p: eval_miou(env, "g", "u", "test", p) for p in ("fp32", "fp16", "int8")}
    for p, m in got.items():
        print(f"  {p}: test mIoU {m:.4f} ({m - got['fp32']:+.4f} vs fp32)", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--demo-home", help="a SEGCLI_HOME where `segcli demo` already ran")
    parser.add_argument("--recipes", action="store_true")
    parser.add_argument("--openvino", action="store_true")
    parser.add_argument("--lanes", action="store_true")
    parser.add_argument("--skip-other", action="store_true")
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument(
        "--model-bound",
        action="append",
        choices=sorted(MODEL_BOUND),
        default=[],
        help="also measure the speed goal and mIoU on this architecture at 256 px (repeatable)",
    )
    args = parser.parse_args()
    print(f"machine: {machine()}; load {load_line()}; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}", flush=True)
    images = shapes(args.n, DEMO_SIZE, seed=7) / "images"
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        env = demo_home(args, tmp)
        if args.recipes:
            recipes(env, images)
        if not args.skip_speed:
            s = speed(env, tmp, images, args.rounds)
            report_speed(s, f"{DEMO_SIZE}px, demo model (segcli_EfficientNetLite0)", args.rounds)
            for p in ("fp32", "fp16", "int8"):
                print(
                    f"demo held-out dataset ({DEMO_HELD_OUT}, 24 images) mIoU {p}: "
                    f"{eval_miou(env, DEMO_APP, DEMO_MODEL, DEMO_HELD_OUT, p):.4f}",
                    flush=True,
                )
            shown = json.loads(cli(env, "model", "show", DEMO_MODEL, "--app", DEMO_APP, "-o", "json").stdout)
            print(
                "version's own held-out split (model show):", json.dumps(shown["model_versions"][-1]["precision_mIoU"])
            )
            bench = json.loads(
                cli(env, "benchmark", "--model", DEMO_MODEL, "--app", DEMO_APP, "-q", "-o", "json").stdout
            )
            print("segcli benchmark (model only, in-memory images):")
            for row in bench["rows"]:
                print("  " + json.dumps(row))
            if args.openvino:
                openvino_vs_ort(env, tmp, s["onnx_file"], s["batches"], args.rounds)
        elif args.openvino:
            raise SystemExit("--openvino needs the speed part (drop --skip-speed)")
        if args.lanes:
            lanes_vs_one(env, images, args.rounds)
        for arch in args.model_bound:
            model_bound(arch, tmp, args.n, args.rounds)
        if not args.skip_other:
            other_dataset(tmp)
    print(f"load average after: {load_line()}")


if __name__ == "__main__":
    main()
