"""Samples -> resized arrays (decoded once, validated, cached) -> augmented batches off the main thread.

Geometry (core/geometry.py): one value S of image_size resizes the short side to S keeping
aspect, and training takes a random S x S crop so a batch stacks; validation and predict use the
whole resized image. Two values [h, w] resize to exactly h x w. resize_mode=native keeps each
image at its own size (times native_scale) and trains on random crop_size crops, each rescaled
by a random factor in scale_jitter, half of them centred on a pixel of the rarest class the
image holds (small objects would otherwise be in few crops); an epoch takes as many crops of an
image as its area holds crops. Masks are resized nearest-neighbour.
"""

from __future__ import annotations

import io
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Iterator

import numpy as np
from PIL import Image

from segcli.core.classes import IGNORE_INDEX
from segcli.core.errors import InvalidInputError
from segcli.core.geometry import Geometry
from segcli.core.ordered import ordered_map
from segcli.datasets.imagefile import BadFile, open_rgb

MEAN = np.array([0.485, 0.456, 0.406], np.float32)  # ImageNet, as SegFormer's processor uses
STD = np.array([0.229, 0.224, 0.225], np.float32)
# Decoded, resized samples are kept in memory up to this budget; beyond it they are re-read.
CACHE_BYTES = int(os.environ.get("SEGCLI_ENGINE_CACHE_MB", "2048")) * 2**20


