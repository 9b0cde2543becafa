"""A reference client for `segcli model export --format onnx` files: segcli's masks, from the
file alone, with numpy and onnxruntime (and Pillow to read the photo).

    python docs/onnx_client.py MODEL.onnx PHOTO.jpg MASK.png [--tile auto|off|SIZE] [--overlap F]
                               [--threshold 0.05]

It reproduces `segcli predict --threshold T --tile ...` pixel for pixel at any image size, with
or without sliding windows (tests/test_onnx_client.py checks it), by following what the file's
metadata says:

- segcli.classes: index i of the logits is class i (0 = background).
- segcli.mean / segcli.std: pixel_values = (rgb / 255 - mean) / std, float32, NCHW.
- segcli.geometry: how the photo reaches the model and how logits come back:
    mode short_side (size [S]): resize (Pillow, bilinear) so the short side is S;
    mode exact (size [H, W]): resize to H x W;
    mode native: keep the photo's pixels, times `scale` (rounded half to even, as Python);
    window / overlap: sliding windows at native mode (see `plan`);
    logits: the model's raw_logits are resized bilinearly ONCE, straight to the output area
    (the whole photo, or a window's footprint on it), with the graph in segcli.upsample_onnx;
    whole_max_values: a whole-photo output with more values (classes x H x W) is resized in
    bands of rows with numpy (`upsample_bands`) instead, as segcli does to bound memory;
    blend: "ramp": overlapping windows' logits are averaged with weights that rise linearly
    over the overlap from each window's edge (`ramp`).
- The label is the argmax; a class whose mean winning softmax probability over its pixels is
  below the threshold becomes background (segcli's --threshold, default 0.05).

Stand-alone on purpose: copy it. The numpy parts are the same arithmetic as segcli's
engine/tiling.py (float32, same order), so the results are identical, not merely close.
"""

from __future__ import annotations

import argparse
import base64
import json

import numpy as np
import onnxruntime as ort
from PIL import Image, ImageOps

BAND_VALUES = 2 * 2**20


class Client:
    def __init__(self, path: str) -> None:
        self.session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        meta = self.session.get_modelmeta().custom_metadata_map
        self.classes = json.loads(meta["segcli.classes"])
        self.mean = np.asarray(json.loads(meta["segcli.mean"]), np.float32)
        self.std = np.asarray(json.loads(meta["segcli.std"]), np.float32)
        self.geometry = json.loads(meta["segcli.geometry"])
        self.upsampler = ort.InferenceSession(
            base64.b64decode(meta["segcli.upsample_onnx"]), providers=["CPUExecutionProvider"]
        )

    # -- geometry ---------------------------------------------------------------------------
    def model_hw(self, h: int, w: int) -> tuple[int, int]:
        g = self.geometry
        if g["mode"] == "exact":
            return g["size"][0], g["size"][1]
        s = g["size"][0] / min(h, w) if g["mode"] == "short_side" else g["scale"]
        if s == 1.0:
            return h, w
        return max(1, round(h * s)), max(1, round(w * s))

    def plan(self, h: int, w: int, tile="auto", overlap=None):
        """((window h, w), (stride h, w)) or None for the whole photo."""
        g = self.geometry
        if tile == "off" or (tile == "auto" and g["mode"] != "native"):
            return None
        mh, mw = self.model_hw(h, w)
        win = tuple(g["window"]) if tile == "auto" else (int(tile), int(tile))
        if mh <= win[0] and mw <= win[1]:
            return None
        win = (min(win[0], mh), min(win[1], mw))
        share = g["overlap"] if overlap is None else float(overlap)
        return win, tuple(max(1, int(round(x * (1.0 - share)))) for x in win)

    # -- the model ----------------------------------------------------------------------------
    def raw(self, windows: np.ndarray) -> np.ndarray:
        x = (windows.astype(np.float32) / np.float32(255.0) - self.mean) / self.std
        return self.session.run(["raw_logits"], {"pixel_values": np.ascontiguousarray(x.transpose(0, 3, 1, 2))})[0]

    def upsample(self, raw: np.ndarray, out_hw) -> np.ndarray:
        return self.upsampler.run(["logits"], {"raw_logits": raw, "out_size": np.asarray(out_hw, np.int64)})[0]

    # -- one photo ----------------------------------------------------------------------------
    def predict(self, rgb: np.ndarray, tile="auto", overlap=None, threshold: float = 0.05) -> np.ndarray:
        """The label map (uint8, the photo's size) segcli writes as the mask PNG."""
        h, w = rgb.shape[:2]
        mh, mw = self.model_hw(h, w)
        resized = rgb if (mh, mw) == (h, w) else np.asarray(Image.fromarray(rgb).resize((mw, mh), Image.BILINEAR))
        c = len(self.classes)
        plan = self.plan(h, w, tile, overlap)
        if plan is not None:
            label, prob = blend_windows(
                resized, (h, w), plan[0], plan[1], c, lambda x, hw: self.upsample(self.raw(x), hw)
            )
        elif c * h * w > self.geometry["whole_max_values"]:
            label, prob = upsample_labels(self.raw(resized[None])[0], (h, w))
        else:
            logits = self.upsample(self.raw(resized[None]), (h, w))[0]
            label, prob = finish_band(logits, None)
        count = np.bincount(label.ravel(), minlength=c)
        total = np.bincount(label.ravel(), weights=prob.ravel(), minlength=c)
        scores = np.where(count > 0, total / np.maximum(count, 1), 0.0).astype(np.float32)
        drop = np.zeros(256, np.uint8)
        drop[:c] = np.arange(c)
        drop[[k for k in range(1, c) if count[k] and scores[k] < threshold]] = 0
        return drop[label]


