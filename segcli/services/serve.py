"""`segcli serve`'s model side: one image's bytes in, its predictions.json item out.

The web layer (services/serve_http.py) reads and bounds the request, then calls
`ServedModel.answer` in a worker thread. Here: the bytes are decoded as every reader of images
decodes them (datasets/imagefile.open_rgb: EXIF orientation, modes, the decompression-bomb guard
before any pixel is decoded); a budget of decoded pixels in flight bounds memory whatever the
number of requests (services/predict.BUDGET_PIXELS, as predict); the image joins a batch of
concurrent requests for the model (services/batching.Batcher, which keeps the version's
geometry: the engine slides windows over big images as predict does); the item is built by the
writer predict uses (render/predictions.PredictionWriter.describe), so both answer the same
regions for the same image; the mask PNG and the overlay come on request, base64 in the JSON.
"""

from __future__ import annotations

import base64
import threading
from typing import Any, Optional

from segcli.backends import refusals
from segcli.backends.base import Backend
from segcli.core.errors import InvalidInputError
from segcli.services.batching import Batcher
from segcli.services.predict import BATCH_PIXELS, BUDGET_PIXELS


class BadImage(InvalidInputError):
    """The request's image cannot be predicted; `status` is the HTTP status that says why."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def refuse_cloud(backend_class) -> None:
    """serve runs the version's weights on this machine: backends whose models stay in their
    cloud refuse before anything opens (no connection, no credentials needed to say so)."""
    if not backend_class.exports_weights:
        title = backend_class.title or backend_class.name
        raise refusals.unsupported(
            backend_class.name,
            f"serve models on this machine: {title} serves its own models in its cloud",
            hint=f"call the model through {title}'s API (segcli predict uses it), or train "
            "on the local backend to serve: segcli --backend local train ...",
        )


class PixelBudget:
    """At most `limit` decoded pixels held at once by requests; a larger image waits until it
    is alone. Threads block in `acquire` (the web layer's worker threads)."""

    def __init__(self, limit: int) -> None:
        self.limit, self.held = limit, 0
        self._cond = threading.Condition()

    def acquire(self, pixels: int) -> int:
        take = min(pixels, self.limit)
        with self._cond:
            self._cond.wait_for(lambda: self.held + take <= self.limit)
            self.held += take
        return take

    def release(self, taken: int) -> None:
        with self._cond:
            self.held -= taken
            self._cond.notify_all()


class Arrival:
    """One request on its way to the batcher (ServedModel.arriving)."""

    def __init__(self, served: "ServedModel") -> None:
        self._served, self._done = served, False
        served._count(1)

    def arrived(self) -> None:
        """Idempotent: the image was submitted, or the request ended without one."""
        if not self._done:
            self._done = True
            self._served._count(-1)


class ServedModel:
    """A trained version loaded once, answering images from many threads."""

    def __init__(
        self,
        segmenter,
        app_id: str,
        model_id: str,
        class_order: Optional[str],
        threshold: float,
        max_batch: int,
        max_wait_s: float,
        precision: str = "fp32",
    ) -> None:
        from segcli.render.predictions import PredictionWriter

        self.segmenter, self.app_id, self.model_id = segmenter, app_id, model_id
        self.classes = list(segmenter.classes)
        self.class_order = class_order
        self.threshold = threshold
        self.precision = precision  # the graph `segmenter` runs (GET /metadata)
        self.writer = PredictionWriter(None, self.classes, threshold=threshold, class_order=class_order)
        self._coming = 0  # requests begun (arriving()) whose image is not yet submitted
        self._lock = threading.Lock()
        self.batcher = Batcher(segmenter, max_batch, max_wait_s, BATCH_PIXELS, on_the_way=lambda: self._coming)
        self.budget = PixelBudget(BUDGET_PIXELS)

    def arriving(self) -> "Arrival":
        """Say a request has begun (its body still being read, its image decoded): the batcher
        waits for it (at most max_wait) rather than run a batch without it. Call `.arrived()` on
        what this returns when it is submitted or refused (answer() does on submit)."""
        return Arrival(self)

    def _count(self, delta: int) -> None:
        with self._lock:
            self._coming += delta

    @classmethod
    def load(
        cls,
        backend: Backend,
        app_id: str,
        model_id: str,
        version_id: Optional[str],
        *,
        engine: str = "auto",
        tile: "int | str" = "auto",
        overlap: Optional[float] = None,
        threshold: float = 0.05,
        max_batch: int = 8,
        max_wait_s: float = 0.002,
        notify=None,
        precision: str = "fp32",
    ) -> "ServedModel":
        """`precision`: fp16 | int8 serve the version's reduced-precision graph, built (and its
        held-out mIoU recorded) on first use as predict does (services/precision.py)."""
        from segcli.services import precision as precisions

        refuse_cloud(type(backend))
        version = backend.trained_version(app_id, model_id, version_id)
        segmenter = precisions.load_recorded(
            backend, app_id, model_id, version.id, precision, engine, notify, tile, overlap
        )
        return cls(
            segmenter, app_id, model_id, version.class_order or None, threshold, max_batch, max_wait_s, precision
        )

    @property
    def version_id(self) -> str:
        return self.segmenter.version_id

    def metadata(self) -> dict[str, Any]:
        """GET /metadata: what a client needs to read the answers (classes[i] = mask value i)."""
        from segcli.datasets.imagefile import max_pixels

        geometry, limit = getattr(self.segmenter, "geometry", None), max_pixels()
        doc: dict[str, Any] = {
            "app": self.app_id,
            "model": self.model_id,
            "version": self.version_id,
            "classes": list(self.classes),
        }
        if self.class_order:
            doc["class_order"] = self.class_order
        doc.update(
            {
                "geometry": geometry.to_dict() if geometry is not None else None,
                "engine": getattr(self.segmenter, "engine", None),
                "precision": self.precision,
                "threshold": self.threshold,
                "max_batch": self.batcher.max_batch,
                "max_wait_ms": round(self.batcher.max_wait_s * 1000, 3),
                "max_megapixels": limit / 1e6 if limit else None,
            }
        )
        return doc

    def answer(
        self, body: bytes, name: str, mask: bool = False, overlay: bool = False, arrival: Optional["Arrival"] = None
    ) -> dict[str, Any]:
        """The item predictions.json would hold for this image (`input` = `name`, no file paths),
        with `mask_png` / `overlay_png` (base64 PNG) when asked. Blocks until the model has run:
        call it from a worker thread. BadImage when the bytes are no image segcli can read."""
        from segcli.datasets.imagefile import BadFile, open_image, open_rgb

        try:
            with open_image(body, name) as header:  # the bomb guard, before any decoding
                pixels = header.width * header.height
        except BadFile as exc:
            raise BadImage(exc.reason, status=413 if "decompression" in exc.reason.lower() else 400) from None
        taken = self.budget.acquire(pixels)
        try:
            try:
                image = open_rgb(body, name)
            except BadFile as exc:
                raise BadImage(exc.reason) from None
            except MemoryError:
                raise BadImage("out of memory decoding the image", status=413) from None
            if arrival is not None:  # before the submit: the batcher must not wait for this one
                arrival.arrived()
            result = self.batcher.submit(image, pixels).result()
            item, labelmap, kept = self.writer.describe(name, image, result.labelmap, result.class_scores)
            if mask or overlay:
                from segcli.render import png

                if mask:
                    item["mask_png"] = base64.b64encode(png.encode(labelmap)).decode("ascii")
                if overlay:
                    from segcli.render.overlay import render_overlay

                    picture = render_overlay(image, labelmap, self.classes, present=kept)
                    item["overlay_png"] = base64.b64encode(png.encode(picture)).decode("ascii")
            return item
        finally:
            self.budget.release(taken)

    def close(self) -> None:
        """Runs what was submitted, then stops the model threads."""
        self.batcher.close()