def resize_image(img: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    if img.shape[:2] == hw:
        return img
    return np.asarray(Image.fromarray(img).resize((hw[1], hw[0]), Image.BILINEAR))


def _read(stored, what: str) -> bytes:
    """The bytes of a sample's stored file (a Path or a packed blob); ValueError if unreadable
    (missing, or a damaged pack: its reason kept)."""
    try:
        return stored.read_bytes()
    except OSError as e:
        raise ValueError(f"unreadable {what}: cannot read {stored}: {e.strerror or e}") from None


def load_sample(sample, geometry: Geometry) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
    """(image HxWx3 uint8, class mask HxW uint8) at model resolution, and the image's own
    (h, w); ValueError(reason) if unusable."""
    try:  # as displayed (EXIF orientation, 16-bit scaled), exactly as upload validated it
        img = open_rgb(_read(sample.image, "image"), sample.image.name)
    except BadFile as e:  # a ValueError: its reason says what is wrong
        raise ValueError(f"unreadable image: {e.reason}") from None
    labelmap = _read(sample.labelmap, "label map")
    try:
        with Image.open(io.BytesIO(labelmap)) as lm:
            if lm.mode not in ("L", "P", "1"):
                raise ValueError(f"label map mode {lm.mode}, expected single-channel 8-bit")
            mask = np.asarray(lm, dtype=np.uint8)
    except ValueError:
        raise
    except Exception as e:
        raise ValueError(f"unreadable label map ({type(e).__name__})") from None
    if mask.shape != img.shape[:2]:
        raise ValueError(f"label map {mask.shape[1]}x{mask.shape[0]} != image {img.shape[1]}x{img.shape[0]}")
    lut = np.asarray(sample.lut, dtype=np.uint8)
    if lut.shape != (256,):
        raise ValueError("lut must have 256 entries")
    mask = lut[mask]
    if (mask == IGNORE_INDEX).all():
        raise ValueError("no labelled pixels (all ignore)")
    hw = geometry.model_hw(*img.shape[:2])
    if mask.shape != hw:
        mask = np.asarray(Image.fromarray(mask).resize((hw[1], hw[0]), Image.NEAREST))
    return resize_image(img, hw), mask, img.shape[:2]


# Per class and image, this many pixel positions are kept to centre crops on (native mode).
FOCUS_POINTS = 64


@dataclass
class SampleSet:
    """Usable samples; arrays cached in memory within CACHE_BYTES, else re-read on use.
    `counts[i]`: sample i's pixels per value (256 bins: classes, 255 = ignore);
    `points[i]`: {class: int64 flat positions} to centre crops on; `sizes[i]`: its original
    (h, w) before any resize."""

    samples: list
    cache: list
    geometry: Geometry
    shapes: list[tuple[int, int]]
    counts: list = None
    points: list = None
    sizes: list = None

    def __len__(self) -> int:
        return len(self.samples)

    def get(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        if self.cache[i] is not None:
            return self.cache[i]
        return load_sample(self.samples[i], self.geometry)[:2]

    def class_pixels(self, idx: list[int], num_classes: int) -> np.ndarray:
        """Pixels of each class over the samples `idx` (ignore left out)."""
        total = np.zeros(256, np.int64)
        for i in idx:
            total += self.counts[i]
        return total[:num_classes]


def _facts(mask: np.ndarray, seed: int) -> tuple[np.ndarray, dict]:
    counts = np.bincount(mask.ravel(), minlength=256).astype(np.int64)
    rng = np.random.default_rng([seed, 11])
    points = {}
    for c in np.flatnonzero(counts[1:255]) + 1:
        where = np.flatnonzero(mask.ravel() == c)
        points[int(c)] = where if len(where) <= FOCUS_POINTS else rng.choice(where, FOCUS_POINTS, replace=False)
    return counts, points


def load_all(samples: list, geometry: Geometry, workers: int = 2):
    """Decode and check every sample once (2 threads: PIL releases the GIL).

    Returns (SampleSet of usable samples, [(image_path, reason)] skipped)."""

    def one(k_s):
        k, s = k_s
        try:
            img, mask, size = load_sample(s, geometry)
        except ValueError as e:
            return str(e)
        return img, mask, size, _facts(mask, k)

    with ThreadPoolExecutor(max(1, workers)) as ex:
        results = list(ex.map(one, enumerate(samples)))
    ok, cache, shapes, skipped, used = [], [], [], [], 0
    counts, points, sizes = [], [], []
    for s, r in zip(samples, results):
        if isinstance(r, str):
            skipped.append((str(s.image), r))
            continue
        img, mask, size, (c, pts) = r
        ok.append(s)
        shapes.append(mask.shape)
        counts.append(c)
        points.append(pts)
        sizes.append(size)
        used += img.nbytes + mask.nbytes
        cache.append((img, mask) if used <= CACHE_BYTES else None)
    return SampleSet(ok, cache, geometry, shapes, counts, points, sizes), skipped


def check_tolerance(total: int, skipped: list, tolerance_percent: float) -> None:
    share = 100.0 * len(skipped) / max(1, total)
    if total and len(skipped) == total:
        raise InvalidInputError(
            "no usable training inputs: every sample failed to load",
            hint="segcli dataset show (check the images and label maps)",
            details=[f"{p}: {r}" for p, r in skipped[:20]],
        )
    if share > tolerance_percent:
        raise InvalidInputError(
            f"{len(skipped)} of {total} inputs ({share:.1f}%) are unusable, above "
            f"invalid_data_tolerance_percent={tolerance_percent:g}",
            hint="fix or remove those inputs, or raise it: --set invalid_data_tolerance_percent=N",
            details=[f"{p}: {r}" for p, r in skipped[:20]],
        )


def augment(img: np.ndarray, mask: np.ndarray, crop: tuple[int, int], rng: np.random.Generator):
    """Random crop to `crop`, horizontal flip, brightness/contrast/saturation jitter.
    Light on purpose: mmseg's 0.5-2x random rescale cut held-out mIoU after 3 CPU minutes
    (0.35 -> 0.28 on the demo data), where runs are short. Returns (float32 HxWx3, uint8 mask)."""
    h, w = mask.shape
    y = int(rng.integers(0, h - crop[0] + 1)) if h > crop[0] else 0
    x = int(rng.integers(0, w - crop[1] + 1)) if w > crop[1] else 0
    return _photometric(img[y : y + crop[0], x : x + crop[1]], mask[y : y + crop[0], x : x + crop[1]], rng)


# Share of native-mode crops centred on a pixel of the rarest class their image holds.
FOCUS_SHARE = 0.5


def native_crop(
    img: np.ndarray,
    mask: np.ndarray,
    crop: tuple[int, int],
    rng: np.random.Generator,
    jitter: tuple[float, float] = (1.0, 1.0),
    points: dict | None = None,
    rarity: dict | None = None,
):
    """A crop_size crop of a native-resolution image: a window of crop / f pixels (f drawn
    log-uniformly from `jitter`) resized by f, padded to `crop` (image 0, mask ignore) where
    the image is smaller; with FOCUS_SHARE chance centred on one of `points` of the image's
    rarest class (`rarity`: class -> dataset-wide pixel share), else anywhere. Then as
    `augment`: flip and photometric jitter. Returns (float32 HxWx3, uint8 mask)."""
    h, w = mask.shape
    f = 1.0 if jitter[0] == jitter[1] == 1.0 else float(np.exp(rng.uniform(np.log(jitter[0]), np.log(jitter[1]))))
    rh, rw = min(h, max(1, round(crop[0] / f))), min(w, max(1, round(crop[1] / f)))
    if points and rng.random() < FOCUS_SHARE:
        cls = min(points, key=lambda c: ((rarity or {}).get(c, 0.0), c))
        cy, cx = divmod(int(points[cls][rng.integers(len(points[cls]))]), w)
        y = int(np.clip(cy - rh // 2 + rng.integers(-(rh // 4), rh // 4 + 1), 0, h - rh))
        x = int(np.clip(cx - rw // 2 + rng.integers(-(rw // 4), rw // 4 + 1), 0, w - rw))
    else:
        y, x = int(rng.integers(0, h - rh + 1)), int(rng.integers(0, w - rw + 1))
    img, mask = img[y : y + rh, x : x + rw], mask[y : y + rh, x : x + rw]
    if f != 1.0:  # to the crop size exactly, unless the image itself is smaller (then padded)
        th = crop[0] if rh < h else min(crop[0], max(1, round(rh * f)))
        tw = crop[1] if rw < w else min(crop[1], max(1, round(rw * f)))
        img = resize_image(img, (th, tw))
        mask = np.asarray(Image.fromarray(mask).resize((tw, th), Image.NEAREST))
    if img.shape[:2] != tuple(crop):
        pad_img = np.zeros((*crop, 3), np.uint8)
        pad_mask = np.full(crop, IGNORE_INDEX, np.uint8)
        pad_img[: img.shape[0], : img.shape[1]] = img
        pad_mask[: mask.shape[0], : mask.shape[1]] = mask
        img, mask = pad_img, pad_mask
    return _photometric(img, mask, rng)


def _photometric(img: np.ndarray, mask: np.ndarray, rng: np.random.Generator):
    if rng.random() < 0.5:
        img, mask = img[:, ::-1], mask[:, ::-1]
    b, c, s = rng.uniform(0.8, 1.2, size=3)
    f = img.astype(np.float32)
    mean = f.mean()
    gray = f.mean(axis=2, keepdims=True)
    f = ((gray + (f - gray) * s - mean) * c + mean) * b
    return np.clip(f, 0, 255), np.ascontiguousarray(mask)


def normalise(images, mean=MEAN, std=STD) -> np.ndarray:
    """uint8/float NxHxWx3 images (an array or a list) -> (rgb/255 - mean)/std, float32 NCHW."""
    mean, std = np.asarray(mean, np.float32), np.asarray(std, np.float32)
    x = (np.stack(images).astype(np.float32) / 255.0 - mean) / std
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))


def normalise_as(images, config: dict) -> np.ndarray:
    """normalise() with the mean and std a trained model's config recorded."""
    return normalise(images, config["normalisation"]["mean"], config["normalisation"]["std"])


def to_batch(images: list[np.ndarray], masks: list[np.ndarray]):
    """uint8/float HxWx3 images -> normalised float32 NCHW tensor; masks -> int64 NHW tensor."""
    import torch

    return torch.from_numpy(normalise(images)), torch.from_numpy(np.stack(masks).astype(np.int64))


def epoch_items(data: SampleSet, idx: list[int]) -> list[int]:
    """The samples an epoch crops from, each once; at native resolution each as many times as
    its area holds crops (an epoch then sees about every pixel once, whatever the sizes)."""
    if data.geometry.mode != "native":
        return list(idx)
    area = data.geometry.crop[0] * data.geometry.crop[1]
    return [i for i in idx for _ in range(max(1, round(data.shapes[i][0] * data.shapes[i][1] / area)))]


def train_batches(
    data: SampleSet,
    idx: list[int],
    batch_size: int,
    seed: int,
    epoch: int,
    workers: int,
    jitter: tuple[float, float] = (1.0, 1.0),
) -> Iterator:
    """This epoch's shuffled, augmented batches. Every batch has its own RNG from
    (seed, epoch, batch): the same seed gives the same batches whatever the thread timing."""
    order = np.random.default_rng([seed, epoch]).permutation(epoch_items(data, idx)).tolist()
    chunks = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    crop = data.geometry.crop
    native = data.geometry.mode == "native"
    rarity = _rarity(data, idx) if native else None

    def make(b: int):
        rng = np.random.default_rng([seed, epoch, b])
        if native:
            pairs = [native_crop(*data.get(i), crop, rng, jitter, data.points[i], rarity) for i in chunks[b]]
        else:
            pairs = [augment(*data.get(i), crop, rng) for i in chunks[b]]
        return to_batch([p[0] for p in pairs], [p[1] for p in pairs])

    return ordered_map(make, len(chunks), workers)


def _rarity(data: SampleSet, idx: list[int]) -> dict[int, float]:
    pixels = data.class_pixels(idx, 255).astype(np.float64)
    share = pixels / max(1.0, pixels.sum())
    return {c: float(share[c]) for c in range(1, 255) if pixels[c]}


def steps_per_epoch(data: SampleSet, idx: list[int], batch_size: int) -> int:
    return -(-len(epoch_items(data, idx)) // batch_size)


def eval_batches(data: SampleSet, idx: list[int], batch_size: int) -> Iterator:
    """Whole resized images, batched among equal shapes (no padding, so no border effects)."""
    groups: dict = {}
    for i in idx:
        groups.setdefault(data.shapes[i], []).append(i)
    chunks = [g[j : j + batch_size] for g in groups.values() for j in range(0, len(g), batch_size)]

    def make(b: int):
        pairs = [data.get(i) for i in chunks[b]]
        return to_batch([p[0] for p in pairs], [p[1] for p in pairs])

    return ordered_map(make, len(chunks), 1)
