"""The ONNX Runtime predict engine: the same predictions as the torch Predictor, without torch.

It runs the version's cached predict graph, runs/<version>/model/model.onnx (see
onnx_graph.predict_graph: normalisation, the model, the resize to each image's original size,
softmax and argmax all inside ONNX Runtime). The graph is built from the weights once, on the
first predict (that needs torch, once), written atomically, and carries the sha256 of the
weights and config it came from: a file that does not match them is rebuilt, never used.

This module must not import torch (a test checks): a predict with a cached graph pays for
onnxruntime (~0.2 s) instead of torch (~1.2 s, and ~4 s with transformers).
"""
from __future__ import annotations

import hashlib
import json
from functools import partial
from pathlib import Path
from typing import Callable, NamedTuple, Optional

import numpy as np

from segcli.core import leftovers
from segcli.core.cpus import usable_cpus
from segcli.core.segmentation import SegResult
from segcli.engine import artifacts, onnx_graph, prepare

CACHE_NAME = "model.onnx"
# The graph upsamples a whole run's logits to the original size, and ONNX Runtime holds several
# float tensors of [N, C, H, W] at once for the resize and the softmax: 8 phone photos of 12 MP
# in one run took 9 GB. Runs are capped at this many values per tensor instead (256 MB), so big
# photos go one at a time; that work is per pixel, so no speed is lost. 256 px images still
# batch by 8 up to 128 classes.
RUN_VALUES = 64 * 2**20
Notify = Callable[[str], None]


def cache_key(model_dir: Path) -> str:
    """What the cached graph must have been built from: these weights, this config, this
    graph layout."""
    return hashlib.sha256(f"{onnx_graph.PREDICT_FORMAT}:{artifacts.weights_key(model_dir)}".encode()).hexdigest()


def session_options():
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = usable_cpus()
    # Intra-op threads spin (wait for the next operator's work without sleeping): six
    # alternated runs of predict on 400 images at 256 px (2 cores) took 23.6-24.8 s against
    # 24.4-26.6 s with sleeping threads, whose wake-up between the graph's many small
    # operators costs more than the cycles the decode and writer threads lose to the spinning.
    opts.add_session_config_entry("session.intra_op.allow_spinning", "1")
    opts.log_severity_level = 3          # errors only: no graph-optimizer chatter on stderr
    return opts


def _open(source):
    import onnxruntime as ort

    return ort.InferenceSession(source, sess_options=session_options(), providers=["CPUExecutionProvider"])


def load_session(model_dir: Path, notify: Optional[Notify] = None):
    """A session on the cached graph, building (and caching) it when missing or stale."""
    model_dir = Path(model_dir)
    key = cache_key(model_dir)
    return _cached_session(model_dir, key) or _open(_build(model_dir, key, notify))


def ensure_graph(model_dir: Path, notify: Optional[Notify] = None) -> None:
    """Build and cache the version's predict graph now if it is missing or stale (e.g. at the
    end of training, so that no predict pays for the export). No session is kept."""
    model_dir = Path(model_dir)
    key = cache_key(model_dir)
    if _cached_session(model_dir, key) is None:
        _build(model_dir, key, notify)


RECORD_NAME = "model.onnx.json"   # {"key", "sha256"} of the cached graph, written after it


def _cached_session(model_dir: Path, key: str):
    """A session on the cached graph when it was built for `key` and its bytes are the ones
    recorded when it was written, else None (rebuilt by the caller). The graph's own hash is
    checked, not only the key in its metadata: a graph edited or damaged after it was cached
    (metadata intact) is never run."""
    path, record = model_dir / CACHE_NAME, model_dir / RECORD_NAME
    try:
        expected = json.loads(record.read_text(encoding="utf-8"))
        if expected.get("key") != key:
            return None
        data = path.read_bytes()
        if hashlib.sha256(data).hexdigest() != expected.get("sha256"):
            return None
        session = _open(data)
        built_for = session.get_modelmeta().custom_metadata_map.get("segcli.key")
    except Exception:  # noqa: BLE001 - missing, truncated, foreign or damaged: rebuilt by the caller
        return None
    return session if built_for == key else None


