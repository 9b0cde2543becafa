"""The one writer of `predict` output, shared by the local and the Clarifai backends.

Both backends hand over per-image (or per-frame) label maps plus a score per class; this module
turns them into the script contract: `DIR/predictions.json` with `classes` and `items`, an index
mask PNG and an overlay per input, and an overlaid video per video input. The JSON and the PNG are
always derived from the same thresholded label map, so they cannot disagree.
"""

from __future__ import annotations

import json
import re
import threading
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from segcli.core.classes import BACKGROUND
from segcli.core.files import write_text_atomic
from segcli.core.names import NamePlan
from segcli.datasets.imagefile import bbox_of
from segcli.render import png, preannotations, strips
from segcli.render.overlay import render_overlay


@dataclass
class _Video:
    stem: str
    fps: float | None
    writer: Any = None  # VideoWriter, opened on the first frame (needs the frame size)


class PredictionWriter:
    """Collects prediction items; writes mask/overlay files as they come and the JSON on close.

    `classes[i]` is the concept whose pixels have value i in every label map and mask PNG;
    `classes[0]` must be "background". `out_dir=None` builds the JSON document only (for
    `-o json` without `--out`); file paths are then None.

    `add_image` writes in the caller's thread; `submit_image` hands the work (thresholds, RLE,
    mask PNG, overlay PNG) to `workers` threads (PIL and zlib release the GIL), so writing
    never serialises a predict pipeline. `class_scores` ([C] scores) may also be a function
    returning them, called where the work is done. Items keep the order of the calls either
    way: each call reserves its slot (and its output file names) before any work starts. Use
    it as a context manager: whatever happens, videos are finalised and predictions.json is
    written with every item finished so far and the `skipped` inputs.
    """

    def __init__(
        self,
        out_dir: Path | str | None,
        classes: Sequence[str],
        threshold: float = 0.05,
        workers: int = 0,
        class_order: str | None = None,
        drafts: str | None = None,
    ) -> None:
        if not classes or classes[0] != BACKGROUND:
            raise ValueError(f'classes[0] must be "{BACKGROUND}", got {list(classes)[:1]}')
        if len(classes) > 255:
            raise ValueError("at most 254 concepts fit a uint8 mask (255 is the ignore index)")
        self.out_dir = Path(out_dir) if out_dir is not None else None
        self.classes = list(classes)
        # How `classes` relates to the model's dataset order (core/classes.py), when known.
        self.class_order = class_order
        self.threshold = float(threshold)
        self._items: list[dict[str, Any] | None] = []
        self.skipped: list[dict[str, str]] = []
        # Every file (and folder) written per input, after its stem: planned so none clashes.
        self._names = NamePlan(
            derived=(".mask.png", ".overlay.png", ".overlay.mp4", ".f000000.mask.png"), derived_dirs=("_frames",)
        )
        self._videos: dict[str, _Video] = {}
        self._closed = False
        self._pool: ThreadPoolExecutor | None = None
        self._frames: ThreadPoolExecutor | None = None  # one thread: a video is encoded in order
        self._pending: deque[Future] = deque()
        self._room: threading.Semaphore | None = None
        if workers > 0:
            self._pool = ThreadPoolExecutor(workers, thread_name_prefix="segcli-write")
            self._room = threading.Semaphore(4 * workers)  # bounds images held in memory
        if self.out_dir is not None:
            self.out_dir.mkdir(parents=True, exist_ok=True)
        # Pre-annotations for a labelling tool (`predict --format`): render/preannotations.py.
        self._drafts = preannotations.make(self.out_dir, drafts, self.classes)

    # -- context manager: finalised even when predict fails half-way ---------------------
    def __enter__(self) -> "PredictionWriter":
        return self

    def __exit__(self, exc_type: object, *rest: object) -> None:
        if exc_type is None:
            self.close()
            return
        try:  # keep what was predicted; the error that got us here is the one to report
            self.close()
        except Exception:  # noqa: BLE001
            pass

    @property
    def items(self) -> list[dict[str, Any]]:
        return [item for item in self._items if item is not None]

    def add_image(self, input_name: str, image: np.ndarray, labelmap: np.ndarray, class_scores: Any) -> dict[str, Any]:
        slot, stem = self._reserve(input_name)
        return self._image(slot, input_name, stem, image, labelmap, class_scores)

    def submit_image(
        self,
        input_name: str,
        image: np.ndarray,
        labelmap: np.ndarray,
        class_scores: Any,
        done: Callable[[], None] | None = None,
    ) -> None:
        """Like add_image, in a writer thread (blocks while 4 x workers are queued). A failed
        write raises here on a later call, or in close(). `done` is called once the item is
        written or has failed (predict releases the image's memory budget with it)."""
        if self._pool is None:
            try:
                self.add_image(input_name, image, labelmap, class_scores)
            finally:
                if done is not None:
                    done()
            return
        slot, stem = self._reserve(input_name)
        self._submit(self._pool, self._image, slot, input_name, stem, image, labelmap, class_scores, done=done)

    def describe(
        self, input_name: str, image: np.ndarray, labelmap: np.ndarray, class_scores: Any
    ) -> tuple[dict[str, Any], np.ndarray, list[int]]:
        """One image's item as predictions.json has it, kept nowhere and written nowhere (file
        paths None): for callers answering one image at a time (`segcli serve`). Also the
        thresholded label map (the mask PNG's pixels) and the class indices kept (the overlay's
        legend). Any thread."""
        labelmap, kept, regions = self._threshold(labelmap, class_scores, image)
        return self._new_item(input_name, labelmap, regions), labelmap, kept

    def skip(self, input_name: str, reason: str) -> None:
        """An input that could not be predicted (unreadable image, corrupt video, ...)."""
        self.skipped.append({"input": str(input_name), "reason": reason})

    def add_video_frame(
        self,
        video_name: str,
        frame_index: int,
        time_s: float,
        image: np.ndarray,
        labelmap: np.ndarray,
        class_scores: Any,
        fps: float | None = None,
    ) -> dict[str, Any]:
        """One frame of a video: a JSON item, a mask PNG in `<stem>_frames/`, a video frame.
        Frames are encoded in call order, in the caller's thread."""
        slot, video = self._reserve_frame(video_name, fps)
        return self._video_frame(slot, video, video_name, frame_index, time_s, image, labelmap, class_scores)

    def submit_video_frame(
        self,
        video_name: str,
        frame_index: int,
        time_s: float,
        image: np.ndarray,
        labelmap: np.ndarray,
        class_scores: Any,
        fps: float | None = None,
    ) -> None:
        """Like add_video_frame, in a writer thread of its own (one, so that the video's frames
        are encoded in call order). Blocks while 4 x workers writes are queued; a failed write
        raises here on a later call, or in close()."""
        if self._pool is None:
            self.add_video_frame(video_name, frame_index, time_s, image, labelmap, class_scores, fps)
            return
        slot, video = self._reserve_frame(video_name, fps)
        if self._frames is None:
            self._frames = ThreadPoolExecutor(1, thread_name_prefix="segcli-video")
        self._submit(
            self._frames, self._video_frame, slot, video, video_name, frame_index, time_s, image, labelmap, class_scores
        )

    def _video_frame(
        self,
        slot: int,
        video: _Video | None,
        video_name: str,
        frame_index: int,
        time_s: float,
        image: np.ndarray,
        labelmap: np.ndarray,
        class_scores: Any,
    ) -> dict[str, Any]:
        labelmap, _, regions = self._threshold(labelmap, class_scores, image)
        item = self._new_item(f"{video_name}#frame={frame_index}", labelmap, regions)
        item["frame"], item["time"] = int(frame_index), round(float(time_s), 4)
        if video is not None:
            stem = f"{video.stem}_frames/{video.stem}.f{frame_index:06d}"
            item["mask_path"] = self._save_mask(labelmap, stem)
            # Legend lists every concept: a key that stays put is easier to read than one that
            # flickers from frame to frame, and it keeps all frames the same size.
            overlay = render_overlay(image, labelmap, self.classes, present=range(1, len(self.classes)))
            item["overlay_path"] = item["video_overlay_path"] = self._write_video_frame(video, overlay, time_s)
        self._items[slot] = item
        return item

    def finish_video(self, video_name: str) -> None:
        """Finalise one video's overlay file once its submitted frames are written (close()
        does it for any left open). A failed write is raised later, by close()."""
        wait(list(self._pending))
        video = self._videos.get(video_name)
        if video is not None and video.writer is not None:
            video.writer.close()

    def document(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"classes": list(self.classes)}
        if self.class_order is not None:
            doc["class_order"] = self.class_order
        return {**doc, "items": self.items, "skipped": list(self.skipped)}

    def close(self) -> dict[str, Any]:
        """Wait for the writer threads, finish videos, write predictions.json atomically (always,
        with every item finished), then raise the first write error if there was one."""
        error: BaseException | None = None
        try:
            self._reap(block=True)
        except BaseException as exc:  # noqa: BLE001 - reported after the index is written
            error = exc
        finally:
            for pool in (self._pool, self._frames):
                if pool is not None:
                    pool.shutdown(wait=True)
            try:
                self._close_videos()
            except Exception as exc:  # noqa: BLE001
                error = error or exc
            if self._drafts is not None and not self._closed:
                try:
                    self._drafts.close()
                except Exception as exc:  # noqa: BLE001
                    error = error or exc
        doc = self.document()
        if self.out_dir is not None and not self._closed:
            # Readers (scripts polling DIR) never see a half-written predictions.json.
            # The mapping beside the masks, for readers that never open predictions.json.
            write_text_atomic(self.out_dir / "classes.txt", "".join(f"{c}\n" for c in self.classes))
            write_text_atomic(self.out_dir / "predictions.json", json.dumps(doc, indent=2) + "\n")
        self._closed = True
        if error is not None:
            raise error
        return doc

    # -- internals ------------------------------------------------------------------------------
    def _reserve(self, input_name: str | None) -> tuple[int, str | None]:
        """The next item slot and, for an image with an output folder, its unique file stem."""
        self._items.append(None)
        stem = self._unique_stem(input_name) if input_name is not None and self.out_dir is not None else None
        return len(self._items) - 1, stem

    def _submit(
        self, pool: ThreadPoolExecutor, work: Callable[..., Any], *args: Any, done: Callable[[], None] | None = None
    ) -> None:
        self._reap(block=False)
        self._room.acquire()  # type: ignore[union-attr]
        future = pool.submit(work, *args)

        def finished(_: Future) -> None:
            self._room.release()  # type: ignore[union-attr]
            if done is not None:
                done()

        future.add_done_callback(finished)
        self._pending.append(future)

    def _reserve_frame(self, video_name: str, fps: float | None) -> tuple[int, _Video | None]:
        """A frame's item slot and its video (None without an output folder), reserved in the
        caller's thread: the video's file stem is chosen in call order, like an image's."""
        slot, _ = self._reserve(None)
        return slot, (self._video(video_name, fps) if self.out_dir is not None else None)

    def _reap(self, block: bool) -> None:
        """Drop finished writes, raising the first error; with block, wait for all of them."""
        first: BaseException | None = None
        while self._pending and (block or self._pending[0].done()):
            future = self._pending.popleft()
            exc = future.exception()
            if exc is not None and first is None:
                first = exc
        if first is not None:
            raise first

    def _image(
        self, slot: int, input_name: str, stem: str | None, image: np.ndarray, labelmap: np.ndarray, class_scores: Any
    ) -> dict[str, Any]:
        labelmap, kept, regions = self._threshold(labelmap, class_scores, image)
        item = self._new_item(input_name, labelmap, regions)
        if stem is not None and labelmap.size >= strips.LARGE_PIXELS:
            # a band at a time: the one-piece path makes several full-size copies
            item["mask_path"], item["overlay_path"] = f"{stem}.mask.png", f"{stem}.overlay.png"
            strips.write_mask_png(self.out_dir / item["mask_path"], labelmap)  # type: ignore[operator]
            strips.write_overlay_png(
                self.out_dir / item["overlay_path"],
                image,
                labelmap,  # type: ignore[operator]
                self.classes,
                kept,
            )
        elif stem is not None:
            item["mask_path"] = self._save_mask(labelmap, stem)
            overlay = render_overlay(image, labelmap, self.classes, present=kept)
            item["overlay_path"] = self._save_overlay(overlay, stem)
        if self._drafts is not None and stem is not None:
            self._drafts.add(slot, input_name, stem, labelmap, {c: r["score"] for c, r in zip(kept, regions)})
        self._items[slot] = item
        return item

    def _threshold(
        self, labelmap: np.ndarray, class_scores: Any, image: np.ndarray
    ) -> tuple[np.ndarray, list[int], list]:
        """Drop regions scoring under the threshold (their pixels become background): the label
        map, the class indices kept and their regions."""
        lm = _check_labelmap(labelmap, len(self.classes))
        if np.shape(image)[:2] != lm.shape:
            raise ValueError(f"label map {lm.shape} does not match image {np.shape(image)[:2]}")
        if callable(class_scores):
            class_scores = class_scores()
        scores = np.asarray(class_scores, dtype=np.float64).ravel()
        if scores.shape[0] != len(self.classes):
            raise ValueError(f"{scores.shape[0]} class scores for {len(self.classes)} classes")
        counts = np.bincount(lm.ravel(), minlength=len(self.classes))
        present = [c for c in range(1, len(self.classes)) if counts[c]]
        dropped = [c for c in present if scores[c] < self.threshold]
        if dropped:
            lut = np.arange(256, dtype=np.uint8)
            lut[dropped] = 0
            lm = lut[lm]
        kept = [c for c in present if c not in dropped]
        return lm, kept, [self._region(lm, c, float(scores[c]), int(counts[c])) for c in kept]

    def _region(self, lm: np.ndarray, index: int, score: float, area: int) -> dict[str, Any]:
        if lm.size >= strips.LARGE_PIXELS:  # no full-size boolean mask and its copies
            bbox, rle = strips.bbox_and_rle(lm, index)
        else:
            mask = lm == index
            bbox, rle = list(bbox_of(mask)), encode_rle(mask)
        return {
            # Concept ids equal names (on Clarifai since SDK 10.9.3, and locally).
            "concept": {"id": self.classes[index], "name": self.classes[index]},
            "score": round(score, 4),
            "area": area,
            "bbox": bbox,
            "mask": rle,
        }

    def _new_item(self, input_name: str, lm: np.ndarray, regions: list) -> dict[str, Any]:
        return {
            "input": str(input_name),
            "width": int(lm.shape[1]),
            "height": int(lm.shape[0]),
            "mask_path": None,
            "overlay_path": None,
            "regions": regions,
        }

    def _unique_stem(self, name: str) -> str:
        # Two inputs called a/x.png and b/x.png must not overwrite each other's outputs, nor
        # A.png and a.png on a case-insensitive file system, and a 250-byte name plus
        # ".overlay.png" must still fit a file name: core/names.NamePlan plans them all.
        base = re.sub(r"[^\w.-]+", "_", Path(name).stem) or "input"
        return self._names.place_stem(base)

    def _save_mask(self, lm: np.ndarray, stem: str) -> str:
        rel = f"{stem}.mask.png"
        path = self.out_dir / rel  # type: ignore[operator]
        path.parent.mkdir(parents=True, exist_ok=True)
        png.save(path, lm)  # grey 8-bit PNG: pixel value = class index
        return rel

    def _save_overlay(self, overlay: np.ndarray, stem: str) -> str:
        rel = f"{stem}.overlay.png"
        png.save(self.out_dir / rel, overlay)  # type: ignore[operator]
        return rel

    def _video(self, name: str, fps: float | None) -> _Video:
        if name not in self._videos:
            self._videos[name] = _Video(self._unique_stem(name), fps)
        return self._videos[name]

    def _write_video_frame(self, video: _Video, overlay: np.ndarray, time_s: float) -> str:
        from segcli.media.video import VideoWriter

        rel = f"{video.stem}.overlay.mp4"
        if video.writer is None:
            video.writer = VideoWriter(
                self.out_dir / rel,
                video.fps or 25.0,  # type: ignore[operator]
                (overlay.shape[1], overlay.shape[0]),
            )
        video.writer.write(overlay, time_s)
        return rel

    def _close_videos(self) -> None:
        error: Exception | None = None
        for video in self._videos.values():
            if video.writer is not None:
                try:
                    video.writer.close()
                except Exception as exc:  # noqa: BLE001 - close the others, then report
                    error = error or exc
        if error is not None:
            raise error


def _check_labelmap(labelmap: np.ndarray, num_classes: int) -> np.ndarray:
    lm = np.asarray(labelmap)
    if lm.ndim != 2:
        raise ValueError(f"label map must be 2-D (H, W), got shape {lm.shape}")
    if lm.size and (lm.min() < 0 or lm.max() >= num_classes):
        raise ValueError(f"label map values must be in 0..{num_classes - 1}, got {int(lm.min())}..{int(lm.max())}")
    return lm.astype(np.uint8, copy=False)


def encode_rle(mask: np.ndarray) -> dict[str, Any]:
    """COCO compressed RLE of a boolean mask, JSON-ready (`counts` as str)."""
    from pycocotools import mask as mask_utils

    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(rle["size"][0]), int(rle["size"][1])], "counts": rle["counts"].decode("ascii")}
