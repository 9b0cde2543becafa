"""LabeledItem -> Clarifai Input / Annotation protos, with deterministic ids.

Ids are the upload's idempotency keys: a re-run, a retry whose reply was lost, or a run after
kill -9 computes the same ids, so the server answers "duplicate" instead of storing twice.
- input id      `{dataset_id}-{sha256(image bytes)[:20]}` (the SDK's `{dataset_id}-{item_id}`
                 shape with the content hash as item id; inputs are app-wide, the dataset
                 prefix keeps one image in two datasets apart).
- annotation id `{sha256(image)[:20]}-{sha256(dataset, concept, label map)[:16]}`: one per
                 concept; a changed label map gives new ids, so changed labels are detectable.
Annotations are region masks (`region_info.mask.image.base64`, a 1-bit PNG of the concept's
pixels in the label map): exact, holes and multi-part regions included (see
docs/clarifai-backend.md for why not polygons).
"""
from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from functools import cached_property

import numpy as np
from clarifai_grpc.grpc.api import resources_pb2 as R
from PIL import Image

from segcli.datasets.items import LabeledItem

MAX_ID = 128
MAX_IMAGE_BYTES = 20 * 1024 * 1024  # Clarifai's documented per-image limit


def _sha(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


def input_id(dataset_id: str, image_sha256: str) -> str:
    candidate = f"{dataset_id}-{image_sha256[:20]}"
    if len(candidate) <= MAX_ID:
        return candidate
    return f"{_sha(dataset_id)[:16]}-{image_sha256[:20]}"  # very long dataset ids


@dataclass
class PlannedItem:
    """One item of an upload: its ids now, its bytes and masks only when a worker needs them."""

    item: LabeledItem
    dataset_id: str

    @cached_property
    def id(self) -> str:
        return input_id(self.dataset_id, self.item.image_sha256)

    @cached_property
    def labelmap_sha(self) -> str:
        return hashlib.sha256(self.item.labelmap_bytes()).hexdigest()

    @cached_property
    def annotation_ids(self) -> dict[str, str]:
        """concept -> annotation id, for every concept visible in the label map."""
        prefix = self.item.image_sha256[:20]
        return {c: f"{prefix}-{_sha(self.dataset_id, c, self.labelmap_sha)[:16]}"
                for c in sorted(set(self.item.labels.values()))}

    def owns(self, annotation_id: str) -> bool:
        """Annotations segcli made for this image (others, e.g. from a labeller, are left alone)."""
        return annotation_id.startswith(self.item.image_sha256[:20] + "-")

    def input_proto(self) -> R.Input:
        data = R.Data(image=R.Image(base64=self.item.image_path.read_bytes()))
        data.metadata.update({"filename": self.item.name, "segcli_sha256": self.item.image_sha256})
        return R.Input(id=self.id, data=data, dataset_ids=[self.dataset_id])

    def annotations(self, wanted: set[str] | None = None) -> list[R.Annotation]:
        """Region-mask annotations (only ids in `wanted` when given)."""
        todo = {c: a for c, a in self.annotation_ids.items() if wanted is None or a in wanted}
        if not todo:
            return []
        with Image.open(io.BytesIO(self.item.labelmap_bytes())) as im:
            labelmap = np.asarray(im)
        value_of = {name: value for value, name in self.item.labels.items()}
        out = []
        for concept, ann_id in todo.items():
            ann = R.Annotation(id=ann_id, input_id=self.id)
            region = ann.data.regions.add()
            region.region_info.mask.image.base64 = mask_png(labelmap == value_of[concept])
            region.data.concepts.add(id=concept, name=concept, value=1.0)
            out.append(ann)
        return out


def mask_png(mask: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(mask).save(buf, format="PNG")  # bool array -> mode "1": ~1 bit a pixel
    return buf.getvalue()


def decode_mask(data: bytes, h: int, w: int) -> np.ndarray:
    """A region mask image -> bool HxW (non-zero = in the region), resized if needed."""
    with Image.open(io.BytesIO(data)) as im:
        if im.size != (w, h):
            im = im.convert("L").resize((w, h), Image.NEAREST)
        arr = np.asarray(im)
    if arr.ndim == 3:
        arr = arr[..., :3].any(axis=2)
    return arr != 0


def polygon_mask(points, h: int, w: int) -> np.ndarray:
    """Normalised {row, col} polygon points (as the SDK uploads them) -> bool HxW."""
    from PIL import ImageDraw

    canvas = Image.new("1", (w, h), 0)
    ImageDraw.Draw(canvas).polygon([(p.col * w, p.row * h) for p in points], fill=1)
    return np.asarray(canvas)


def batches(items: list, size_of, max_items: int = 128, max_bytes: int = 8 * 1024 * 1024) -> list[list]:
    """Split into request-sized groups: at most `max_items` and (but for a single oversized
    item) `max_bytes` each, so no request nears gRPC's message limits."""
    out: list[list] = []
    current: list = []
    size = 0
    for item in items:
        n = size_of(item)
        if current and (len(current) >= max_items or size + n > max_bytes):
            out.append(current)
            current, size = [], 0
        current.append(item)
        size += n
    if current:
        out.append(current)
    return out
