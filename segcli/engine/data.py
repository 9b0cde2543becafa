"""Samples -> resized arrays (decoded once, validated, cached) -> augmented batches off the main thread.

Geometry (Clarifai's image_size): one value S resizes the short side to S keeping aspect; training
then takes a random S x S crop so a batch stacks; validation and predict use the whole resized
image. Two values [h, w] resize to exactly h x w. Masks are resized nearest-neighbour.
"""
from __future__ import annotations

import io
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Iterator

import numpy as np
from PIL import Image

from segcli.core.errors import InvalidInputError
from segcli.core.ordered import ordered_map
from segcli.datasets.imagefile import BadFile, open_rgb

IGNORE = 255
MEAN = np.array([0.485, 0.456, 0.406], np.float32)   # ImageNet, as SegFormer's processor uses
STD = np.array([0.229, 0.224, 0.225], np.float32)
# Decoded, resized samples are kept in memory up to this budget; beyond it they are re-read.
CACHE_BYTES = int(os.environ.get("SEGCLI_ENGINE_CACHE_MB", "2048")) * 2**20


def resized_hw(h: int, w: int, image_size: tuple[int, ...]) -> tuple[int, int]:
    if len(image_size) == 2:
        return image_size[0], image_size[1]
    s = image_size[0] / min(h, w)
    return max(1, round(h * s)), max(1, round(w * s))


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


def load_sample(sample, image_size: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """(image HxWx3 uint8, class mask HxW uint8) at training size; ValueError(reason) if unusable."""
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
        raise ValueError(f"label map {mask.shape[1]}x{mask.shape[0]} != image "
                         f"{img.shape[1]}x{img.shape[0]}")
    lut = np.asarray(sample.lut, dtype=np.uint8)
    if lut.shape != (256,):
        raise ValueError("lut must have 256 entries")
    mask = lut[mask]
    if (mask == IGNORE).all():
        raise ValueError("no labelled pixels (all ignore)")
    hw = resized_hw(*img.shape[:2], image_size)
    if mask.shape != hw:
        mask = np.asarray(Image.fromarray(mask).resize((hw[1], hw[0]), Image.NEAREST))
    return resize_image(img, hw), mask


@dataclass
class SampleSet:
    """Usable samples; arrays cached in memory within CACHE_BYTES, else re-read on use."""
    samples: list
    cache: list
    image_size: tuple[int, ...]
    shapes: list[tuple[int, int]]

    def __len__(self) -> int:
        return len(self.samples)

    def get(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        if self.cache[i] is not None:
            return self.cache[i]
        return load_sample(self.samples[i], self.image_size)


def load_all(samples: list, image_size: tuple[int, ...], workers: int = 2):
    """Decode and check every sample once (2 threads: PIL releases the GIL).

    Returns (SampleSet of usable samples, [(image_path, reason)] skipped)."""
    def one(s):
        try:
            return load_sample(s, image_size)
        except ValueError as e:
            return str(e)
    with ThreadPoolExecutor(max(1, workers)) as ex:
        results = list(ex.map(one, samples))
    ok, cache, shapes, skipped, used = [], [], [], [], 0
    for s, r in zip(samples, results):
        if isinstance(r, str):
            skipped.append((str(s.image), r))
            continue
        ok.append(s)
        shapes.append(r[1].shape)
        used += r[0].nbytes + r[1].nbytes
        cache.append(r if used <= CACHE_BYTES else None)
    return SampleSet(ok, cache, image_size, shapes), skipped


def check_tolerance(total: int, skipped: list, tolerance_percent: float) -> None:
    share = 100.0 * len(skipped) / max(1, total)
    if total and len(skipped) == total:
        raise InvalidInputError("no usable training inputs: every sample failed to load",
                                hint="segcli dataset show (check the images and label maps)",
                                details=[f"{p}: {r}" for p, r in skipped[:20]])
    if share > tolerance_percent:
        raise InvalidInputError(
            f"{len(skipped)} of {total} inputs ({share:.1f}%) are unusable, above "
            f"invalid_data_tolerance_percent={tolerance_percent:g}",
            hint="fix or remove those inputs, or raise it: --set invalid_data_tolerance_percent=N",
            details=[f"{p}: {r}" for p, r in skipped[:20]])


def holdout(n: int, val_percent: float, seed: int) -> tuple[list[int], list[int]]:
    """Deterministic (train, val) index split; at least one sample stays in train."""
    k = min(n - 1, max(1, round(n * val_percent / 100))) if val_percent > 0 and n >= 2 else 0
    perm = np.random.default_rng([seed, 7]).permutation(n).tolist()
    return sorted(perm[k:]), sorted(perm[:k])


def augment(img: np.ndarray, mask: np.ndarray, crop: tuple[int, int], rng: np.random.Generator):
    """Random crop to `crop`, horizontal flip, brightness/contrast/saturation jitter.
    Light on purpose: mmseg's 0.5-2x random rescale cut held-out mIoU after 3 CPU minutes
    (0.35 -> 0.28 on the demo data), where runs are short. Returns (float32 HxWx3, uint8 mask)."""
    h, w = mask.shape
    y = int(rng.integers(0, h - crop[0] + 1)) if h > crop[0] else 0
    x = int(rng.integers(0, w - crop[1] + 1)) if w > crop[1] else 0
    img, mask = img[y:y + crop[0], x:x + crop[1]], mask[y:y + crop[0], x:x + crop[1]]
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


def crop_size(image_size: tuple[int, ...]) -> tuple[int, int]:
    return (image_size[0], image_size[0]) if len(image_size) == 1 else tuple(image_size)


def train_batches(data: SampleSet, idx: list[int], batch_size: int, seed: int, epoch: int,
                  workers: int) -> Iterator:
    """This epoch's shuffled, augmented batches. Every batch has its own RNG from
    (seed, epoch, batch): the same seed gives the same batches whatever the thread timing."""
    order = np.random.default_rng([seed, epoch]).permutation(idx).tolist()
    chunks = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    crop = crop_size(data.image_size)

    def make(b: int):
        rng = np.random.default_rng([seed, epoch, b])
        pairs = [augment(*data.get(i), crop, rng) for i in chunks[b]]
        return to_batch([p[0] for p in pairs], [p[1] for p in pairs])
    return ordered_map(make, len(chunks), workers)


def eval_batches(data: SampleSet, idx: list[int], batch_size: int) -> Iterator:
    """Whole resized images, batched among equal shapes (no padding, so no border effects)."""
    groups: dict = {}
    for i in idx:
        groups.setdefault(data.shapes[i], []).append(i)
    chunks = [g[j:j + batch_size] for g in groups.values() for j in range(0, len(g), batch_size)]

    def make(b: int):
        pairs = [data.get(i) for i in chunks[b]]
        return to_batch([p[0] for p in pairs], [p[1] for p in pairs])
    return ordered_map(make, len(chunks), 1)
