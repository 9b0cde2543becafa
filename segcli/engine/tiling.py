"""Predicting images of any size in bounded memory: sliding windows and banded upsampling.

numpy only (no torch, no onnxruntime): both predict engines and training's validation hand in
the model as a function and get back the label map and the per-class scores:

    infer(windows: uint8 [N, h, w, 3], out_hw: (oh, ow)) -> (logits float32 [N, C, oh, ow],
                                                           raw float32 [N, C, rh, rw])

`logits` are the model's raw logits (`raw`, 1/4 of the window for the SegFormer-style heads)
resized bilinearly (half-pixel centres) once, straight to `out_hw`.

Two paths, both emitting the output in bands of rows, so that no class x H x W float array of
the whole image ever exists (a 100-megapixel photo with 8 classes would need 3.2 GB for one):

- `blend_windows`: windows of a TilePlan slide over the model-input image row by row; each
  window's logits are resized to its footprint on the ORIGINAL image and added, weighted by
  `blend_weights`, into a band of rows; once no later window row reaches a row, its label
  (argmax) and winning probability are final and the band moves on.
- `upsample_bands`: the whole model-input image in one run, its raw logits resized to the
  original size one band of rows at a time (numpy's bilinear, the same formula as torch's
  align_corners=False), for whole-image predictions whose output would be too large to resize
  in one piece.

Both return the label map (uint8 H x W, the only full-size array) and per-class scores (mean
winning probability over the pixels of each class), accumulated band by band.
"""

from __future__ import annotations

from typing import Callable, Iterator, Optional

import numpy as np

Infer = Callable[[np.ndarray, tuple[int, int]], tuple[np.ndarray, np.ndarray]]
# Values (classes x rows x columns) of one band of upsample_bands: 8 MB of float32, and about
# four times that in temporaries while it is computed.
BAND_VALUES = 2 * 2**20


def starts(length: int, window: int, stride: int) -> list[int]:
    """Window offsets covering 0..length: every `stride`, the last one flush with the end."""
    if length <= window:
        return [0]
    out = list(range(0, length - window, stride))
    out.append(length - window)
    return out


def to_output(pos: int, model_len: int, out_len: int) -> int:
    """A model-input coordinate (a window edge) on the original image, rounded half up; exact
    at 0 and at model_len, and the identity when no resize happened."""
    if model_len == out_len:
        return pos
    return (2 * pos * out_len + model_len) // (2 * model_len)


def ramp(length: int, margin: int) -> np.ndarray:
    """Weights along one side of a window: rising linearly over `margin` pixels at each end
    (never 0), 1 in between. margin 0 = all ones (a plain average of the windows)."""
    if margin <= 0:
        return np.ones(length, np.float32)
    i = np.arange(length, dtype=np.float32)
    return np.minimum(1.0, np.minimum(i + 1, length - i) / np.float32(margin + 1)).astype(np.float32)


def blend_weights(fh: int, fw: int, margin_h: int, margin_w: int) -> np.ndarray:
    """fh x fw weights of a window's logits where windows overlap by margin_h/margin_w pixels:
    a window's centre counts most and its edges, where its view is cut off, least."""
    return np.outer(ramp(fh, margin_h), ramp(fw, margin_w))


class _Scores:
    """Per-class counts and sums of the winning probability, band by band."""

    def __init__(self, num_classes: int) -> None:
        self.count = np.zeros(num_classes, np.float64)
        self.total = np.zeros(num_classes, np.float64)

    def add(self, label: np.ndarray, prob: np.ndarray) -> None:
        n = len(self.count)
        self.count += np.bincount(label.ravel(), minlength=n)[:n]
        self.total += np.bincount(label.ravel(), weights=prob.ravel(), minlength=n)[:n]

    def result(self) -> np.ndarray:
        return np.where(self.count > 0, self.total / np.maximum(self.count, 1), 0.0).astype(np.float32)


