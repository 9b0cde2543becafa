"""Video in, overlaid video + per-frame JSON out, with real files written by PyAV."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils

from segcli.media.video import VideoWriter, iter_video_frames
from segcli.render.predictions import PredictionWriter

av = pytest.importorskip("av")

W, H, N, FPS = 64, 48, 12, 12
CLASSES = ["background", "ball"]


def frame_at(i: int) -> np.ndarray:
    """Grey background with a white square moving right by 3 px per frame."""
    img = np.full((H, W, 3), 60, dtype=np.uint8)
    img[16:32, 3 * i : 3 * i + 16] = 255
    return img


@pytest.fixture()
def clip(tmp_path):
    path = tmp_path / "clip.mp4"
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("mpeg4", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        for i in range(N):
            frame = av.VideoFrame.from_ndarray(frame_at(i), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def count_frames(path) -> int:
    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(video=0))


def test_iter_frames_all_and_every_n(clip):
    frames = list(iter_video_frames(clip))
    assert [i for i, _, _ in frames] == list(range(N))
    assert frames[0][2].shape == (H, W, 3) and frames[0][2].dtype == np.uint8
    assert frames[3][1] == pytest.approx(3 / FPS, abs=1e-3)
    # The square is where it was drawn (codec noise aside).
    assert frames[5][2][24, 3 * 5 + 8].min() > 200 and frames[5][2][24, 1].max() < 100
    assert [i for i, _, _ in iter_video_frames(clip, every_n=5)] == [0, 5, 10]
    with pytest.raises(ValueError):
        next(iter_video_frames(clip, every_n=0))


def test_overlay_writer_pads_odd_sizes_and_keeps_frames(tmp_path):
    out = tmp_path / "odd.mp4"
    with VideoWriter(out, fps=10, size=(35, 21)) as writer:
        for i in range(7):
            writer.write(Image.new("RGB", (35, 21), (i * 30, 0, 0)))
        with pytest.raises(ValueError, match="size"):
            writer.write(Image.new("RGB", (36, 21)))
    assert count_frames(out) == 7
    with av.open(str(out)) as container:
        stream = container.streams.video[0]
        assert (stream.codec_context.width, stream.codec_context.height) == (36, 22)


@pytest.mark.parametrize("threaded", [False, True], ids=["add", "submit"])
def test_prediction_writer_video(tmp_path, clip, threaded):
    out = tmp_path / "out"
    writer = PredictionWriter(out, CLASSES, workers=2 if threaded else 0)
    threads = set()

    def scores():  # may be given as a function: called where the work runs
        threads.add(threading.current_thread().name)
        return [1.0, 0.9]

    for index, time_s, rgb in iter_video_frames(clip, every_n=2):
        labelmap = (rgb[:, :, 0] > 150).astype(np.uint8)
        if threaded:
            writer.submit_video_frame("videos/clip.mp4", index, time_s, rgb, labelmap, scores, fps=6)
        else:
            writer.add_video_frame("videos/clip.mp4", index, time_s, rgb, labelmap, scores, fps=6)
    writer.finish_video("videos/clip.mp4")
    assert count_frames(out / "clip.overlay.mp4") == len(range(0, N, 2))  # finished: every frame in
    doc = writer.close()
    assert threads == ({"segcli-video_0"} if threaded else {threading.current_thread().name})

    items = doc["items"]
    assert [it["frame"] for it in items] == list(range(0, N, 2))
    assert items[1]["input"] == "videos/clip.mp4#frame=2"
    assert items[1]["time"] == pytest.approx(2 / FPS, abs=1e-3)
    assert items[0]["overlay_path"] == "clip.overlay.mp4"
    assert count_frames(out / "clip.overlay.mp4") == len(items)
    for item in items:
        mask = np.asarray(Image.open(out / item["mask_path"]))
        assert item["mask_path"].startswith("clip_frames/")
        (region,) = item["regions"]
        rle = {"size": region["mask"]["size"], "counts": region["mask"]["counts"].encode()}
        assert np.array_equal(mask_utils.decode(rle).astype(bool), mask == 1)
    assert (out / "predictions.json").exists()


def test_submitted_frame_that_fails_is_reported_and_the_rest_kept(tmp_path, clip):
    out = tmp_path / "out"
    writer = PredictionWriter(out, CLASSES, workers=2)
    frames = list(iter_video_frames(clip, every_n=2))
    last = frames[-1][0]
    for index, time_s, rgb in frames:
        labelmap = (rgb[:, :, 0] > 150).astype(np.uint8)
        if index == last:  # the last call, so that no earlier call can see it fail and raise
            labelmap = labelmap[:-1]  # a wrong size: this frame's write fails
        writer.submit_video_frame("clip.mp4", index, time_s, rgb, labelmap, [1.0, 0.9], fps=6)
    writer.finish_video("clip.mp4")  # waits, does not raise
    with pytest.raises(ValueError, match="does not match"):
        writer.close()
    doc = json.loads((out / "predictions.json").read_text())
    assert [it["frame"] for it in doc["items"]] == [i for i, _, _ in frames if i != last]
    assert count_frames(out / "clip.overlay.mp4") == len(frames) - 1
