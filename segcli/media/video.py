"""Reading video frames and writing videos (predict's overlays, the demo's clip) with PyAV
(ffmpeg shipped inside the wheel).

`av` is imported inside functions: `segcli --help` and image-only predicts never pay for it.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Iterator

import numpy as np
from PIL import Image

# H.264 plays everywhere (browsers, QuickTime, VLC) and PyAV's wheels ship libx264; MPEG-4
# part 2 is the fallback for ffmpeg builds without it (also built into every ffmpeg).
_CODECS = ("libx264", "mpeg4")
_TIME_BASE = Fraction(1, 1000)  # timestamps in ms: keeps source timing when frames are skipped


def iter_video_frames(path: str | Path, every_n: int = 1) -> Iterator[tuple[int, float, np.ndarray]]:
    """Yield (frame index, time in seconds, HxWx3 uint8 RGB) for every `every_n`-th frame."""
    import av

    if every_n < 1:
        raise ValueError(f"every_n must be >= 1, got {every_n}")
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"  # decode with ffmpeg's threads; frames still come in order
        fps = float(stream.average_rate or stream.guessed_rate or 25)
        for index, frame in enumerate(container.decode(stream)):
            if index % every_n:
                continue
            time_s = float(frame.time) if frame.time is not None else index / fps
            yield index, time_s, frame.to_ndarray(format="rgb24")


def video_fps(path: str | Path) -> float:
    """Nominal frame rate of the first video stream (25 when the container does not say)."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return float(stream.average_rate or stream.guessed_rate or 25)


def pick_codec() -> str:
    import av

    for name in _CODECS:
        try:
            av.codec.Codec(name, "w")
            return name
        except Exception:  # noqa: BLE001 - PyAV raises different types across versions
            continue
    raise RuntimeError("no usable video encoder in this PyAV build (tried libx264, mpeg4)")


class VideoWriter:
    """Encode RGB frames of one fixed `size` (width, height) into `out_path` (.mp4)."""

    def __init__(self, out_path: str | Path, fps: float, size: tuple[int, int]) -> None:
        import av

        self.out_path = Path(out_path)
        self.size = (int(size[0]), int(size[1]))
        # yuv420p needs even dimensions: pad odd sizes by one pixel rather than fail.
        self._padded = (self.size[0] + self.size[0] % 2, self.size[1] + self.size[1] % 2)
        self._container = av.open(str(self.out_path), mode="w")
        self.codec = pick_codec()
        rate = Fraction(fps).limit_denominator(1001) if fps and fps > 0 else Fraction(25)
        self._stream = self._container.add_stream(self.codec, rate=rate)
        self._stream.width, self._stream.height = self._padded
        self._stream.pix_fmt = "yuv420p"
        self._stream.codec_context.time_base = _TIME_BASE
        if self.codec == "libx264":
            self._stream.options = {"crf": "23", "preset": "veryfast"}
        self._fps = float(rate)
        self._last_pts = -1
        self.frames = 0

    def __enter__(self) -> "VideoWriter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def write(self, frame: Image.Image | np.ndarray, time_s: float | None = None) -> None:
        """Append one frame, shown at `time_s` (default: the next slot at the nominal fps)."""
        import av

        arr = np.asarray(frame.convert("RGB") if isinstance(frame, Image.Image) else frame)
        if (arr.shape[1], arr.shape[0]) != self.size:
            raise ValueError(f"frame size {arr.shape[1]}x{arr.shape[0]} != video size {self.size}")
        if self._padded != self.size:
            arr = np.pad(arr, ((0, self._padded[1] - arr.shape[0]), (0, self._padded[0] - arr.shape[1]), (0, 0)))
        vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(arr), format="rgb24")
        when = time_s if time_s is not None else self.frames / self._fps
        # Timestamps must strictly increase or the muxer rejects the packet.
        vf.pts = max(int(round(when * 1000)), self._last_pts + 1)
        vf.time_base = _TIME_BASE
        self._last_pts = vf.pts
        for packet in self._stream.encode(vf):
            self._container.mux(packet)
        self.frames += 1

    def close(self) -> None:
        if self._container is None:
            return
        try:
            for packet in self._stream.encode():  # flush frames the encoder still buffers
                self._container.mux(packet)
        finally:
            self._container.close()
            self._container = None