def finish_band(acc: np.ndarray, wsum: Optional[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(label uint8, winning softmax probability float32) of blended logits acc [C, n, W]
    (divided by wsum [n, W] when given). argmax needs no division: wsum > 0 everywhere."""
    # argmax as a running maximum over the class planes: numpy's argmax(0) copies the whole
    # band to put the class axis last; `>` keeps the first of equal maxima, as argmax does.
    label = np.zeros(acc.shape[1:], np.uint8)
    top = acc[0].copy()
    for c in range(1, acc.shape[0]):
        better = acc[c] > top
        label[better] = c
        np.maximum(top, acc[c], out=top)
    total = np.zeros(top.shape, np.float32)
    for c in range(acc.shape[0]):  # one class plane at a time: no second [C, n, W] array
        d = acc[c] - top
        if wsum is not None:
            d /= wsum
        total += np.exp(d, out=d)
    return label, np.reciprocal(total, out=total)


def blend_windows(
    image: np.ndarray,
    out_hw: tuple[int, int],
    window: tuple[int, int],
    stride: tuple[int, int],
    num_classes: int,
    infer: Infer,
    batch: int = 4,
) -> tuple[np.ndarray, np.ndarray]:
    """Sliding-window prediction of a model-input image (uint8 Hm x Wm x 3) whose original
    size is out_hw: (label map uint8 H x W, class scores float32 [C])."""
    hm, wm = image.shape[:2]
    h, w = out_hw
    wh, ww = min(window[0], hm), min(window[1], wm)
    ys, xs = starts(hm, wh, stride[0]), starts(wm, ww, stride[1])
    margin_h = to_output(max(0, wh - stride[0]), hm, h) if len(ys) > 1 else 0
    margin_w = to_output(max(0, ww - stride[1]), wm, w) if len(xs) > 1 else 0
    label = np.empty((h, w), np.uint8)
    scores = _Scores(num_classes)
    cols = [(x, to_output(x, wm, w), to_output(x + ww, wm, w)) for x in xs]
    carry: Optional[tuple[np.ndarray, np.ndarray]] = None
    for r, y in enumerate(ys):
        oy0, oy1 = to_output(y, hm, h), to_output(y + wh, hm, h)
        acc = np.zeros((num_classes, oy1 - oy0, w), np.float32)
        wsum = np.zeros((oy1 - oy0, w), np.float32)
        if carry is not None:
            acc[:, : carry[1].shape[0]] = carry[0]
            wsum[: carry[1].shape[0]] = carry[1]
        for group in _by_width(cols, batch):
            fw = group[0][2] - group[0][1]
            stack = np.stack([image[y : y + wh, x : x + ww] for x, _, _ in group])
            logits, _ = infer(stack, (oy1 - oy0, fw))
            weight = blend_weights(oy1 - oy0, fw, margin_h, margin_w)
            for j, (_, ox0, ox1) in enumerate(group):
                acc[:, :, ox0:ox1] += logits[j] * weight
                wsum[:, ox0:ox1] += weight
        done = (to_output(ys[r + 1], hm, h) if r + 1 < len(ys) else oy1) - oy0
        band_label, band_prob = finish_band(acc[:, :done], wsum[:done])
        label[oy0 : oy0 + done] = band_label
        scores.add(band_label, band_prob)
        carry = (acc[:, done:].copy(), wsum[done:].copy()) if done < oy1 - oy0 else None
        del acc, wsum  # before the next band's allocation: one band in memory, not two
    return label, scores.result()


def _by_width(cols: list[tuple[int, int, int]], batch: int) -> Iterator[list[tuple[int, int, int]]]:
    """A window row's columns in runs of the same footprint width, `batch` at most."""
    run: list[tuple[int, int, int]] = []
    for col in cols:
        if run and (len(run) == batch or col[2] - col[1] != run[0][2] - run[0][1]):
            yield run
            run = []
        run.append(col)
    if run:
        yield run


def _axis(out_len: int, in_len: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Source indices and weights of a half-pixel bilinear resize (torch's
    align_corners=False): output i reads (i + 0.5) * in/out - 0.5, clamped at 0."""
    src = (np.arange(out_len, dtype=np.float64) + 0.5) * (in_len / out_len) - 0.5
    src = np.maximum(src, 0.0)
    i0 = np.minimum(np.floor(src).astype(np.int64), in_len - 1)
    i1 = np.minimum(i0 + 1, in_len - 1)
    frac = (src - i0).astype(np.float32)
    return i0, i1, frac


def upsample_bands(
    raw: np.ndarray, out_hw: tuple[int, int], rows: Optional[int] = None
) -> Iterator[tuple[int, np.ndarray]]:
    """(first row, logits [C, n, W]) bands of raw [C, h, w] resized to out_hw. Each band's
    buffers are reused for the next: use (or copy) a band before asking for the next one."""
    c, h, w = raw.shape
    oh, ow = out_hw
    rows = min(oh, rows or max(1, BAND_VALUES // max(1, c * ow)))
    y0, y1, fy = _axis(oh, h)
    x0, x1, fx = _axis(ow, w)
    buffers = None
    for a in range(0, oh, rows):
        n = min(rows, oh - a)
        if buffers is None or n != rows:
            buffers = (
                np.empty((c, n, w), np.float32),
                np.empty((c, n, w), np.float32),
                np.empty((c, n, ow), np.float32),
                np.empty((c, n, ow), np.float32),
            )
        vert, below, band, right = buffers
        f = fy[a : a + n, None]
        np.take(raw, y0[a : a + n], axis=1, out=vert)  # rows: a * (1 - f) + b * f
        vert *= 1 - f
        np.take(raw, y1[a : a + n], axis=1, out=below)
        below *= f
        vert += below
        np.take(vert, x0, axis=2, out=band)  # then the same along the columns
        band *= 1 - fx
        np.take(vert, x1, axis=2, out=right)
        right *= fx
        band += right
        yield a, band


def upsample_labels(raw: np.ndarray, out_hw: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """(label map, class scores) of raw logits [C, h, w] brought to out_hw band by band."""
    label = np.empty(out_hw, np.uint8)
    scores = _Scores(raw.shape[0])
    for a, band in upsample_bands(raw, out_hw):
        band_label, band_prob = finish_band(band, None)
        label[a : a + band.shape[1]] = band_label
        scores.add(band_label, band_prob)
    return label, scores.result()
