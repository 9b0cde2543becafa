"""Predict on images, folders, globs and videos; write masks, overlays and predictions.json.

One pipeline, three overlapping stages: decoding a batch and preparing it for the model where
the engine allows (threads, in input order, a bounded number ahead) -> the model (this thread
and nothing else; ONNX Runtime and torch release the GIL while they compute) -> writing masks,
overlays and RLE, and the class scores (PredictionWriter's threads). The model loads once.

Memory is bounded by pixels, not by image count: batches hold at most BATCH_PIXELS (read from
the files' headers first), and at most BUDGET_PIXELS of decoded images are in flight between
decoding and the end of their writing (a larger image goes alone). 256 px images still batch by
8 and read ahead freely; 12 MP photos overlap decode, model and writing three at a time; a
100 MP photo runs alone, its logits blended or upsampled in bands (engine/tiling.py).

An input that cannot be read (corrupt or truncated file, decompression bomb, broken video) is
skipped with a warning and listed under `skipped` in predictions.json; predictions.json is
written whatever happens; when nothing at all could be predicted the command fails (exit 5).
"""

from __future__ import annotations

import glob
import os
import queue
import threading
import warnings
from functools import partial
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Optional

import numpy as np

from segcli.backends.base import Backend
from segcli.core import regular
from segcli.core.classes import DATASET, DESCRIPTIONS
from segcli.core.cpus import usable_cpus
from segcli.core.errors import InvalidInputError, NotFoundError
from segcli.core.faults import cannot_write
from segcli.core.files import IMAGE_SUFFIXES, VIDEO_SUFFIXES
from segcli.core.ordered import OrderedBudget, ordered_map
from segcli.core.segmentation import LanedSegmenter, SegResult, StagedSegmenter
from segcli.render.progress import Counter

IMAGE_EXTS = frozenset(IMAGE_SUFFIXES)
VIDEO_EXTS = frozenset(VIDEO_SUFFIXES)
BATCH_PIXELS = 8 * 2**20  # a decode batch: up to batch_size images within this
BUDGET_PIXELS = 48 * 2**20  # decoded, not yet written: ~300 MB of images and label maps


def expand_inputs(inputs: list[str], out_dir: Optional[Path] = None) -> list[Path]:
    """Files as given, folders recursively (images and videos, without segcli's own outputs:
    see _own_output), quoted globs expanded. What is no regular file (a FIFO, a device, a link
    loop: core/regular) is kept, to be skipped with its reason, never opened."""
    paths: list[Path] = []
    for raw in inputs:
        path = Path(raw)
        if path.is_dir():
            entries = sorted(path.rglob("*"))
            outputs = {os.path.abspath(p.parent) for p in entries if p.name == PREDICTIONS_JSON}
            if out_dir is not None:
                outputs.add(os.path.abspath(out_dir))
            found = [p for p in entries if p.suffix.lower() in IMAGE_EXTS | VIDEO_EXTS and not _own_output(p, outputs)]
            if not found:
                raise InvalidInputError(f"no images or videos in folder {path}", hint="check the INPUT path")
            paths.extend(found)
        elif os.path.lexists(path):  # a file, or what is none (a FIFO...): skipped with its reason
            if path.suffix.lower() not in IMAGE_EXTS | VIDEO_EXTS:
                raise InvalidInputError(
                    f"{path} is not an image or video (by its extension)",
                    hint="images: " + " ".join(sorted(IMAGE_EXTS)) + "; videos: " + " ".join(sorted(VIDEO_EXTS)),
                )
            paths.append(path)
        elif any(ch in raw for ch in "*?["):
            matched = sorted(
                Path(p) for p in glob.glob(raw, recursive=True) if Path(p).suffix.lower() in IMAGE_EXTS | VIDEO_EXTS
            )
            if not matched:
                raise NotFoundError(f"no images match {raw}", hint="check the pattern")
            paths.extend(matched)
        else:
            raise NotFoundError(f"input {raw} does not exist", hint="pass image files, folders, globs or videos")
    return paths


