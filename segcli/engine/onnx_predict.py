"""The ONNX Runtime predict engine: the same predictions as the torch Predictor, without torch.

It runs the version's cached predict graph, runs/<version>/model/model.onnx (see
onnx_graph.predict_graph: normalisation, the model, the resize to each image's original size,
softmax and argmax all inside ONNX Runtime). The graph is built from the weights once, on the
first predict (that needs torch, once), written atomically, and carries the sha256 of the
weights and config it came from: a file that does not match them is rebuilt, never used.
Images the version's geometry slides windows over, or whose output is too big to upsample in
one piece, run the tile graph (model.tiles.onnx, cached the same way) through engine/tiling.

This module must not import torch (a test checks): a predict with a cached graph pays for
onnxruntime (~0.2 s) instead of torch (~1.2 s, and ~4 s with transformers).
"""

from __future__ import annotations

import hashlib
import json
import queue
import threading
from contextlib import contextmanager, nullcontext
from functools import partial
from pathlib import Path
from typing import Callable, Iterator, NamedTuple, Optional

import numpy as np

from segcli.core import leftovers
from segcli.core.cpus import usable_cpus
from segcli.core.errors import InvalidInputError
from segcli.core.geometry import WHOLE_MAX_VALUES, Geometry
from segcli.core.segmentation import SegResult
from segcli.engine import artifacts, onnx_graph, precision, prepare

CACHE_NAME = "model.onnx"
TILE_CACHE_NAME = "model.tiles.onnx"
# The graph upsamples a whole run's logits to the original size, and ONNX Runtime holds several
# float tensors of [N, C, H, W] at once for the resize and the softmax: 8 phone photos of 12 MP
# in one run took 9 GB. Runs are capped at this many values per tensor instead (256 MB), so big
# photos go one at a time; that work is per pixel, so no speed is lost. 256 px images still
# batch by 8 up to 128 classes.
RUN_VALUES = WHOLE_MAX_VALUES
Notify = Callable[[str], None]


def cache_key(model_dir: Path, graph_format: str = onnx_graph.PREDICT_FORMAT) -> str:
    """What a cached graph must have been built from: these weights, this config, this
    graph layout."""
    return hashlib.sha256(f"{graph_format}:{artifacts.weights_key(model_dir)}".encode()).hexdigest()


def session_options(threads: Optional[int] = None):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads or usable_cpus()
    # Intra-op threads spin (wait for the next operator's work without sleeping): six
    # alternated runs of predict on 400 images at 256 px (2 cores) took 23.6-24.8 s against
    # 24.4-26.6 s with sleeping threads, whose wake-up between the graph's many small
    # operators costs more than the cycles the decode and writer threads lose to the spinning.
    opts.add_session_config_entry("session.intra_op.allow_spinning", "1")
    opts.log_severity_level = 3  # errors only: no graph-optimizer chatter on stderr
    return opts


def _open(source, threads: Optional[int] = None):
    import onnxruntime as ort

    return ort.InferenceSession(source, sess_options=session_options(threads), providers=["CPUExecutionProvider"])


# Lanes: a job of several batches can run two of them side by side, each on half the cores,
# rather than one at a time on all of them. It pays where the graph's operators are too short to
# split well across threads (each split pays a hand-over, and the operators that do not split
# leave a core waiting) and not where they are long (big convolutions split well, and two
# batches in flight double the activations in memory). Measured (bench/RESULTS.md, Lanes):
# - the demo's EfficientNet-Lite0 at 192 px, a batch of 8 on both cores: int8 512 nodes in
#   ~21 ms (0.04 ms a node), fp32 246 in ~35 ms (0.14), fp16 262 in 45-74 ms (0.17-0.28): the whole
#   predict int8 1.18x faster with lanes, fp32 1.10x; the engine's runs 1.06x / 1.44x / 1.63x;
# - a U-Net small at 256 px: 106 nodes in ~243 ms (2.3 ms a node): the whole predict 16.1-16.6
#   s with lanes against 15.1 s, and 1.35 GB of memory against 0.81 GB.
# So the mean time of a node on one batch decides (measured once per graph and core count,
# recorded beside the graph): lanes below LANES_NODE_MS. A direct race of the two layouts was
# tried and rejected: a few batches of the model alone miss what decides the whole command
# (the spinning threads of the all-cores session take cycles from the writers) and it chose
# one at a time for int8, which the whole command runs 1.18x faster in lanes.
# Two, not one per core: each lane holds a batch in flight. SEGCLI_LANES=1 (or 2) overrides.
LANES = 2
LANES_ENV = "SEGCLI_LANES"
LANES_NODE_MS = 1.0  # lanes when a node takes less than this on average (a batch of 8, all cores)
LANES_SUFFIX = ".lanes.json"  # beside the graph: {"key", "cpus", "lanes", "batch_s", "nodes", "node_ms"}
WHOLE, TILED = "whole", "tiles"  # which graph's lane sessions: whole images, sliding windows


