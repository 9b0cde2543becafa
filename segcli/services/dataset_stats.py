"""Per-concept statistics of a dataset, counted on the label maps training reads.

Definitions (README "JSON shapes", `dataset show`):
- `images`: the number of the dataset's images in whose label map the concept has at least one
  pixel. A concept named by an item but with no pixel left in its label map (a COCO annotation
  wholly covered by a later one) counts 0 there: training never sees it.
- `pixel_fraction`: the concept's pixels / all pixels of all the dataset's images (sum of
  width x height). With `background_fraction` (value 0, and values no concept names, which
  training also reads as background) and `ignore_fraction` (value 255, skipped by training and
  metrics) the fractions partition the pixels: they sum to 1.
Counted through `Backend.iter_dataset_items`, so both backends give the same numbers for the
same data (Clarifai stores no ignore pixels: its `ignore_fraction` is always 0).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Optional

from segcli.backends.base import Backend, DatasetItem
from segcli.core.classes import IGNORE_INDEX
from segcli.render.progress import Counter

# A concept in fewer images than this, or in under RARE_SHARE of them, gets a warning: a
# model cannot learn it from so few examples, and a validation split may hold none of it.
RARE_IMAGES = 5
RARE_SHARE = 0.01


@dataclass
class DatasetStats:
    images: int = 0
    pixels: int = 0
    ignore_pixels: int = 0
    concept_images: dict[str, int] = field(default_factory=dict)
    concept_pixels: dict[str, int] = field(default_factory=dict)
    sizes: list = field(default_factory=list)  # (h, w) of each image

    def add(self, labelmap, labels: dict[int, str]) -> None:
        """Count one item: `labelmap` HxW uint8, `labels` its value -> concept."""
        import numpy as np

        counts = np.bincount(np.asarray(labelmap, dtype=np.uint8).ravel(), minlength=256)
        self.images += 1
        self.pixels += int(labelmap.size)
        self.sizes.append(tuple(int(v) for v in labelmap.shape[:2]))
        self.ignore_pixels += int(counts[IGNORE_INDEX])
        here: dict[str, int] = {}
        for value, concept in labels.items():
            if 0 < int(value) < IGNORE_INDEX:  # 0 and 255 are never a concept's pixels
                here[concept] = here.get(concept, 0) + int(counts[int(value)])
        for concept, n in here.items():
            self.concept_pixels[concept] = self.concept_pixels.get(concept, 0) + n
            self.concept_images[concept] = self.concept_images.get(concept, 0) + (n > 0)

    def _fraction(self, n: int) -> float:
        return n / self.pixels if self.pixels else 0.0

    def concepts(self) -> list[dict[str, Any]]:
        """One entry per concept the items name, by id."""
        return [
            {"id": c, "images": self.concept_images[c], "pixel_fraction": self._fraction(self.concept_pixels[c])}
            for c in sorted(self.concept_pixels)
        ]

    def to_dict(self) -> dict[str, Any]:
        labelled = sum(self.concept_pixels.values())
        return {
            "concepts": self.concepts(),
            "background_fraction": self._fraction(self.pixels - labelled - self.ignore_pixels),
            "ignore_fraction": self._fraction(self.ignore_pixels),
            "pixels": self.pixels,
        }

    def rare_limit(self) -> int:
        """A concept in fewer images than this is too rare to learn."""
        return max(RARE_IMAGES, math.ceil(RARE_SHARE * self.images))

    def rare(self) -> list[tuple[str, int]]:
        """(concept, images) for the concepts in too few images, fewest first."""
        limit = self.rare_limit()
        return sorted(((c, n) for c, n in self.concept_images.items() if n < limit), key=lambda cn: (cn[1], cn[0]))


def compute(items: Iterable[DatasetItem], on_item: Optional[Callable[[], None]] = None) -> DatasetStats:
    stats = DatasetStats()
    for item in items:
        stats.add(item.labelmap, item.labels)
        if on_item is not None:
            on_item()
    return stats


def of_dataset(backend: Backend, app_id: str, dataset_id: str, total: int, progress_mode: str) -> DatasetStats:
    """Statistics of the dataset as it is now (`total` = its input count, for the progress bar)."""
    with Counter("counting labels", total, progress_mode) as counter:
        return compute(backend.iter_dataset_items(app_id, dataset_id), counter.advance)


def size_hint(stats: DatasetStats, backend: Backend) -> str | None:
    """The one-line hint `train` also gives when the images are much larger than the default
    template's training size (local backend: its templates have resize_mode=native)."""
    if not backend.accepts_local_params:
        return None
    from segcli.core.geometry import Geometry, shrink_hint
    from segcli.core.templates import find_template, local_templates

    defaults = find_template(local_templates(), backend.default_template).defaults()
    return shrink_hint(Geometry.from_params(defaults), stats.sizes)


def rare_warning(stats: DatasetStats) -> str | None:
    """One warning naming every concept in too few images (None when there is none)."""
    rare = stats.rare()
    if not rare:
        return None
    them = "it" if len(rare) == 1 else "them"
    advice = (
        f"too few to learn {them} well: add images with {them} (at least {RARE_IMAGES}, and "
        f"{RARE_SHARE:.0%} of the dataset) or leave {them} out with train --concepts"
    )
    if len(rare) == 1:
        concept, n = rare[0]
        return f"concept '{concept}' is in {n} of {stats.images} images: {advice}"
    listed = ", ".join(f"{c} ({n})" for c, n in rare)
    return (
        f"{len(rare)} of {len(stats.concept_images)} concepts are in fewer than {stats.rare_limit()} images "
        f"(of {stats.images}): {listed}; {advice}"
    )