PREDICTIONS_JSON = "predictions.json"
# What a predict writes beside predictions.json (render/predictions.py), per input.
OUTPUT_ENDINGS = (".mask.png", ".overlay.png", ".overlay.mp4")


def _own_output(path: Path, outputs: set[str]) -> bool:
    """Whether `path` is a file an earlier predict wrote into one of the `outputs` folders (its
    --out, or a folder holding predictions.json): a mask, an overlay, a video's frame masks.
    Predicting them again would feed segcli its own output (an --out inside the input folder)."""
    name, folder = path.name.lower(), os.path.abspath(path.parent)
    if folder in outputs and name.endswith(OUTPUT_ENDINGS):
        return True
    return path.parent.name.endswith("_frames") and os.path.dirname(folder) in outputs and name.endswith(".mask.png")


def load_rgb(path: Path) -> tuple[Path, Optional[np.ndarray], str]:
    """(path, HxWx3 uint8, "") or (path, None, why it cannot be read). Opened as displayed and
    converted as training saw it (EXIF orientation, 16-bit, alpha: datasets/imagefile.py), and
    refused before decoding when it is a decompression bomb. A FIFO, a device, a link loop is
    refused before it is opened (core/regular)."""
    from segcli.datasets.imagefile import BadFile, open_rgb

    why = regular.problem(path)
    if why is not None:
        return path, None, why
    try:
        return path, open_rgb(path), ""
    except BadFile as exc:
        return path, None, f"cannot read image: {exc.reason}"
    except MemoryError:
        return path, None, "cannot read image: out of memory"


def _reason(what: str, exc: BaseException, path: Path) -> str:
    """`what: ErrorType: message`, without the file name the message repeats (the skip names it)."""
    message = str(exc)
    for form in (f"'{path}'", f'"{path}"', str(path)):
        message = message.replace(form, "")
    message = message.strip().rstrip(":").strip()
    return f"{what}: {exc.__class__.__name__}" + (f": {message}" if message else "")