def _build(model_dir: Path, key: str, notify: Optional[Notify]) -> bytes:
    """The predict graph's bytes for `key`, exported (torch) and cached beside the weights,
    with the record of its hash written last."""
    path = model_dir / CACHE_NAME
    if notify:
        notify("preparing the ONNX Runtime engine for this model version (once; exporting needs torch, a few seconds)")
    from segcli.engine.export import predict_onnx  # torch: only on this first use

    data = predict_onnx(model_dir, key)
    leftovers.sweep(model_dir)   # a graph or record a killed predict was writing
    try:
        sha = artifacts.write_atomic(path, [data])
        artifacts.write_atomic(model_dir / RECORD_NAME, [json.dumps({"key": key, "sha256": sha}).encode()])
    except OSError as exc:   # a read-only store still predicts, from memory
        if notify:
            notify(f"could not cache {path} ({exc.strerror}); using the graph from memory")
    return data


class OnnxPredictor:
    engine = "onnx"

    def __init__(self, session, config: dict, version_id: str = ""):
        self.session, self.config, self.version_id = session, config, version_id
        self.classes: list[str] = list(config["classes"])
        self.image_size = tuple(config["image_size"])

    @classmethod
    def load(cls, model_dir: Path, version_id: str = "", notify: Optional[Notify] = None) -> "OnnxPredictor":
        config = artifacts.config_of(model_dir)
        return cls(load_session(model_dir, notify), config, version_id)

    def predict(self, images: list[np.ndarray], batch_size: int = 8) -> list[SegResult]:
        """HxWx3 uint8 RGB images of any sizes, in order. Images with the same original and
        resized shapes share a run (the graph resizes a whole batch to one output size), up to
        RUN_VALUES values per output tensor."""
        return self.run(self.prepare(images, batch_size))

    def prepare(self, images: list[np.ndarray], batch_size: int = 8) -> "_Prepared":
        """Checked, resized and stacked batches (no session: any thread, ahead of `run`)."""
        images = [prepare.check_image(im) for im in images]
        resized = [prepare.to_model_size(im, self.image_size) for im in images]
        keys = [(r.shape, im.shape) for r, im in zip(resized, images)]
        runs = []
        for group in prepare.groups(keys, batch_size):
            h, w = images[group[0]].shape[:2]
            step = max(1, min(len(group), RUN_VALUES // (len(self.classes) * h * w)))
            for start in range(0, len(group), step):
                idx = group[start:start + step]
                batch = resized[idx[0]][None] if len(idx) == 1 else np.stack([resized[i] for i in idx])
                runs.append((idx, batch, np.asarray((h, w), np.int64)))
        return _Prepared(len(images), runs)

    def run(self, prepared: "_Prepared") -> list[SegResult]:
        out: list = [None] * prepared.count
        for idx, batch, size in prepared.runs:
            label, prob = self.session.run([onnx_graph.PRED_LABEL, onnx_graph.PRED_PROB],
                                           {onnx_graph.PRED_IMAGE: batch, onnx_graph.PRED_SIZE: size})
            for j, i in enumerate(idx):
                # The scores (two bincounts, ~0.5 ms an image) are computed by whoever reads
                # them first: predict's writer threads, while the session runs the next batch.
                out[i] = SegResult(label[j], compute_scores=partial(prepare.class_scores, label[j], prob[j],
                                                                    len(self.classes)))
        return out


class _Prepared(NamedTuple):
    count: int                                               # images, in input order
    runs: list[tuple[list[int], np.ndarray, np.ndarray]]     # (indices, uint8 NHWC batch, original size)


def available() -> bool:
    """onnxruntime importable (without importing it)."""
    import importlib.util

    return importlib.util.find_spec("onnxruntime") is not None
