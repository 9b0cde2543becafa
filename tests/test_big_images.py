"""Photos larger than the model's window (issue 19), through the real CLI on a tiny U-Net trained
at native resolution: sliding windows vs the whole image, both engines, the geometry recorded
with the version and in the export, the reference ONNX client, eval's per-class precision,
recall and confusion matrix, and the size hints."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import REPO, SEGCLI, ok, segcli_subprocess_env

pytest.importorskip("torch", reason="the local engine needs the [local] extra")
pytest.importorskip("onnxruntime")

# 16 shapes photos of 120 x 160 (upload below), 48 px crops and windows.
TRAIN = [
    "train",
    "--template",
    "segcli_UNet",
    "--set",
    "model_size=tiny",
    "--set",
    "resize_mode=native",
    "--set",
    "crop_size=48",
    "--set",
    "num_epochs=2",
    "--set",
    "batch_size=8",
    "--model",
    "m",
    "--app",
    "a",
    "--dataset",
    "d",
    "-q",
]


@pytest.fixture(scope="module")
def trained_home(tmp_path_factory) -> Path:
    from segcli.datasets.synth import generate_shapes

    data = tmp_path_factory.mktemp("big-shapes")
    generate_shapes(data, n=16, size=(120, 160), seed=1, formats=("masks",))
    home = tmp_path_factory.mktemp("trained-home")
    env = segcli_subprocess_env(home)
    for argv in (
        ["app", "create", "a"],
        ["dataset", "create", "d", "--app", "a"],
        [
            "dataset",
            "upload",
            "d",
            "--app",
            "a",
            "--images",
            str(data / "images"),
            "--masks",
            str(data / "masks"),
            "-q",
        ],
        ["model", "create", "m", "--app", "a"],
        TRAIN,
        ["model", "create", "short", "--app", "a"],
        [
            *TRAIN[:5],
            "--set",
            "image_size=[40]",
            "--set",
            "num_epochs=2",
            "--model",
            "short",
            "--app",
            "a",
            "--dataset",
            "d",
            "-q",
        ],
    ):
        done = subprocess.run([*SEGCLI, *argv], env=env, capture_output=True, text=True)
        assert done.returncode == 0, (argv, done.stderr)
    return home


def photos(folder: Path, sizes: list[tuple[int, int]], seed: int = 0) -> Path:
    """Smooth random photos (regions, not noise) of the given (h, w) sizes."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for k, (h, w) in enumerate(sizes):
        small = rng.integers(0, 256, (max(2, h // 24), max(2, w // 24), 3), dtype=np.uint8)
        Image.fromarray(small).resize((w, h), Image.BICUBIC).save(folder / f"p{k}_{h}x{w}.png")
    return folder


def masks(out: Path) -> dict[str, np.ndarray]:
    doc = json.loads((out / "predictions.json").read_text())
    return {Path(i["input"]).name: np.asarray(Image.open(out / i["mask_path"])) for i in doc["items"]}


def predict(cli, src: Path, out: Path, *extra) -> dict[str, np.ndarray]:
    ok(cli("predict", "--model", "m", "--app", "a", src, "--out", out, "--threshold", "0", "-q", *extra))
    return masks(out)


def test_an_image_that_fits_one_window_is_the_whole_image_result(cli, home, tmp_path):
    src = photos(tmp_path / "small", [(48, 48), (30, 47), (48, 20)])
    tiled, whole = predict(cli, src, tmp_path / "t"), predict(cli, src, tmp_path / "w", "--tile", "off")
    assert tiled.keys() == whole.keys() and len(tiled) == 3
    for name in tiled:
        assert np.array_equal(tiled[name], whole[name]), name


def test_sliding_windows_agree_with_the_whole_image_across_borders(cli, home, tmp_path):
    src = photos(tmp_path / "big", [(300, 410), (97, 500), (481, 129)])
    tiled = predict(cli, src, tmp_path / "t")
    whole = predict(cli, src, tmp_path / "w", "--tile", "off")
    narrow = predict(cli, src, tmp_path / "n", "--overlap", "0.5")
    for name, mask in tiled.items():
        assert mask.shape == whole[name].shape
        # A model that never saw beyond 48 px answers the same inside a window as on the
        # whole photo, up to its receptive field at window edges; blending hides the rest.
        assert (mask == whole[name]).mean() > 0.97, name
        assert (narrow[name] == whole[name]).mean() > 0.97, name


def test_both_engines_slide_the_same_windows(cli, home, tmp_path):
    src = photos(tmp_path / "big", [(200, 300), (121, 97)], seed=4)
    onnx = predict(cli, src, tmp_path / "o", "--engine", "onnx")
    torch = predict(cli, src, tmp_path / "t", "--engine", "torch")
    for name in onnx:
        assert (onnx[name] == torch[name]).mean() > 0.999, name


def test_serve_slides_the_same_windows_as_predict(cli, home, tmp_path):
    pytest.importorskip("uvicorn", reason="segcli serve needs the [serve] extra")
    import base64
    import io

    from serving import serving

    src = photos(tmp_path / "big", [(300, 410), (48, 48), (97, 200)], seed=5)
    expected = predict(cli, src, tmp_path / "p")
    with serving(home, tmp_path, "--threshold", "0") as server:
        for path in sorted(src.iterdir()):
            status, item = server.predict(path.read_bytes(), "?mask=1")
            assert status == 200, item
            mask = np.asarray(Image.open(io.BytesIO(base64.b64decode(item["mask_png"]))))
            assert np.array_equal(mask, expected[path.name]), path.name


def test_int8_slides_float32_windows_and_says_so(cli, home, tmp_path):
    # Whole images run the int8 graph; windows run the float32 tile graph (blending needs the
    # logits): a photo larger than a window gets exactly fp32's mask, and the command says why.
    src = photos(tmp_path / "big", [(300, 410), (97, 200)], seed=6)
    fp32 = predict(cli, src, tmp_path / "f")
    done = ok(
        cli(
            "predict",
            "--model",
            "m",
            "--app",
            "a",
            src,
            "--out",
            tmp_path / "i",
            "--threshold",
            "0",
            "--precision",
            "int8",
        )
    )
    assert done.err.count("sliding windows in fp32") == 1
    int8 = masks(tmp_path / "i")
    for name in fp32:
        assert np.array_equal(int8[name], fp32[name]), name


def test_tile_options_are_checked(cli, home, tmp_path):
    src = photos(tmp_path / "one", [(64, 64)])
    for bad in (["--tile", "big"], ["--tile", "8"], ["--overlap", "1.5"], ["--overlap", "nan"]):
        result = cli("predict", "--model", "m", "--app", "a", src, "--out", tmp_path / "o", *bad)
        assert result.code == 2, (bad, result.err)
    # A fixed window on a version trained on resized images: at the model's resolution.
    forced = predict(cli, src, tmp_path / "f", "--tile", "32")
    assert forced["p0_64x64.png"].shape == (64, 64)


def test_geometry_is_recorded_with_the_version_and_in_the_export(cli, home, tmp_path):
    import onnx

    from segcli.core.geometry import Geometry

    doc = cli("model", "show", "m", "--app", "a", "-o", "json").json()
    version = doc["model_versions"][-1]
    [run] = [
        p
        for p in (home / "data" / "runs").iterdir()
        if (p / "model" / "config.json").exists()
        and json.loads((p / "model" / "config.json").read_text())["geometry"]["mode"] == "native"
    ]
    config = json.loads((run / "model" / "config.json").read_text())
    expected = Geometry.from_params(version["params"]["train_params"])
    assert Geometry.from_config(config) == expected == Geometry("native", (), 1.0, (48, 48), 0.25)
    target = tmp_path / "m.onnx"
    ok(cli("model", "export", "--model", "m", "--app", "a", "--version", version["id"], "-f", target, "-q"))
    meta = {p.key: p.value for p in onnx.load(str(target)).metadata_props}
    assert json.loads(meta["segcli.geometry"]) == expected.to_dict()
    assert meta["segcli.resize"] == "native" and json.loads(meta["segcli.image_size"]) == [48, 48]


@pytest.mark.parametrize(
    "model,tile,sizes",
    [
        ("m", "auto", [(300, 410), (97, 500), (40, 40)]),  # native: windows, and one that fits
        ("m", "off", [(130, 170)]),  # native, whole photo
        ("short", "auto", [(300, 410), (61, 333)]),  # resized (short side 40) and back
        ("short", "32", [(200, 250)]),  # windows at the model's resolution
    ],
)
def test_the_reference_onnx_client_reproduces_segclis_masks(cli, home, tmp_path, model, tile, sizes):
    sys.path.insert(0, str(REPO / "docs"))
    try:
        from onnx_client import Client, read_rgb
    finally:
        sys.path.remove(str(REPO / "docs"))
    target = tmp_path / f"{model}.onnx"
    ok(cli("model", "export", "--model", model, "--app", "a", "-f", target, "-q"))
    src = photos(tmp_path / "in", sizes, seed=7)
    out = tmp_path / "out"
    ok(cli("predict", "--model", model, "--app", "a", src, "--out", out, "--tile", tile, "-q"))
    client = Client(str(target))
    for name, mask in masks(out).items():
        mine = client.predict(read_rgb(str(src / name)), tile if tile in ("auto", "off") else int(tile))
        assert np.array_equal(mine, mask), (name, float((mine == mask).mean()))


@pytest.mark.slow
def test_the_reference_client_follows_the_banded_upsampling_of_huge_outputs(cli, home, tmp_path):
    """4 classes x 4200 x 4100 logits exceed WHOLE_MAX_VALUES: segcli upsamples in bands."""
    sys.path.insert(0, str(REPO / "docs"))
    try:
        from onnx_client import Client, read_rgb
    finally:
        sys.path.remove(str(REPO / "docs"))
    target = tmp_path / "short.onnx"
    ok(cli("model", "export", "--model", "short", "--app", "a", "-f", target, "-q"))
    src = photos(tmp_path / "in", [(4200, 4100)], seed=9)
    out = tmp_path / "out"
    ok(cli("predict", "--model", "short", "--app", "a", src, "--out", out, "-q"))
    [(name, mask)] = masks(out).items()
    assert np.array_equal(Client(str(target)).predict(read_rgb(str(src / name))), mask)


def test_eval_reports_precision_recall_and_the_confusion_matrix(cli, home, tmp_path):
    heatmap = tmp_path / "confusion.png"
    result = ok(
        cli("model", "eval", "--model", "m", "--app", "a", "--dataset", "d", "--confusion", heatmap, "-o", "json", "-q")
    )
    doc = result.json()
    classes = doc["confusion"]["classes"]
    matrix = np.asarray(doc["confusion"]["matrix"])
    assert classes[0] == "background" and matrix.shape == (len(classes), len(classes))
    assert set(doc["per_class"]) == set(classes)
    for k, name in enumerate(classes):
        entry = doc["per_class"][name]
        assert set(entry) == {"iou", "acc", "precision", "recall"}
        if matrix[k].sum():
            assert entry["recall"] == pytest.approx(matrix[k, k] / matrix[k].sum())
        if matrix[:, k].sum():
            assert entry["precision"] == pytest.approx(matrix[k, k] / matrix[:, k].sum())
    assert doc["aAcc"] == pytest.approx(np.trace(matrix) / matrix.sum())
    with Image.open(heatmap) as im:
        assert im.format == "PNG" and im.width > 200 and im.height > 200
    missing = cli(
        "model",
        "eval",
        "--model",
        "m",
        "--app",
        "a",
        "--dataset",
        "d",
        "--confusion",
        tmp_path / "no" / "such" / "c.png",
    )
    assert missing.code == 5 and "does not exist" in missing.err


def test_dataset_show_and_train_name_the_setting_for_big_photos(cli, tmp_path):
    from segcli.datasets.synth import generate_shapes

    generate_shapes(tmp_path / "big", n=3, size=(900, 1200), seed=2, formats=("masks",))
    generate_shapes(tmp_path / "small", n=3, size=(120, 160), seed=2, formats=("masks",))
    ok(cli("app", "create", "a"))
    for name in ("big", "small"):
        ok(cli("dataset", "create", name, "--app", "a"))
        ok(
            cli(
                "dataset",
                "upload",
                name,
                "--app",
                "a",
                "--images",
                tmp_path / name / "images",
                "--masks",
                tmp_path / name / "masks",
                "-q",
            )
        )
    shown = ok(cli("dataset", "show", "big", "--app", "a"))
    assert "note: images are about 1200x900, resized 4x smaller" in shown.err
    assert "--set resize_mode=native" in shown.err
    assert "resize_mode" not in ok(cli("dataset", "show", "small", "--app", "a")).err
    ok(cli("model", "create", "m", "--app", "a"))
    started = ok(cli("train", "--model", "m", "--app", "a", "--dataset", "big", "--no-wait", "-o", "json"))
    assert "note: images are about 1200x900" in started.err
    ok(cli("train", "cancel", started.json()["id"], "--model", "m", "--app", "a"))


def test_template_show_documents_the_new_keys(cli):
    doc = ok(cli("template", "show", "segcli_EfficientNetLite0", "-o", "json")).json()
    params = {p["name"]: p for p in doc["params"]}
    for key in ("resize_mode", "crop_size", "native_scale", "scale_jitter", "tile_overlap", "class_weights"):
        assert params[key]["help"] and params[key]["local_only"], key
    assert params["class_weights"]["range"].startswith("none | auto")
    assert params["resize_mode"]["default"] == "image_size"


@pytest.mark.slow
def test_a_24_megapixel_photo_is_predicted_in_bounded_memory(home, tmp_path):
    """4 classes x 6000 x 4000 logits are 384 MB per float copy; the one-piece resize held
    several (1.7 GB peak before bands). A fresh parent measures predict's own peak RSS."""
    src = tmp_path / "p24.jpg"
    small = np.random.default_rng(0).integers(0, 256, (170, 250, 3), dtype=np.uint8)
    Image.fromarray(small).resize((6000, 4000), Image.BICUBIC).save(src, quality=90)
    cmd = [*SEGCLI, "predict", "--model", "short", "--app", "a", str(src), "--out", str(tmp_path / "out"), "-q"]
    probe = (
        "import resource, subprocess, sys; done = subprocess.run(sys.argv[1:]); "
        "print(done.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    )
    measured = subprocess.run(
        [sys.executable, "-c", probe, *cmd], env=segcli_subprocess_env(home), capture_output=True, text=True
    )
    code, peak_kb = map(int, measured.stdout.split()[-2:])
    assert code == 0, measured.stderr
    assert peak_kb < 1000 * 1024, f"peak RSS {peak_kb // 1024} MB"
    assert masks(tmp_path / "out")["p24.jpg"].shape == (4000, 6000)