def _background(iterable: Iterable, depth: int) -> Iterator:
    """Iterate `iterable` in a thread, `depth` items ahead; its exceptions re-raise here, in order."""
    done = object()
    q: queue.Queue = queue.Queue(depth)
    stop = threading.Event()

    def offer(entry) -> bool:
        """Put unless the consumer has gone: every put waits in slices, so none blocks forever."""
        while not stop.is_set():
            try:
                q.put(entry, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def run() -> None:
        try:
            for item in iterable:
                if not offer((item, None)):
                    return
            offer((done, None))
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            offer((done, exc))
        finally:
            close = getattr(iterable, "close", None)
            if close is not None:  # a generator's finally closes its file (PyAV container)
                close()

    thread = threading.Thread(target=run, name="segcli-video-decode", daemon=True)
    thread.start()
    try:
        while True:
            item, exc = q.get()
            if item is done:
                if exc is not None:
                    raise exc
                return
            yield item
    finally:
        stop.set()
        thread.join()


def _scores(result: SegResult):
    return result.class_scores


def _batches(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    batch: list[Any] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def predict(
    backend: Backend,
    app_id: str,
    model_id: str,
    version_id: Optional[str],
    inputs: list[str],
    out_dir: Optional[Path],
    threshold: float,
    batch_size: int,
    progress_mode: str,
    warn: Callable[[str], None],
    engine: str = "auto",
    notify: Optional[Callable[[str], None]] = None,
    tile: "int | str" = "auto",
    overlap: Optional[float] = None,
    drafts: Optional[str] = None,
    precision: str = "fp32",
) -> dict[str, Any]:
    """`tile`, `overlap`: how windows slide over big images (core/geometry.Geometry.plan);
    `drafts`: also write pre-annotations in that format (render/preannotations.py) below out_dir;
    `precision`: fp16 | int8 run the version's reduced-precision graph (built, and its held-out
    mIoU recorded with the version, on first use: services/precision.py)."""
    from PIL import Image

    if drafts is not None and out_dir is None:
        raise InvalidInputError(
            f"--format {drafts} writes files: it needs --out DIR",
            hint=f"segcli predict ... --out DIR --format {drafts}",
        )
    if precision != "fp32":  # before any lookup: the answer does not depend on what exists
        backend.require_local_weights("run a model in reduced precision")
    paths = expand_inputs(inputs, out_dir)
    version = backend.trained_version(app_id, model_id, version_id)
    if version.class_order != DATASET:  # say once that mask values are not the dataset's
        order = DESCRIPTIONS.get(version.class_order, version.class_order)
        (notify or warn)(
            f"note: model version {version.id} numbers its classes by {order}"
            + ("; classes.txt beside the masks names each value" if out_dir is not None else "")
        )
    from segcli.services import precision as precisions

    segmenter = precisions.load_recorded(
        backend, app_id, model_id, version.id, precision, engine, notify, tile, overlap
    )
    if out_dir is not None:  # after the model loads: a damaged model leaves no empty --out behind
        try:
            out_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise cannot_write(exc, out_dir, hint="choose another --out") from None
    images = [p for p in paths if p.suffix.lower() in IMAGE_EXTS]
    videos = [p for p in paths if p.suffix.lower() in VIDEO_EXTS]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # load_rgb refuses them itself
        writer = _run(
            segmenter, images, videos, out_dir, threshold, batch_size, progress_mode, warn, version.class_order, drafts
        )
    document = writer.document()
    if not document["items"] and document["skipped"]:
        raise InvalidInputError(
            f"nothing could be predicted: all {len(document['skipped'])} inputs were skipped",
            hint="check the files named in the warnings above"
            + (f" (listed in {out_dir / 'predictions.json'})" if out_dir else ""),
        )
    return document


def header_pixels(path: Path) -> int:
    """width x height from the file's header (no decoding); 0 when it cannot be read (decoding
    will say why) or is not a regular file."""
    import stat

    from PIL import Image

    try:
        if not stat.S_ISREG(path.stat().st_mode):
            return 0
        with Image.open(path) as im:
            return int(im.width) * int(im.height)
    except Exception:  # noqa: BLE001 - anything unreadable is reported by the decode
        return 0


def plan_batches(pixels: list[int], batch_size: int, batch_pixels: int = BATCH_PIXELS) -> list[list[int]]:
    """Consecutive image indices in batches of at most `batch_size` images and `batch_pixels`
    pixels (an image larger than that goes alone)."""
    batches: list[list[int]] = []
    current: list[int] = []
    held = 0
    for i, px in enumerate(pixels):
        if current and (len(current) == batch_size or held + px > batch_pixels):
            batches.append(current)
            current, held = [], 0
        current.append(i)
        held += px
    if current:
        batches.append(current)
    return batches


def _run(
    segmenter,
    images: list[Path],
    videos: list[Path],
    out_dir: Optional[Path],
    threshold: float,
    batch_size: int,
    progress_mode: str,
    warn: Callable[[str], None],
    class_order: Optional[str] = None,
    drafts: Optional[str] = None,
):
    """The pipeline itself; returns the writer, closed (its index written) whatever happened."""
    from segcli.render.predictions import PredictionWriter

    cpus = usable_cpus()
    staged = isinstance(segmenter, StagedSegmenter)
    pixels = list(ordered_map(lambda i: header_pixels(images[i]), len(images), min(2, cpus), ahead=64))
    plan = plan_batches(pixels, batch_size)
    budget = OrderedBudget(BUDGET_PIXELS)

    # Lanes (engine/onnx_predict.LANES): where the engine runs batches side by side, each decode
    # thread also runs the model on the batch it decoded, and this thread only hands results to
    # the writer, in order.
    lanes = segmenter.open_lanes(len(plan)) if isinstance(segmenter, LanedSegmenter) else 1

    def load_batch(b: int) -> tuple[list, list, Any, Optional[list]]:
        """Batch b decoded and, where the engine allows, prepared for the model (resized,
        stacked), and with lanes its results: in a decode thread, so that this thread only
        feeds the model (or the writer). Waits for room in the budget first (given back as each
        image is written)."""
        budget.acquire(b, sum(pixels[i] for i in plan[b]))
        loaded = [load_rgb(images[i]) + (pixels[i],) for i in plan[b]]
        for entry in loaded:
            if entry[1] is None:
                budget.release(entry[3])
        good = [entry for entry in loaded if entry[1] is not None]
        prepared = segmenter.prepare([g[1] for g in good], batch_size) if staged and good else None
        results = segmenter.run(prepared, lane=True) if lanes > 1 and good else None
        return loaded, good, prepared, results

    with PredictionWriter(
        out_dir, segmenter.classes, threshold=threshold, workers=cpus, class_order=class_order, drafts=drafts
    ) as writer:
        with Counter("predicting", len(images), progress_mode) as counter:
            if lanes > 1:
                batches = ordered_map(load_batch, len(plan), lanes, ahead=lanes + 1)
            else:
                batches = ordered_map(load_batch, len(plan), min(2, cpus), ahead=2)
            try:
                for loaded, good, prepared, results in batches:
                    for path, _, why, _ in (entry for entry in loaded if entry[1] is None):
                        warn(f"skipped {path}: {why}")
                        writer.skip(str(path), why)
                    if good:
                        if results is None:
                            results = (
                                segmenter.run(prepared)
                                if staged
                                else segmenter.predict([g[1] for g in good], batch_size)
                            )
                        for (path, image, _, px), result in zip(good, results):
                            # Scores are read in the writer thread (an engine may compute them there).
                            writer.submit_image(
                                str(path),
                                image,
                                result.labelmap,
                                partial(_scores, result),
                                done=partial(budget.release, px),
                            )
                    counter.advance(len(loaded))
            finally:
                budget.close()  # wakes decode threads waiting for room, so they can stop
                batches.close()
        for video in videos:
            _predict_video(segmenter, writer, video, batch_size, progress_mode, warn)
    return writer


class _VideoReadError(Exception):
    """Reading a video failed (corrupt, truncated, not a video): the input's fault, not ours."""


def _read_frames(video: Path) -> Iterator[tuple[int, float, np.ndarray]]:
    from segcli.media.video import iter_video_frames

    try:
        yield from iter_video_frames(video)
    except Exception as exc:  # noqa: BLE001 - PyAV/FFmpeg raise many types for bad files
        raise _VideoReadError(_reason("cannot read video", exc, video)) from exc


def _predict_video(
    segmenter, writer, video: Path, batch_size: int, progress_mode: str, warn: Callable[[str], None]
) -> None:
    from segcli.media.video import video_fps

    frames, why = 0, regular.problem(video) or ""  # a FIFO would hang the decoder: never opened
    try:
        try:
            if why:
                raise _VideoReadError(why)
            fps = video_fps(video)
        except _VideoReadError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise _VideoReadError(_reason("cannot read video", exc, video)) from exc
        with Counter(f"predicting {video.name}", 0, progress_mode) as counter:
            for batch in _batches(_background(_read_frames(video), 2 * batch_size), batch_size):
                results = segmenter.predict([frame for _, _, frame in batch], batch_size)
                for (index, t, frame), result in zip(batch, results):
                    writer.submit_video_frame(
                        str(video), index, t, frame, result.labelmap, partial(_scores, result), fps=fps
                    )
                frames += len(batch)
                counter.advance(len(batch))
    except _VideoReadError as exc:
        why = f"{exc} (after {frames} frames)" if frames else str(exc)
    finally:
        writer.finish_video(str(video))  # a video cut short is still a playable file
    if not frames and not why:
        why = "no frames"
    if why:
        warn(f"skipped {video}: {why}")
        writer.skip(str(video), why)
