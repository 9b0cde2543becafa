"""Lanes (engine/onnx_predict.LANES): batches run side by side on their own sessions answer what
one run at a time answers, whole images and sliding windows alike, through the real ONNX Runtime
engine of a tiny U-Net trained at native resolution; serve's batcher runs one runner a lane; one
batch, or one core, keeps one lane; whether lanes pay is measured once and recorded beside the
graph, and SEGCLI_LANES overrides it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import train_argv

pytest.importorskip("torch", reason="the local engine needs the [local] extra")
pytest.importorskip("onnxruntime")

from segcli.core.cpus import usable_cpus  # noqa: E402
from segcli.core.errors import InvalidInputError  # noqa: E402
from segcli.engine.onnx_predict import LANES, LANES_NODE_MS, LANES_SUFFIX, OnnxPredictor, lane_count  # noqa: E402
from segcli.services.batching import Batcher  # noqa: E402

# Native resolution with 32 px windows: the 64 px shapes photos fit one window, larger ones slide.
TRAIN = train_argv("--set", "num_epochs=1", "--set", "resize_mode=native", "--set", "crop_size=32")


def model_dir(home: Path) -> Path:
    [run] = (home / "data" / "runs").iterdir()
    return run / "model"


def predictor(home: Path, tile: str = "auto") -> OnnxPredictor:
    return OnnxPredictor.load(model_dir(home), "v", tile=tile)


LANES_HERE = LANES if usable_cpus() >= LANES else 1  # what lane_count allows on this machine


def photos(count: int, seed: int = 0) -> list[np.ndarray]:
    """Smooth random photos (regions, not noise), from smaller than a window to several windows."""
    rng = np.random.default_rng(seed)
    sizes = [(24, 30), (64, 64), (90, 71), (33, 120)]
    out = []
    for k in range(count):
        h, w = sizes[k % len(sizes)]
        small = rng.integers(0, 256, (max(2, h // 12), max(2, w // 12), 3), dtype=np.uint8)
        out.append(np.asarray(Image.fromarray(small).resize((w, h), Image.BICUBIC)))
    return out


def same_results(got, expected) -> None:
    assert len(got) == len(expected)
    for a, b in zip(got, expected):
        assert np.array_equal(a.labelmap, b.labelmap)
        np.testing.assert_allclose(a.class_scores, b.class_scores, rtol=0, atol=1e-5)


@pytest.mark.parametrize("tile", ["auto", "off"])  # sliding windows where they fit, whole photos
def test_lanes_answer_what_one_run_at_a_time_does(home, tile, monkeypatch):
    monkeypatch.setenv("SEGCLI_LANES", "2")  # whether or not they pay for this tiny model here
    engine = predictor(home, tile)
    images = photos(16)
    prepared = [engine.prepare(images[i : i + 3], 3) for i in range(0, len(images), 3)]
    one_at_a_time = [r for p in prepared for r in engine.run(p)]
    lanes = engine.open_lanes(len(prepared))
    assert lanes == LANES_HERE
    with ThreadPoolExecutor(lanes) as pool:
        side_by_side = [r for results in pool.map(lambda p: engine.run(p, lane=True), prepared) for r in results]
    same_results(side_by_side, one_at_a_time)


def test_one_batch_or_one_core_keeps_one_lane(home, monkeypatch):
    monkeypatch.setenv("SEGCLI_LANES", "2")
    assert predictor(home).open_lanes(1) == 1
    assert lane_count(LANES) == lane_count(None) == LANES_HERE
    # A process allowed one core (taskset, a cgroup cpuset) runs one batch at a time.
    probe = (
        "import os; os.sched_setaffinity(0, {min(os.sched_getaffinity(0))}); "
        "from segcli.engine.onnx_predict import lane_count; print(lane_count(100), lane_count(None))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=dict(os.environ))
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["1", "1"]


def test_the_batcher_runs_a_runner_a_lane_and_answers_each_image(home, monkeypatch):
    monkeypatch.setenv("SEGCLI_LANES", "2")
    engine = predictor(home)
    images = photos(24, seed=1)
    expected = [engine.predict([im])[0] for im in images]
    before = {t.name for t in threading.enumerate()}
    batcher = Batcher(engine, max_batch=4, max_wait_s=0.005)
    try:
        started = {t.name for t in threading.enumerate()} - before
        assert len([n for n in started if n.startswith("segcli-serve-model")]) == lane_count(None)
        with ThreadPoolExecutor(8) as pool:
            futures = list(pool.map(batcher.submit, images))
        got = [f.result(timeout=120) for f in futures]
    finally:
        batcher.close()
    same_results(got, expected)
    assert batcher.images == len(images) and batcher.batches < len(images)  # batched, every image once
    assert not {t.name for t in threading.enumerate()} - before  # close() stopped every runner


@pytest.mark.skipif(usable_cpus() < LANES, reason="one core: lanes are never considered")
def test_whether_lanes_pay_is_measured_once_and_recorded_beside_the_graph(home, monkeypatch):
    monkeypatch.delenv("SEGCLI_LANES", raising=False)
    record_file = model_dir(home) / ("model.onnx" + LANES_SUFFIX)
    assert not record_file.exists()
    lanes = predictor(home).open_lanes(10)
    record = json.loads(record_file.read_text())
    assert record["cpus"] == usable_cpus() and record["batch_s"] > 0 and record["nodes"] > 10
    assert record["node_ms"] == pytest.approx(record["batch_s"] * 1000 / record["nodes"])
    assert record["lanes"] == (record["node_ms"] < LANES_NODE_MS)
    assert lanes == (LANES if record["lanes"] else 1)
    # The next engine on this version follows the record without timing again: a record that
    # says the opposite is obeyed (and left as it is).
    record["lanes"] = not record["lanes"]
    record_file.write_text(json.dumps(record))
    assert predictor(home).open_lanes(10) == (LANES if record["lanes"] else 1)
    assert json.loads(record_file.read_text()) == record
    # A record made for another graph (or another core count) is measured again.
    record["key"] = "another graph/2"
    record_file.write_text(json.dumps(record))
    predictor(home).open_lanes(10)
    assert json.loads(record_file.read_text())["key"] != "another graph/2"


def test_segcli_lanes_overrides_the_measurement(home, monkeypatch):
    monkeypatch.setenv("SEGCLI_LANES", "1")
    assert predictor(home).open_lanes(10) == 1
    monkeypatch.setenv("SEGCLI_LANES", "2")
    assert predictor(home).open_lanes(10) == LANES_HERE
    assert not (model_dir(home) / ("model.onnx" + LANES_SUFFIX)).exists()  # nothing measured
    monkeypatch.setenv("SEGCLI_LANES", "3")
    with pytest.raises(InvalidInputError, match="SEGCLI_LANES must be auto, 1 or 2"):
        predictor(home).open_lanes(10)
