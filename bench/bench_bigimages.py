"""Big photos with small objects: native-resolution training vs the short-side-256 default, class
weights, and predict's memory and time on 25 and 100 megapixel photos. Not a test: it prints the
figures for bench/RESULTS.md ("## Big images").

    python bench/bench_bigimages.py train [--runs default,native,native_auto] [--dir DIR]
    python bench/bench_bigimages.py memory [--dir DIR]
    python bench/bench_bigimages.py blend [--dir DIR]      (after `train`, on its "native" version)

train: generates the big-scene dataset (bench/bigscene.py: 40 training photos of 1600x1200 to
2400x1800, one large class ~30% of the pixels, one class of small objects 12-40 px ~0.5%; 20
held-out photos), uploads it through the real CLI into a fresh segcli home, trains one version
per run and evaluates each on the held-out photos (`model eval`, the same sliding windows as
predict). Every run in the same invocation, on the same data, one after another.

blend: how overlapping windows are combined, measured on the held-out photos with the "native"
version `train` made: the ramp (weights falling off towards each window's edge, what segcli
does) against a plain average of the windows, and the whole photo in one run (--tile off) as
the seam-free reference: held-out mIoU of each, and how often each disagrees with the whole
photo on the pixels within 8 px of a window border vs elsewhere (a seam is a border band that
disagrees more than the rest).

memory: trains a throwaway 8-class version (1 epoch on generated data: its weights do not
matter), writes 25 MP and 100 MP JPEGs, and runs `segcli predict` on each, sampling the RSS of
the whole process tree every 20 ms; prints peak RSS, seconds, and the 100/25 time ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import bigscene  # noqa: E402

SEGCLI = [sys.executable, "-m", "segcli"]
EFFNET = "segcli_EfficientNetLite0"
# The documented large-image settings (README "Big photos"): what each run adds to the template.
RUNS = {
    "default": [],
    "native": ["--set", "resize_mode=native", "--set", "crop_size=384", "--set", "num_epochs=6"],
    "native_auto": [
        "--set",
        "resize_mode=native",
        "--set",
        "crop_size=384",
        "--set",
        "num_epochs=6",
        "--set",
        "class_weights=auto",
    ],
}


def cli(home: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "SEGCLI_HOME": str(home)}
    done = subprocess.run([*SEGCLI, *map(str, args)], env=env, capture_output=True, text=True)
    if check and done.returncode != 0:
        raise SystemExit(f"segcli {' '.join(map(str, args))} failed ({done.returncode}):\n{done.stderr}")
    return done


def prepare(work: Path) -> Path:
    data, home = work / "data", work / "home"
    if not (data / "test" / "classes.txt").exists():
        bigscene.generate(data / "train", 40, seed=0)
        bigscene.generate(data / "test", 20, seed=0, start=10_000)
    if not (home / "done").exists():
        cli(home, "app", "create", "big", "--exist-ok")
        for name in ("train", "test"):
            cli(home, "dataset", "create", name, "--app", "big", "--exist-ok")
            cli(
                home,
                "dataset",
                "upload",
                name,
                "--app",
                "big",
                "--images",
                data / name / "images",
                "--masks",
                data / name / "masks",
                "-q",
            )
        (home / "done").write_text("")
    return home


def train_run(home: Path, name: str, extra: list[str]) -> dict:
    cli(home, "model", "create", name, "--app", "big", "--exist-ok")
    t0 = time.perf_counter()
    done = cli(
        home,
        "train",
        "--model",
        name,
        "--app",
        "big",
        "--dataset",
        "train",
        "--template",
        EFFNET,
        *extra,
        "-q",
        "-o",
        "json",
        check=False,
    )
    seconds = time.perf_counter() - t0
    if done.returncode != 0:
        return {"run": name, "error": done.stderr.strip().splitlines()[-2:]}
    ev = json.loads(
        cli(home, "model", "eval", "--model", name, "--app", "big", "--dataset", "test", "-q", "-o", "json").stdout
    )
    shown = cli(home, "model", "show", name, "--app", "big", "-o", "json").stdout
    train_s = json.loads(shown)["model_versions"][-1]["metrics"].get("seconds")
    return {
        "run": name,
        "settings": " ".join(extra[1::2]) or "template defaults",
        "train_s": train_s,
        "wall_s": round(seconds, 1),
        "mIoU": ev["mIoU"],
        **{f"iou_{c}": v["iou"] for c, v in ev["per_class"].items()},
    }


def cmd_train(args) -> None:
    home = prepare(args.dir)
    rows = []
    for name in args.runs.split(","):
        row = train_run(home, name, RUNS[name])
        rows.append(row)
        print(json.dumps(row), flush=True)
    print(f"\n{'run':<12} {'train s':>8} {'mIoU':>6} {'field':>6} {'defect':>7}  settings")
    for r in rows:
        if "error" in r:
            print(f"{r['run']:<12} failed: {r['error']}")
            continue
        print(
            f"{r['run']:<12} {r['train_s']:>8.0f} {r['mIoU']:>6.3f} {r['iou_field']:>6.3f} "
            f"{r['iou_defect']:>7.3f}  {r['settings']}"
        )


def tree_rss_mb(pid: int) -> float:
    """RSS of `pid` and all its descendants, from /proc (Linux)."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    parents[int(entry)] = int(f.read().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
    tree, grew = {pid}, True
    while grew:
        more = {p for p, pp in parents.items() if pp in tree} - tree
        grew, tree = bool(more), tree | more
    total = 0
    for p in tree:
        try:
            with open(f"/proc/{p}/status") as f:
                total += next((int(line.split()[1]) for line in f if line.startswith("VmRSS:")), 0)
        except OSError:
            continue
    return total / 1024


