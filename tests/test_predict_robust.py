"""predict on inputs that cannot be read: corrupt and truncated images, decompression bombs,
broken videos. Each is skipped with a warning and listed in predictions.json; the index is
always written; nothing predictable at all is exit 5. And the writer, whatever happens,
finalises its videos and writes the index."""

from __future__ import annotations

import json
import shutil
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from segcli.core.errors import ExitCode
from segcli.render.predictions import PredictionWriter

from conftest import train_argv

pytest.importorskip("torch", reason="the local engine needs the [local] extra")

TRAIN = train_argv("--set", "num_epochs=1")


def png_with_size(path: Path, width: int, height: int) -> Path:
    """A few-byte PNG that declares width x height grey pixels: what a decompression bomb
    looks like to a reader before it decodes anything."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")
    )
    return path


def bad_inputs(folder: Path, good: Path) -> dict[str, str]:
    """name -> a word its skip reason must contain."""
    folder.mkdir()
    (folder / "text.png").write_bytes(b"this is not an image")
    data = good.read_bytes()
    (folder / "truncated.png").write_bytes(data[: len(data) // 2])
    png_with_size(folder / "bomb.png", 30000, 30000)  # > 2x Pillow's limit: refused at open
    png_with_size(folder / "big.png", 10000, 10000)  # > 1x: Pillow only warns; segcli refuses
    (folder / "clip.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x00garbage" * 50)
    return {
        "text.png": "cannot read image",
        "truncated.png": "cannot read image",
        "bomb.png": "image",
        "big.png": "decompression-bomb guard",
        "clip.mp4": "cannot read video",
    }


def test_unreadable_inputs_are_skipped_and_listed(cli, home, shapes_data, tmp_path):
    folder = tmp_path / "inputs"
    expected = bad_inputs(folder, next((shapes_data / "images").iterdir()))
    good = sorted((shapes_data / "images").iterdir())[:3]
    for p in good:
        shutil.copy(p, folder / p.name)
    out = tmp_path / "pred"
    result = cli("predict", "--model", "m", "--app", "a", folder, "--out", out, "-o", "json")
    assert result.code == 0, result.err
    doc = json.loads((out / "predictions.json").read_text())
    assert result.json() == doc
    assert [Path(i["input"]).name for i in doc["items"]] == sorted(p.name for p in good)
    skipped = {Path(s["input"]).name: s["reason"] for s in doc["skipped"]}
    assert set(skipped) == set(expected)
    for name, word in expected.items():
        assert word in skipped[name], (name, skipped[name])
        assert f"skipped {folder / name}" in result.err
    assert "Traceback" not in result.err and "DecompressionBomb" not in result.err.replace(skipped["bomb.png"], "")


def test_nothing_predictable_exits_5_with_the_index_written(cli, home, shapes_data, tmp_path):
    folder = tmp_path / "inputs"
    expected = bad_inputs(folder, next((shapes_data / "images").iterdir()))
    out = tmp_path / "pred"
    result = cli("predict", "--model", "m", "--app", "a", folder, "--out", out, "-o", "json")
    assert result.code == ExitCode.INVALID_INPUT
    assert "nothing could be predicted" in result.err and result.out == ""
    doc = json.loads((out / "predictions.json").read_text())
    assert doc["items"] == [] and len(doc["skipped"]) == len(expected)


CLASSES = ["background", "ball"]


def frames(n: int, w: int = 48, h: int = 32):
    for i in range(n):
        img = np.full((h, w, 3), 40, np.uint8)
        img[8:24, 2 * i : 2 * i + 12] = 230
        yield i, i / 10, img


def test_writer_finalises_video_and_index_after_a_failure(tmp_path):
    import av

    out = tmp_path / "out"
    with pytest.raises(RuntimeError, match="decoder died"):
        with PredictionWriter(out, CLASSES, workers=2) as writer:
            writer.add_image("still.png", *next(frames(1))[2:], np.zeros((32, 48), np.uint8), [1.0, 0.0])
            for index, t, img in frames(7):
                writer.add_video_frame(
                    "clip.mp4", index, t, img, (img[:, :, 0] > 100).astype(np.uint8), [1.0, 0.9], fps=10
                )
            raise RuntimeError("decoder died")
    doc = json.loads((out / "predictions.json").read_text())
    assert [i["input"] for i in doc["items"]] == ["still.png"] + [f"clip.mp4#frame={i}" for i in range(7)]
    with av.open(str(out / "clip.overlay.mp4")) as container:  # a complete, playable file
        assert sum(1 for _ in container.decode(video=0)) == 7


def test_writer_threads_keep_input_order_and_report_errors(tmp_path):
    rng = np.random.default_rng(0)
    names = [f"dir{i % 3}/img.png" for i in range(20)]  # same stems: names are reserved in order
    with PredictionWriter(tmp_path, CLASSES, workers=3) as writer:
        for name in names:
            img = rng.integers(0, 256, (int(rng.integers(8, 40)), 30, 3), np.uint8)
            writer.submit_image(name, img, (img[:, :, 0] > 128).astype(np.uint8), [1.0, 0.8])
        writer.skip("broken.png", "cannot read image")
    doc = json.loads((tmp_path / "predictions.json").read_text())
    assert [i["input"] for i in doc["items"]] == names
    assert [i["mask_path"] for i in doc["items"]][:4] == [
        "img.mask.png",
        "img-2.mask.png",
        "img-3.mask.png",
        "img-4.mask.png",
    ]
    for item in doc["items"]:
        mask = np.asarray(Image.open(tmp_path / item["mask_path"]))
        assert mask.shape == (item["height"], item["width"])
    assert doc["skipped"] == [{"input": "broken.png", "reason": "cannot read image"}]

    bad = tmp_path / "bad"
    with pytest.raises(ValueError, match="does not match"):
        with PredictionWriter(bad, CLASSES, workers=2) as writer:
            writer.submit_image("ok.png", np.zeros((4, 4, 3), np.uint8), np.zeros((4, 4), np.uint8), [1, 0])
            writer.submit_image("wrong.png", np.zeros((4, 4, 3), np.uint8), np.zeros((5, 4), np.uint8), [1, 0])
    assert [i["input"] for i in json.loads((bad / "predictions.json").read_text())["items"]] == ["ok.png"]


def test_background_reader_never_blocks_a_consumer_that_stops():
    """A consumer that stops early (an error, Ctrl-C) while the reader's queue is full must not
    hang: the reader's every put gives up once the consumer is gone, and its source is closed."""
    import threading

    from segcli.services.predict import _background

    closed = threading.Event()

    def frames():
        try:
            yield from range(3)  # all read while the queue is full: the end marker must wait
        finally:
            closed.set()

    reader = _background(frames(), 2)
    assert next(reader) == 0
    finished = threading.Event()
    threading.Thread(target=lambda: (reader.close(), finished.set()), daemon=True).start()
    assert finished.wait(10), "closing the reader hung"
    assert closed.wait(10), "the source was never closed"
