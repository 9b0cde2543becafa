"""Tiny generated data for tests and benchmarks: PNG images and the SDK's dataloader.

The dataloader is what `Dataset.upload_dataset` needs (a ClarifaiDataLoader whose items are
VisualSegmentationFeatures); the clarifai import happens only when it is built.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

TRIANGLE = [[0.1, 0.1], [0.6, 0.1], [0.35, 0.6]]  # normalised [x, y] points, as the SDK wants
SQUARE = [[0.5, 0.5], [0.9, 0.5], [0.9, 0.9], [0.5, 0.9]]


def gradient_png(seed: int = 0, width: int = 32, height: int = 24) -> bytes:
    """A deterministic RGB PNG with a diagonal brightness ramp (every grey band present)."""
    ramp = np.add.outer(np.arange(height), np.arange(width)) * (3 + seed % 7) + seed
    grey = (ramp % 256).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(np.stack([grey, grey[::-1], grey], axis=-1)).save(buf, format="PNG")
    return buf.getvalue()


@dataclass
class Item:
    id: str
    image_bytes: bytes
    labels: list[str] = field(default_factory=lambda: ["cat", "dog"])
    polygons: list = field(default_factory=lambda: [TRIANGLE, SQUARE])


def items(n: int, width: int = 32, height: int = 24) -> list[Item]:
    return [Item(id=str(i), image_bytes=gradient_png(i, width, height)) for i in range(n)]


def sdk_loader(data: list[Item]):
    """A clarifai ClarifaiDataLoader over `data` (task visual_segmentation). Input ids
    become f"{dataset_id}-{item.id}", as the SDK builds them."""
    from clarifai.datasets.upload.base import ClarifaiDataLoader
    from clarifai.datasets.upload.features import VisualSegmentationFeatures

    class Loader(ClarifaiDataLoader):
        task = "visual_segmentation"

        def load_data(self) -> None:
            pass

        def __len__(self) -> int:
            return len(data)

        def __getitem__(self, index: int):
            item = data[index]
            return VisualSegmentationFeatures(
                image_path=f"{item.id}.png",
                labels=item.labels,
                polygons=item.polygons,
                id=item.id,
                image_bytes=item.image_bytes,
            )

    return Loader()
