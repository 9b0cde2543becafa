"""Predict on images, folders, globs and videos; write masks, overlays and predictions.json.

The model is loaded once; images are decoded on a background thread while the previous
batch runs, so the model never waits on disk.
"""
from __future__ import annotations

import glob
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Iterable, Iterator, Optional

import numpy as np

from segcli.backends.base import Backend
from segcli.core.errors import InvalidInputError, NotFoundError
from segcli.render.progress import Counter

IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}
VIDEO_EXTS = {".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v"}


def expand_inputs(inputs: list[str]) -> list[Path]:
    """Files as given, folders recursively (images and videos), quoted globs expanded."""
    paths: list[Path] = []
    for raw in inputs:
        path = Path(raw)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_EXTS | VIDEO_EXTS)
            if not found:
                raise InvalidInputError(f"no images or videos in folder {path}", hint="check the INPUT path")
            paths.extend(found)
        elif path.is_file():
            if path.suffix.lower() not in IMAGE_EXTS | VIDEO_EXTS:
                raise InvalidInputError(f"{path} is not an image or video (by its extension)",
                                        hint="images: " + " ".join(sorted(IMAGE_EXTS)) + "; videos: " + " ".join(sorted(VIDEO_EXTS)))
            paths.append(path)
        elif any(ch in raw for ch in "*?["):
            matched = sorted(Path(p) for p in glob.glob(raw, recursive=True) if Path(p).suffix.lower() in IMAGE_EXTS | VIDEO_EXTS)
            if not matched:
                raise NotFoundError(f"no images match {raw}", hint="check the pattern")
            paths.extend(matched)
        else:
            raise NotFoundError(f"input {raw} does not exist", hint="pass image files, folders, globs or videos")
    return paths


def _load_rgb(path: Path) -> tuple[Path, Optional[np.ndarray], str]:
    from segcli.datasets.imagefile import BadFile, open_rgb  # as displayed, as training saw it

    try:
        return path, open_rgb(path), ""
    except BadFile as exc:
        return path, None, f"cannot read image: {exc.reason}"


def _batches(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    batch: list[Any] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def predict(backend: Backend, app_id: str, model_id: str, version_id: Optional[str], inputs: list[str],
            out_dir: Optional[Path], threshold: float, batch_size: int, progress_mode: str,
            warn) -> dict[str, Any]:
    from segcli.render.predictions import PredictionWriter

    paths = expand_inputs(inputs)
    if out_dir is not None:
        try:
            out_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InvalidInputError(f"cannot create output folder {out_dir}: {exc.strerror}", hint="choose another --out") from None
    segmenter = backend.load_segmenter(app_id, model_id, version_id)
    writer = PredictionWriter(out_dir, segmenter.classes, threshold=threshold)
    images = [p for p in paths if p.suffix.lower() in IMAGE_EXTS]
    videos = [p for p in paths if p.suffix.lower() in VIDEO_EXTS]
    # Three stages overlap: decode (2 threads) -> model (this thread) -> write masks/overlays
    # (1 thread, so items keep their input order). torch releases the GIL while it computes.
    with Counter("predicting", len(images), progress_mode) as counter, \
            ThreadPoolExecutor(max_workers=2) as readers, ThreadPoolExecutor(max_workers=1) as output:
        pending: list = []
        for batch in _batches(readers.map(_load_rgb, images), batch_size):
            for path, _, why in (b for b in batch if b[1] is None):
                warn(f"skipped {path}: {why}")
            good = [b for b in batch if b[1] is not None]
            for (path, image, _), result in zip(good, segmenter.predict([g[1] for g in good]) if good else []):
                pending.append(output.submit(writer.add_image, str(path), image, result.labelmap, result.class_scores))
            pending = _drain(pending, keep=2 * batch_size)
            counter.advance(len(batch))
        _drain(pending, keep=0)
    for video in videos:
        _predict_video(segmenter, writer, video, batch_size, progress_mode)
    document = writer.close()
    return document


def _drain(pending: list, keep: int) -> list:
    """Wait for finished writes (raising their errors) so memory stays bounded."""
    while len(pending) > keep:
        pending.pop(0).result()
    return pending


def _predict_video(segmenter, writer, video: Path, batch_size: int, progress_mode: str) -> None:
    from segcli.render.video import iter_video_frames

    with Counter(f"predicting {video.name}", 0, progress_mode) as counter:
        for batch in _batches(iter_video_frames(video), batch_size):
            results = segmenter.predict([frame for _, _, frame in batch])
            for (index, t, frame), result in zip(batch, results):
                writer.add_video_frame(str(video), index, t, frame, result.labelmap, result.class_scores)
            counter.advance(len(batch))