def lane_count(runs: Optional[int]) -> int:
    """How many threads may call `run(prepared, lane=True)` at once for a job of `runs` batches
    (None: a stream of unknown length, as a server's), if lanes pay for the graph: LANES when
    there is more than one batch and a core for each lane, else 1."""
    return LANES if (runs is None or runs >= LANES) and usable_cpus() >= LANES else 1


def _lanes_override() -> Optional[bool]:
    """SEGCLI_LANES: 1 = never, 2 = always (where lane_count allows), unset/auto = measured."""
    import os

    value = os.environ.get(LANES_ENV, "auto").strip().lower()
    if value in ("", "auto"):
        return None
    if value in ("1", "2"):
        return value == "2"
    raise InvalidInputError(f"{LANES_ENV} must be auto, 1 or 2, got {value!r}", hint=f"unset {LANES_ENV}")


class _LaneSessions:
    """Sessions on one graph for runs made side by side: each lane takes one for a run and gives
    it back. With one thread a lane, one session serves all of them (ONNX Runtime's Run may be
    called from several threads at once, and a single-threaded session computes in its caller's
    thread); with more, each lane has its own session and thread pool."""

    def __init__(self, data: bytes, lanes: int) -> None:
        threads = max(1, usable_cpus() // lanes)
        shared = _open(data, 1) if threads == 1 else None
        self._free: queue.SimpleQueue = queue.SimpleQueue()
        for _ in range(lanes):
            self._free.put(shared or _open(data, threads))

    @contextmanager
    def session(self) -> Iterator:
        session = self._free.get()
        try:
            yield session
        finally:
            self._free.put(session)


class _Graph(NamedTuple):
    """One of the version's cached graphs: its file, format tag and builder."""

    name: str
    format: str
    builder: str  # engine.export function (torch): (model_dir, key) -> bytes


PREDICT = _Graph(CACHE_NAME, onnx_graph.PREDICT_FORMAT, "predict_onnx")
TILES = _Graph(TILE_CACHE_NAME, onnx_graph.TILE_FORMAT, "tile_onnx")
# The predict graph in reduced precision (engine/precision.py): made from PREDICT's bytes, no
# torch; cached beside it under the same rules. The builder names a precision, not an export.
FP16 = _Graph("model.fp16.onnx", precision.graph_format("fp16", onnx_graph.PREDICT_FORMAT), "fp16")
INT8 = _Graph("model.int8.onnx", precision.graph_format("int8", onnx_graph.PREDICT_FORMAT), "int8")
BY_PRECISION = {"fp32": PREDICT, "fp16": FP16, "int8": INT8}
# () -> uint8 images at the model's input size: the version's training images, for int8's
# calibration (asked only when the int8 graph is built).
Calibration = Callable[[], list]


def load_session(
    model_dir: Path, notify: Optional[Notify] = None, graph: _Graph = PREDICT, calibration: Optional[Calibration] = None
) -> tuple:
    """(session, graph bytes) on a cached graph, building (and caching) it when missing or stale.
    The bytes open more sessions (lanes) without reading or checking the file again."""
    model_dir = Path(model_dir)
    key = cache_key(model_dir, graph.format)
    cached = _cached_session(model_dir, key, graph.name)
    if cached is not None:
        return cached
    data = _build(model_dir, key, notify, graph, calibration)
    return _open(data), data


def graph_bytes(
    model_dir: Path,
    precision_name: str = "fp32",
    notify: Optional[Notify] = None,
    calibration: Optional[Calibration] = None,
) -> bytes:
    """The bytes of the version's predict graph in a precision: the cached file when it passes
    the cache's checks, else built (and cached) now. For `model export --precision`."""
    model_dir, graph = Path(model_dir), BY_PRECISION[precision_name]
    key = cache_key(model_dir, graph.format)
    return _cached_bytes(model_dir, key, graph.name) or _build(model_dir, key, notify, graph, calibration)


def ensure_graph(model_dir: Path, notify: Optional[Notify] = None) -> None:
    """Build and cache the version's predict graph now if it is missing or stale (e.g. at the
    end of training, so that no predict pays for the export), and its tile graph when its
    geometry slides windows. No session is kept."""
    model_dir = Path(model_dir)
    graphs = [PREDICT]
    if Geometry.from_config(artifacts.config_of(model_dir)).mode == "native":
        graphs.append(TILES)
    for graph in graphs:
        key = cache_key(model_dir, graph.format)
        if _cached_session(model_dir, key, graph.name) is None:
            _build(model_dir, key, notify, graph)


RECORD_SUFFIX = ".json"  # model.onnx.json: {"key", "sha256"} of the cached graph, written after it
RECORD_NAME = CACHE_NAME + RECORD_SUFFIX


def _cached_session(model_dir: Path, key: str, name: str = CACHE_NAME) -> Optional[tuple]:
    """(session, bytes) of a cached graph when it was built for `key` and its bytes are the ones
    recorded when it was written, else None (rebuilt by the caller). The graph's own hash is
    checked, not only the key in its metadata: a graph edited or damaged after it was cached
    (metadata intact) is never run."""
    data = _cached_bytes(model_dir, key, name)
    if data is None:
        return None
    try:
        session = _open(data)
        built_for = session.get_modelmeta().custom_metadata_map.get("segcli.key")
    except Exception:  # noqa: BLE001 - missing, truncated, foreign or damaged: rebuilt by the caller
        return None
    return (session, data) if built_for == key else None


def _cached_bytes(model_dir: Path, key: str, name: str) -> Optional[bytes]:
    """A cached graph's bytes when its record names `key` and their sha256, else None."""
    path, record = model_dir / name, model_dir / (name + RECORD_SUFFIX)
    try:
        expected = json.loads(record.read_text(encoding="utf-8"))
        if expected.get("key") != key:
            return None
        data = path.read_bytes()
    except Exception:  # noqa: BLE001 - missing, unreadable or damaged: rebuilt by the caller
        return None
    return data if hashlib.sha256(data).hexdigest() == expected.get("sha256") else None


def _build(
    model_dir: Path,
    key: str,
    notify: Optional[Notify],
    graph: _Graph = PREDICT,
    calibration: Optional[Calibration] = None,
) -> bytes:
    """A graph's bytes for `key`, exported (torch) or converted from the float32 predict graph
    (fp16, int8), and cached beside the weights, with the record of its hash written last."""
    path = model_dir / graph.name
    if graph.builder in precision.PRECISIONS:
        fp32 = graph_bytes(model_dir, "fp32", notify)
        if notify:
            notify(
                f"preparing the {graph.builder} ONNX Runtime engine for this model version (once"
                + ("; calibrating on its training images)" if graph.builder == "int8" else ")")
            )
        if graph.builder == "fp16":
            data = precision.fp16_graph(fp32, key)
        else:
            if calibration is None:
                raise ValueError("the int8 graph needs calibration images")
            images = precision.calibration_images(calibration(), artifacts.config_of(model_dir))
            data = precision.int8_graph(fp32, key, precision.predict_feeds(images))
        return _store(model_dir, path, graph, key, data, notify)
    if notify:
        what = "engine" if graph is PREDICT else "sliding-window engine"
        notify(f"preparing the ONNX Runtime {what} for this model version (once; exporting needs torch, a few seconds)")
    from segcli.engine import export  # torch: only on this first use

    return _store(model_dir, path, graph, key, getattr(export, graph.builder)(model_dir, key), notify)


def _store(model_dir: Path, path: Path, graph: _Graph, key: str, data: bytes, notify: Optional[Notify]) -> bytes:
    leftovers.sweep(model_dir)  # a graph or record a killed predict was writing
    try:
        sha = artifacts.write_atomic(path, [data])
        artifacts.write_atomic(
            model_dir / (graph.name + RECORD_SUFFIX), [json.dumps({"key": key, "sha256": sha}).encode()]
        )
    except OSError as exc:  # a read-only store still predicts, from memory
        if notify:
            notify(f"could not cache {path} ({exc.strerror}); using the graph from memory")
    return data


# (model dir, precision) whose windows were said to run in fp32 (OnnxPredictor._tile_session)
_WINDOWS_NOTED: set[tuple[str, str]] = set()


class OnnxPredictor:
    engine = "onnx"

    def __init__(
        self,
        session,
        config: dict,
        version_id: str = "",
        model_dir: Optional[Path] = None,
        notify: Optional[Notify] = None,
        tile="auto",
        overlap: Optional[float] = None,
        precision_name: str = "fp32",
        graph: Optional[bytes] = None,
    ):
        self.session, self.config, self.version_id = session, config, version_id
        self._graph = graph  # the predict graph's bytes: lanes open their sessions from them
        # Whole images run the predict graph in this precision; sliding windows (the tile
        # graph) stay float32: blending needs the logits themselves.
        self.precision = precision_name
        self.classes: list[str] = list(config["classes"])
        self.geometry = Geometry.from_config(config)
        self.tile, self.overlap = tile, overlap
        self._model_dir, self._notify = model_dir, notify
        self._tiles: Optional[tuple] = None  # the tile graph's (session, bytes), opened when an image first needs it
        self._lanes: dict[str, _LaneSessions] = {}  # graph name -> lane sessions (open_lanes)
        self._pays: Optional[bool] = None  # whether lanes pay for this graph here (_lanes_pay)
        self._opening = threading.Lock()  # two lanes meeting their first big image open the tile graph once

    @classmethod
    def load(
        cls,
        model_dir: Path,
        version_id: str = "",
        notify: Optional[Notify] = None,
        tile="auto",
        overlap: Optional[float] = None,
        precision_name: str = "fp32",
        calibration: Optional[Calibration] = None,
    ) -> "OnnxPredictor":
        config = artifacts.config_of(model_dir)
        session, graph = load_session(model_dir, notify, BY_PRECISION[precision_name], calibration)
        return cls(session, config, version_id, Path(model_dir), notify, tile, overlap, precision_name, graph)

    def open_lanes(self, runs: Optional[int] = None) -> int:
        """Get ready for a job of `runs` batches (None: a stream) run side by side: how many
        threads may call `run(prepared, lane=True)` at once (1: run them one at a time, as
        usual). Lanes are used where lane_count allows and they pay for this graph on this
        machine (measured once, recorded beside the graph) or SEGCLI_LANES says so. Call before
        those threads start."""
        lanes = lane_count(runs) if self._graph is not None else 1
        wanted = _lanes_override()
        if lanes == 1 or wanted is False or (wanted is None and not self._lanes_pay()):
            return 1
        if WHOLE not in self._lanes:
            self._lanes[WHOLE] = _LaneSessions(self._graph, lanes)  # type: ignore[arg-type]
        return lanes

    def _lanes_pay(self) -> bool:
        """Whether lanes pay for this graph here: its record beside the graph, else measured
        now (and recorded); kept for this engine's life."""
        if self._pays is None:
            where = self._lanes_record()
            self._pays = self._recorded_lanes(*where) if where else None
            if self._pays is None:
                self._pays = self._measure_lanes(where)
        return self._pays

    def _lanes_record(self) -> Optional[tuple[Path, str]]:
        """(file, key) of the record of whether lanes pay for this graph on this many cores. The
        graph's key is the one its metadata carries (checked when it was loaded): the weights
        are not hashed again."""
        if self._model_dir is None:
            return None
        key = self.session.get_modelmeta().custom_metadata_map.get("segcli.key")
        if not key:
            return None
        return self._model_dir / (BY_PRECISION[self.precision].name + LANES_SUFFIX), f"{key}/{usable_cpus()}"

    @staticmethod
    def _recorded_lanes(path: Path, key: str) -> Optional[bool]:
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if isinstance(record, dict) and record.get("key") == key and record.get("lanes") in (True, False):
            return bool(record["lanes"])
        return None

    def _measure_lanes(self, where: Optional[tuple[Path, str]]) -> bool:
        """Whether a node of the whole-image graph takes under LANES_NODE_MS on average: one
        batch of 8 random images at the model's input size on the all-cores session, after a
        warm-up, best of two (~0.1 s for the demo model, ~1 s for a U-Net small at 256 px).
        Recorded beside the graph."""
        import time

        import onnx

        h, w = self.geometry.crop
        feed = {
            onnx_graph.PRED_IMAGE: np.random.default_rng(0).integers(0, 256, (8, h, w, 3), np.uint8),
            onnx_graph.PRED_SIZE: np.asarray((h, w), np.int64),
        }
        self.session.run([onnx_graph.PRED_LABEL], feed)  # warm-up: first-run allocations, thread pool
        seconds = []
        for _ in range(2):
            start = time.perf_counter()
            self.session.run([onnx_graph.PRED_LABEL], feed)
            seconds.append(time.perf_counter() - start)
        nodes = max(1, len(onnx.load_model_from_string(self._graph).graph.node))
        node_ms = min(seconds) * 1000 / nodes
        pays = node_ms < LANES_NODE_MS
        if where is not None:
            record = {"key": where[1], "cpus": usable_cpus(), "lanes": pays, "batch_s": min(seconds)}
            record.update(nodes=nodes, node_ms=node_ms)
            try:
                artifacts.write_atomic(where[0], [json.dumps(record).encode()])
            except OSError:  # a read-only store measures again next time
                pass
        return pays

    def _tile_session(self, lane: bool):
        """The tile graph's session for a run, or its lane sessions' pool (built and cached on
        first use; opened once however many lanes ask at the same time)."""
        with self._opening:
            if self._tiles is None:
                said = (str(self._model_dir), self.precision)
                if self.precision != "fp32" and self._notify and said not in _WINDOWS_NOTED:
                    _WINDOWS_NOTED.add(said)  # once a process: the held-out measurement opens its own engine
                    self._notify(
                        f"note: images larger than the model's window run as sliding windows in fp32 "
                        f"(blending needs the logits); {self.precision} runs the images that fit one window"
                    )
                self._tiles = load_session(self._model_dir, self._notify, TILES)
            if lane and TILED not in self._lanes:
                self._lanes[TILED] = _LaneSessions(self._tiles[1], LANES)  # lane_count's only answer above 1
        return self._lanes[TILED].session() if lane else nullcontext(self._tiles[0])

    def _infer(self, windows: np.ndarray, out_hw: tuple[int, int], lane: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """engine/tiling's infer on the tile graph."""
        with self._tile_session(lane) as session:
            logits, raw = session.run(
                [onnx_graph.OUTPUT, onnx_graph.RAW_OUTPUT],
                {onnx_graph.PRED_IMAGE: windows, onnx_graph.PRED_SIZE: np.asarray(out_hw, np.int64)},
            )
        return logits, raw

    def predict(self, images: list[np.ndarray], batch_size: int = 8) -> list[SegResult]:
        """HxWx3 uint8 RGB images of any sizes, in order. Images with the same original and
        resized shapes share a run (the graph resizes a whole batch to one output size), up to
        RUN_VALUES values per output tensor."""
        return self.run(self.prepare(images, batch_size))

    def prepare(self, images: list[np.ndarray], batch_size: int = 8) -> "_Prepared":
        """Checked, resized and stacked batches (no session: any thread, ahead of `run`);
        images that take engine/tiling's path are kept apart, resized."""
        images = [prepare.check_image(im) for im in images]
        resized = [prepare.to_model_size(im, self.geometry) for im in images]
        whole, special = [], []
        for i, im in enumerate(images):
            path = prepare.special_path(self.geometry, im.shape[:2], len(self.classes), self.tile, self.overlap)
            if path is None:
                whole.append(i)
            else:
                special.append((i, path, resized[i], im.shape[:2]))
        keys = [(resized[i].shape, images[i].shape) for i in whole]
        runs = []
        for group in prepare.groups(keys, batch_size):
            group = [whole[g] for g in group]
            h, w = images[group[0]].shape[:2]
            step = max(1, min(len(group), RUN_VALUES // (len(self.classes) * h * w)))
            for start in range(0, len(group), step):
                idx = group[start : start + step]
                batch = resized[idx[0]][None] if len(idx) == 1 else np.stack([resized[i] for i in idx])
                runs.append((idx, batch, np.asarray((h, w), np.int64)))
        return _Prepared(len(images), runs, special, batch_size)

    def run(self, prepared: "_Prepared", lane: bool = False) -> list[SegResult]:
        """The model on prepared batches. `lane`: this call is one of several made side by side
        (after open_lanes), on the lane sessions."""
        lane = lane and WHOLE in self._lanes
        infer = partial(self._infer, lane=lane)
        out: list = [None] * prepared.count
        for i, path, resized, hw in prepared.special:
            out[i] = prepare.run_special(path, resized, hw, len(self.classes), infer, prepared.batch_size)
        for idx, batch, size in prepared.runs:
            with self._lanes[WHOLE].session() if lane else nullcontext(self.session) as session:
                label, prob = session.run(
                    [onnx_graph.PRED_LABEL, onnx_graph.PRED_PROB],
                    {onnx_graph.PRED_IMAGE: batch, onnx_graph.PRED_SIZE: size},
                )
            for j, i in enumerate(idx):
                # The scores (two bincounts, ~0.5 ms an image) are computed by whoever reads
                # them first: predict's writer threads, while the session runs the next batch.
                out[i] = SegResult(
                    label[j], compute_scores=partial(prepare.class_scores, label[j], prob[j], len(self.classes))
                )
        return out


class _Prepared(NamedTuple):
    count: int  # images, in input order
    runs: list[tuple[list[int], np.ndarray, np.ndarray]]  # (indices, uint8 NHWC batch, original size)
    special: list = []  # (index, path, resized image, original hw)
    batch_size: int = 8


def available() -> bool:
    """onnxruntime importable (without importing it)."""
    import importlib.util

    return importlib.util.find_spec("onnxruntime") is not None
