"""predict's pipeline (services/predict._run) with stand-in engines that implement the Segmenter
protocols: where each stage runs, that order and every input survive, and that one unreadable
file is skipped. The real engines are covered in test_export_onnx and test_cli_train_predict."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest
from PIL import Image

from segcli.core.segmentation import LanedSegmenter, SegResult, StagedSegmenter
from segcli.services.predict import _run

CLASSES = ["background", "bright"]


def _label(image: np.ndarray) -> np.ndarray:
    return (image[:, :, 0] > 127).astype(np.uint8)


class _Plain:
    """A Segmenter with predict only (as the torch and Clarifai engines)."""

    classes, version_id = CLASSES, "v"

    def __init__(self) -> None:
        self.threads: set[str] = set()

    def predict(self, images, batch_size=8):
        self.threads.add(threading.current_thread().name)
        return [SegResult(_label(im), np.asarray([1.0, 0.9], np.float32)) for im in images]


class _Staged(_Plain):
    """A StagedSegmenter whose scores are computed lazily (as the ONNX Runtime engine)."""

    def __init__(self) -> None:
        super().__init__()
        self.prepare_threads: set[str] = set()
        self.score_threads: set[str] = set()
        self.lock = threading.Lock()

    def prepare(self, images, batch_size=8):
        self.prepare_threads.add(threading.current_thread().name)
        return [np.array(im) for im in images]

    def run(self, prepared):
        self.threads.add(threading.current_thread().name)
        return [SegResult(_label(im), compute_scores=self._scores) for im in prepared]

    def _scores(self):
        with self.lock:
            self.score_threads.add(threading.current_thread().name)
        return np.asarray([1.0, 0.9], np.float32)


class _Laned(_Staged):
    """A LanedSegmenter (as the ONNX Runtime engine): two lanes for a job of two batches or more."""

    def __init__(self) -> None:
        super().__init__()
        self.asked: list = []  # open_lanes' arguments
        self.lane_flags: set[bool] = set()

    def open_lanes(self, runs=None):
        self.asked.append(runs)
        return 2 if runs is None or runs >= 2 else 1

    def run(self, prepared, lane=False):
        with self.lock:
            self.lane_flags.add(lane)
        return super().run(prepared)


@pytest.fixture
def folder(tmp_path):
    rng = np.random.default_rng(3)
    paths = []
    for i in range(21):  # not a multiple of the batch size
        image = rng.integers(0, 256, (20 + i, 30, 3), np.uint8)
        path = tmp_path / "in" / f"{i:02d}.png"
        path.parent.mkdir(exist_ok=True)
        Image.fromarray(image).save(path)
        paths.append(path)
    (tmp_path / "in" / "10.png").write_bytes(b"not a png")  # one unreadable file in the middle
    return paths


def _check_output(out_dir, paths, warnings):
    doc = json.loads((out_dir / "predictions.json").read_text())
    assert [item["input"] for item in doc["items"]] == [str(p) for p in paths if p.name != "10.png"]
    assert [s["input"] for s in doc["skipped"]] == [str(paths[10])]
    assert len(warnings) == 1 and "10.png" in warnings[0]
    for item, path in zip(doc["items"], [p for p in paths if p.name != "10.png"]):
        mask = np.asarray(Image.open(out_dir / item["mask_path"]))
        assert np.array_equal(mask, _label(np.asarray(Image.open(path).convert("RGB"))))


def test_staged_engine_prepares_in_decode_threads_and_scores_in_writers(folder, tmp_path):
    engine, warnings = _Staged(), []
    assert isinstance(engine, StagedSegmenter)
    _run(engine, folder, [], tmp_path / "out", 0.05, 4, "off", warnings.append)
    main = threading.current_thread().name
    assert engine.threads == {main}  # the model: one thread, the caller's
    assert engine.prepare_threads and main not in engine.prepare_threads
    assert engine.score_threads and all(t.startswith("segcli-write") for t in engine.score_threads)
    _check_output(tmp_path / "out", folder, warnings)


def test_laned_engine_runs_each_batch_in_the_thread_that_decoded_it(folder, tmp_path):
    engine, warnings = _Laned(), []
    assert isinstance(engine, LanedSegmenter)
    _run(engine, folder, [], tmp_path / "out", 0.05, 4, "off", warnings.append)
    assert engine.asked == [6]  # 21 images in batches of 4
    assert engine.lane_flags == {True}
    assert engine.threads == engine.prepare_threads and threading.current_thread().name not in engine.threads
    _check_output(tmp_path / "out", folder, warnings)


def test_laned_engine_with_one_batch_runs_it_in_the_callers_thread(folder, tmp_path):
    engine, warnings = _Laned(), []
    _run(engine, folder, [], tmp_path / "out", 0.05, 32, "off", warnings.append)
    assert engine.asked == [1] and engine.lane_flags == {False}
    assert engine.threads == {threading.current_thread().name}
    _check_output(tmp_path / "out", folder, warnings)


def test_plain_engine_predicts_in_the_callers_thread(folder, tmp_path):
    engine, warnings = _Plain(), []
    assert not isinstance(engine, StagedSegmenter)
    _run(engine, folder, [], tmp_path / "out", 0.05, 4, "off", warnings.append)
    assert engine.threads == {threading.current_thread().name}
    _check_output(tmp_path / "out", folder, warnings)


def test_segresult_scores_given_or_computed_once():
    calls = []

    def compute():
        calls.append(1)
        return np.asarray([0.5, 0.25], np.float32)

    lazy = SegResult(np.zeros((2, 2), np.uint8), compute_scores=compute)
    assert calls == []  # nothing until asked
    assert lazy.class_scores.tolist() == [0.5, 0.25] and lazy.class_scores.tolist() == [0.5, 0.25]
    assert calls == [1]
    given = SegResult(np.zeros((2, 2), np.uint8), np.ones(2, np.float32))
    assert given.class_scores.tolist() == [1.0, 1.0]
    with pytest.raises(TypeError):
        SegResult(np.zeros((2, 2), np.uint8))
    with pytest.raises(TypeError):
        SegResult(np.zeros((2, 2), np.uint8), np.ones(2), compute_scores=compute)