def measured(cmd: list[str], env: dict) -> tuple[float, float, int]:
    """(seconds, peak RSS MB of the process tree, exit code)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    peak = 0.0
    while proc.poll() is None:
        peak = max(peak, tree_rss_mb(proc.pid))
        time.sleep(0.02)
    return time.perf_counter() - t0, peak, proc.returncode


def photo(path: Path, side: int, seed: int) -> Path:
    """A side x side JPEG: a big-scene tile mirrored to size (generating 100 MP directly would
    need gigabytes of float scratch)."""
    from PIL import Image

    if path.exists():
        return path
    tile, _ = bigscene.scene(np.random.default_rng(seed), (2500, 2500))
    reps = -(-side // 2500)
    row = np.concatenate([tile if k % 2 == 0 else tile[:, ::-1] for k in range(reps)], axis=1)
    full = np.concatenate([row if k % 2 == 0 else row[::-1] for k in range(reps)], axis=0)[:side, :side]
    Image.fromarray(np.ascontiguousarray(full)).save(path, quality=90)
    return path


def cmd_memory(args) -> None:
    from segcli.datasets.synth import generate_shapes

    work = args.dir / "memory"
    home = work / "home"
    work.mkdir(parents=True, exist_ok=True)
    if not (home / "done").exists():
        data = work / "data"
        generate_shapes(data, n=8, size=64, seed=3, formats=("masks",))
        (data / "classes.txt").write_text("\n".join(["background"] + [f"class{k}" for k in range(1, 8)]) + "\n")
        cli(home, "app", "create", "mem", "--exist-ok")
        cli(home, "dataset", "create", "d", "--app", "mem", "--exist-ok")
        cli(
            home, "dataset", "upload", "d", "--app", "mem", "--images", data / "images", "--masks", data / "masks", "-q"
        )
        cli(home, "model", "create", "m8", "--app", "mem", "--exist-ok")
        for name, extra in (("native", ["--set", "resize_mode=native", "--set", "crop_size=512"]), ("default", [])):
            cli(home, "model", "create", name, "--app", "mem", "--exist-ok")
            cli(
                home,
                "train",
                "--model",
                name,
                "--app",
                "mem",
                "--dataset",
                "d",
                "--template",
                EFFNET,
                "--set",
                "num_epochs=1",
                "--set",
                "val_percent=0",
                *extra,
                "-q",
            )
        (home / "done").write_text("")
    env = {**os.environ, "SEGCLI_HOME": str(home)}
    for model in ("native", "default"):
        times = {}
        for side in (5000, 10000):
            src = photo(work / f"photo{side}.jpg", side, seed=5)
            cmd = [
                *SEGCLI,
                "predict",
                "--model",
                model,
                "--app",
                "mem",
                str(src),
                "--out",
                str(work / f"out-{model}"),
                "--max-megapixels",
                "120",
                "-q",
            ]
            subprocess.run(cmd, env=env, capture_output=True)  # first use builds the graphs
            seconds, peak, code = measured(cmd, env)
            times[side] = seconds
            print(f"{model:<8} {side * side / 1e6:>5.0f} MP  {seconds:6.1f} s  peak RSS {peak:6.0f} MB  exit {code}")
        print(f"{model:<8} 100 MP / 25 MP time: {times[10000] / times[5000]:.2f}x")


# Run segcli with every window weighted 1 (a plain average): the only difference from the ramp.
AVERAGE = (
    "import numpy as np, segcli.engine.tiling as t; "
    "t.blend_weights = lambda fh, fw, mh, mw: np.ones((fh, fw), np.float32); "
    "from segcli.cli.main import main; main()"
)


def border_band(h: int, w: int, plan_window: int, overlap: float, width: int = 8) -> np.ndarray:
    """Pixels within `width` of a window edge of the sliding windows over an h x w photo."""
    sys.path.insert(0, str(HERE.parent))
    from segcli.core.geometry import stride_of
    from segcli.engine.tiling import starts

    stride = stride_of(plan_window, overlap)
    band = np.zeros((h, w), bool)
    for y in starts(h, plan_window, stride):
        for edge in (y, y + plan_window):
            band[max(0, edge - width) : edge + width, :] = True
    for x in starts(w, plan_window, stride):
        for edge in (x, x + plan_window):
            band[:, max(0, edge - width) : edge + width] = True
    band[:width] = band[-width:] = False  # the photo's own edges are not window borders
    band[:, :width] = band[:, -width:] = False
    return band


def cmd_blend(args) -> None:
    from PIL import Image

    home, data = args.dir / "home", args.dir / "data" / "test"
    env = {**os.environ, "SEGCLI_HOME": str(home)}
    images = sorted((data / "images").iterdir())
    outs = {}
    for name, prefix, tile in (
        ("ramp", SEGCLI, "auto"),
        ("average", [sys.executable, "-c", AVERAGE], "auto"),
        ("whole", SEGCLI, "off"),
    ):
        out = args.dir / f"blend-{name}"
        done = subprocess.run(
            [
                *prefix,
                "predict",
                "--model",
                "native",
                "--app",
                "big",
                *map(str, images),
                "--out",
                str(out),
                "--tile",
                tile,
                "-q",
            ],
            env=env,
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            raise SystemExit(f"predict ({name}) failed: {done.stderr}")
        outs[name] = out
    classes = (data / "classes.txt").read_text().split()
    crop, overlap = 384, 0.25
    inter = {k: np.zeros(len(classes)) for k in outs}
    union = {k: np.zeros(len(classes)) for k in outs}
    differ = {k: [0, 0, 0, 0] for k in ("ramp", "average")}  # border differ, border px, rest differ, rest px
    for image in images:
        truth = np.asarray(Image.open(data / "masks" / f"{image.stem}.png"))
        pred = {k: np.asarray(Image.open(out / f"{image.stem}.mask.png")) for k, out in outs.items()}
        for k, p in pred.items():
            for c in range(len(classes)):
                inter[k][c] += np.sum((p == c) & (truth == c))
                union[k][c] += np.sum((p == c) | (truth == c))
        band = border_band(*truth.shape, crop, overlap)
        for k in differ:
            d = pred[k] != pred["whole"]
            differ[k][0] += int(d[band].sum())
            differ[k][1] += int(band.sum())
            differ[k][2] += int(d[~band].sum())
            differ[k][3] += int((~band).sum())
    print(f"{len(images)} held-out photos, windows {crop} px, overlap {overlap}")
    print(
        f"{'blend':<8} {'mIoU':>6} "
        + " ".join(f"{c:>10}" for c in classes)
        + "   differs from whole: border band / elsewhere"
    )
    for k in outs:
        iou = inter[k] / np.maximum(union[k], 1)
        tail = ""
        if k in differ:
            b, bn, r, rn = differ[k]
            tail = f"   {100 * b / bn:.3f}% / {100 * r / rn:.3f}%"
        print(f"{k:<8} {iou.mean():>6.3f} " + " ".join(f"{v:>10.3f}" for v in iou) + tail)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=["train", "memory", "blend"])
    ap.add_argument("--dir", type=Path, default=Path("/tmp/segcli-bench-big"))
    ap.add_argument("--runs", default="default,native,native_auto")
    args = ap.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    {"train": cmd_train, "memory": cmd_memory, "blend": cmd_blend}[args.what](args)


if __name__ == "__main__":
    main()
