"""LabeledItem -> Clarifai Input / Annotation protos, with deterministic ids.

Ids are the upload's idempotency keys: a re-run, a retry whose reply was lost, or a run after
kill -9 computes the same ids, so the server answers "duplicate" instead of storing twice.
- input id      `{dataset_id}-{sha256(image bytes)[:20]}` (the SDK's `{dataset_id}-{item_id}`
                 shape with the content hash as item id; inputs are app-wide, the dataset
                 prefix keeps one image in two datasets apart).
- annotation id (masks) `{sha256(image)[:20]}-{sha256(dataset, concept, label map PNG)[:16]}`;
                 (polygons) `{sha256(image)[:20]}-{sha256(dataset, concept, its pixels)[:16]}-{k}-{n}`
                 for ring k of n: changed labels give new ids, so they are detectable, and
                 whether all n rings are there is read from the ids without tracing again.
Two region formats (`--region-format`):
- polygon (default): what the SDK and Clarifai's docs send, one annotation per ring,
  `region_info.polygon.points` normalised {row: y/H, col: x/W}, one concept. The rings are
  traced along pixel edges from the label map (datasets/polygons.py): rasterised the COCO way
  they give the concept's pixels back exactly; a region with holes is cut into hole-free bands.
  Tracing is deterministic, so ids are too.
- mask: one annotation per concept, `region_info.mask.image.base64` = a 1-bit PNG of the
  concept's pixels in the label map (exact too, but not documented as a training format).
See docs/clarifai-backend.md.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from functools import cached_property
from typing import AbstractSet, Iterator, Optional

import numpy as np
from clarifai_grpc.grpc.api import resources_pb2 as R
from PIL import Image

from segcli.datasets.embedded import image_bytes
from segcli.datasets.items import LabeledItem
from segcli.datasets.polygons import mask_to_rings, rasterize

MAX_ID = 128
MAX_IMAGE_BYTES = 20 * 1024 * 1024  # Clarifai's documented per-image limit
POLYGON, MASK = "polygon", "mask"


def _sha(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


def input_id(dataset_id: str, image_sha256: str) -> str:
    candidate = f"{dataset_id}-{image_sha256[:20]}"
    if len(candidate) <= MAX_ID:
        return candidate
    return f"{_sha(dataset_id)[:16]}-{image_sha256[:20]}"  # very long dataset ids


@dataclass
class PlannedItem:
    """One item of an upload: its ids now, its bytes and regions only when a worker needs them
    (nothing big is kept: the label map is decoded and traced again when annotations are built)."""

    item: LabeledItem
    dataset_id: str
    region_format: str = POLYGON

    @cached_property
    def id(self) -> str:
        return input_id(self.dataset_id, self.item.image_sha256)

    @cached_property
    def labelmap_sha(self) -> str:
        return hashlib.sha256(self.item.labelmap_bytes()).hexdigest()

    @cached_property
    def annotation_ids(self) -> dict[str, str]:
        """annotation id -> concept, for every annotation this item should have (polygons: traced)."""
        return {ann_id: concept for ann_id, concept, _ in self._regions(None)}

    @cached_property
    def _concept_keys(self) -> dict[str, str]:
        """concept -> the middle part of its polygon ids: a hash of its pixels (no tracing)."""
        labelmap = self._labelmap()
        return {
            concept: self._concept_key(concept, self._pixels(labelmap, concept))
            for concept in sorted(set(self.item.labels.values()))
        }

    def owns(self, annotation_id: str) -> bool:
        """Annotations segcli made for this image (others, e.g. from a labeller, are left alone)."""
        return annotation_id.startswith(self.item.image_sha256[:20] + "-")

    def is_stale(self, existing: set[str]) -> bool:
        """Whether the server holds annotations of ours that these labels no longer make (labels
        changed, or another region format): then the input is replaced."""
        owned = {a for a in existing if self.owns(a)}
        if self.region_format == MASK:
            return bool(owned - set(self.annotation_ids))
        keys = set(self._concept_keys.values())
        return any(_ring_key(a) not in keys for a in owned)

    def is_complete(self, existing: set[str]) -> bool:
        """Whether every annotation this item needs is there. For polygons decided from the ids
        alone (each says `ring k of n`), so a re-run traces nothing for items already done."""
        if self.region_format == MASK:
            return set(self.annotation_ids) <= existing
        rings: dict[str, set[tuple[int, int]]] = {}
        for ann_id in existing:
            parsed = _ring_of(ann_id) if self.owns(ann_id) else None
            if parsed is not None:
                rings.setdefault(parsed[0], set()).add(parsed[1:])
        for key in self._concept_keys.values():
            found = rings.get(key, set())
            counts = {n for _, n in found}
            if len(counts) != 1 or {k for k, _ in found} != set(range(counts.pop())):
                return False
        return True

    def input_proto(self) -> R.Input:
        data = R.Data(image=R.Image(base64=image_bytes(self.item.image_path)))  # never a FIFO (core/regular)
        data.metadata.update({"filename": self.item.name, "segcli_sha256": self.item.image_sha256})
        return R.Input(id=self.id, data=data, dataset_ids=[self.dataset_id])

    def annotations(self, skip: AbstractSet[str] = frozenset()) -> list[R.Annotation]:
        """The item's annotations but those whose id is in `skip` (already on the server): one
        pass computes the ids and the payloads, so polygons are traced once."""
        out = []
        ids: dict[str, str] = {}
        labelmap = self._labelmap()
        h, w = labelmap.shape  # the image as displayed: polygons are normalised to it
        for ann_id, concept, payload in self._regions(labelmap):
            ids[ann_id] = concept
            if ann_id in skip:
                continue
            ann = R.Annotation(id=ann_id, input_id=self.id)
            region = ann.data.regions.add()
            if self.region_format == MASK:
                region.region_info.mask.image.base64 = mask_png(payload)
            else:
                for x, y in payload.tolist():  # as the SDK sends them: normalised, VISIBLE
                    region.region_info.polygon.points.add(row=y / h, col=x / w, visibility=R.Point.VISIBLE)
            region.data.concepts.add(id=concept, name=concept, value=1.0)
            out.append(ann)
        self.__dict__.setdefault("annotation_ids", ids)  # every id was just computed: keep them
        return out

    def _labelmap(self) -> np.ndarray:
        with Image.open(io.BytesIO(self.item.labelmap_bytes())) as im:
            return np.asarray(im)

    def _pixels(self, labelmap: np.ndarray, concept: str) -> np.ndarray:
        return np.isin(labelmap, [v for v, c in self.item.labels.items() if c == concept])

    def _concept_key(self, concept: str, pixels: np.ndarray) -> str:
        # Named by the concept's pixels, not by how the PNG was encoded: a label map that comes
        # back from an export (or another tool) with the same pixels changes nothing.
        pixels_sha = hashlib.sha256(np.asarray(pixels.shape).tobytes() + np.packbits(pixels).tobytes()).hexdigest()
        return _sha(self.dataset_id, concept, pixels_sha, POLYGON)[:16]

    def _regions(self, labelmap: Optional[np.ndarray]) -> Iterator[tuple[str, str, Optional[np.ndarray]]]:
        """(annotation id, concept, mask or ring) in a stable order: concepts by name, then rings
        in tracing order. Without `labelmap` only the ids are wanted: region masks need no
        pixels for them, polygons do (one id a ring), so the label map is read then."""
        prefix = self.item.image_sha256[:20]
        concepts = sorted(set(self.item.labels.values()))
        if self.region_format == MASK and labelmap is None:
            for concept in concepts:
                yield f"{prefix}-{_sha(self.dataset_id, concept, self.labelmap_sha)[:16]}", concept, None
            return
        if labelmap is None:
            labelmap = self._labelmap()
        for concept in concepts:
            pixels = self._pixels(labelmap, concept)
            if self.region_format == MASK:
                yield f"{prefix}-{_sha(self.dataset_id, concept, self.labelmap_sha)[:16]}", concept, pixels
                continue
            key = self._concept_key(concept, pixels)
            rings = mask_to_rings(pixels)
            for k, ring in enumerate(rings):  # "ring k of n": the survey checks completeness from ids
                yield f"{prefix}-{key}-{k}-{len(rings)}", concept, ring


def _ring_of(annotation_id: str) -> Optional[tuple[str, int, int]]:
    """(concept key, k, n) of a polygon id `{image}-{key}-{k}-{n}`; None for any other id."""
    parts = annotation_id.split("-")
    if len(parts) != 4 or not (parts[2].isdigit() and parts[3].isdigit()):
        return None
    return parts[1], int(parts[2]), int(parts[3])


def _ring_key(annotation_id: str) -> Optional[str]:
    parsed = _ring_of(annotation_id)
    return parsed[0] if parsed else None


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
    """Normalised {row, col} polygon points (as the SDK uploads them) -> bool HxW, rasterised
    the COCO way (pycocotools; pixel (x, y) is the square [x, x+1) x [y, y+1)), as the SDK's
    COCO loaders mean them. PIL's polygon fill would add a pixel along the right and bottom
    edges (2 to 11% of a region's pixels wrong on the shapes and COCO samples)."""
    return rasterize([[v for p in points for v in (p.col * w, p.row * h)]], h, w)


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