# -- the same arithmetic as segcli's engine/tiling.py --------------------------------------------
def starts(length, window, stride):
    if length <= window:
        return [0]
    out = list(range(0, length - window, stride))
    out.append(length - window)
    return out


def to_output(pos, model_len, out_len):
    if model_len == out_len:
        return pos
    return (2 * pos * out_len + model_len) // (2 * model_len)


def ramp(length, margin):
    if margin <= 0:
        return np.ones(length, np.float32)
    i = np.arange(length, dtype=np.float32)
    return np.minimum(1.0, np.minimum(i + 1, length - i) / np.float32(margin + 1)).astype(np.float32)


def finish_band(acc, wsum):
    label = np.zeros(acc.shape[1:], np.uint8)  # argmax, keeping the first of equal maxima
    top = acc[0].copy()
    for c in range(1, acc.shape[0]):
        better = acc[c] > top
        label[better] = c
        np.maximum(top, acc[c], out=top)
    total = np.zeros(top.shape, np.float32)
    for c in range(acc.shape[0]):
        d = acc[c] - top
        if wsum is not None:
            d /= wsum
        total += np.exp(d, out=d)
    return label, np.reciprocal(total, out=total)


def blend_windows(image, out_hw, window, stride, num_classes, infer, batch=4):
    hm, wm = image.shape[:2]
    h, w = out_hw
    wh, ww = min(window[0], hm), min(window[1], wm)
    ys, xs = starts(hm, wh, stride[0]), starts(wm, ww, stride[1])
    margin_h = to_output(max(0, wh - stride[0]), hm, h) if len(ys) > 1 else 0
    margin_w = to_output(max(0, ww - stride[1]), wm, w) if len(xs) > 1 else 0
    label, prob = np.empty((h, w), np.uint8), np.empty((h, w), np.float32)
    cols = [(x, to_output(x, wm, w), to_output(x + ww, wm, w)) for x in xs]
    carry = None
    for r, y in enumerate(ys):
        oy0, oy1 = to_output(y, hm, h), to_output(y + wh, hm, h)
        acc = np.zeros((num_classes, oy1 - oy0, w), np.float32)
        wsum = np.zeros((oy1 - oy0, w), np.float32)
        if carry is not None:
            acc[:, : carry[1].shape[0]], wsum[: carry[1].shape[0]] = carry
        runs, run = [], []
        for col in cols:  # same footprint width, `batch` at most
            if run and (len(run) == batch or col[2] - col[1] != run[0][2] - run[0][1]):
                runs.append(run)
                run = []
            run.append(col)
        runs.append(run)
        for group in runs:
            fw = group[0][2] - group[0][1]
            logits = infer(np.stack([image[y : y + wh, x : x + ww] for x, _, _ in group]), (oy1 - oy0, fw))
            weight = np.outer(ramp(oy1 - oy0, margin_h), ramp(fw, margin_w))
            for j, (_, ox0, ox1) in enumerate(group):
                acc[:, :, ox0:ox1] += logits[j] * weight
                wsum[:, ox0:ox1] += weight
        done = (to_output(ys[r + 1], hm, h) if r + 1 < len(ys) else oy1) - oy0
        label[oy0 : oy0 + done], prob[oy0 : oy0 + done] = finish_band(acc[:, :done], wsum[:done])
        carry = (acc[:, done:].copy(), wsum[done:].copy()) if done < oy1 - oy0 else None
    return label, prob


def _axis(out_len, in_len):
    src = np.maximum((np.arange(out_len, dtype=np.float64) + 0.5) * (in_len / out_len) - 0.5, 0.0)
    i0 = np.minimum(np.floor(src).astype(np.int64), in_len - 1)
    return i0, np.minimum(i0 + 1, in_len - 1), (src - i0).astype(np.float32)


def upsample_labels(raw, out_hw):
    c, h, w = raw.shape
    oh, ow = out_hw
    rows = max(1, BAND_VALUES // max(1, c * ow))
    y0, y1, fy = _axis(oh, h)
    x0, x1, fx = _axis(ow, w)
    label, prob = np.empty(out_hw, np.uint8), np.empty(out_hw, np.float32)
    for a in range(0, oh, rows):
        b = min(oh, a + rows)
        f = fy[a:b, None]
        vert = raw[:, y0[a:b]]
        vert *= 1 - f
        below = raw[:, y1[a:b]]
        below *= f
        vert += below
        band = vert[:, :, x0]
        band *= 1 - fx
        right = vert[:, :, x1]
        right *= fx
        band += right
        label[a:b], prob[a:b] = finish_band(band, None)
    return label, prob


def read_rgb(path: str) -> np.ndarray:
    """The photo as displayed (EXIF orientation applied), 8-bit RGB."""
    with Image.open(path) as im:
        return np.asarray(ImageOps.exif_transpose(im).convert("RGB"))


def main() -> None:
    ap = argparse.ArgumentParser(description="segcli's masks from an exported ONNX file")
    ap.add_argument("model")
    ap.add_argument("photo")
    ap.add_argument("mask")
    ap.add_argument("--tile", default="auto")
    ap.add_argument("--overlap", type=float, default=None)
    ap.add_argument("--threshold", type=float, default=0.05)
    args = ap.parse_args()
    tile = args.tile if args.tile in ("auto", "off") else int(args.tile)
    label = Client(args.model).predict(read_rgb(args.photo), tile, args.overlap, args.threshold)
    Image.fromarray(label).save(args.mask)


if __name__ == "__main__":
    main()
