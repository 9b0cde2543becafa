"""A trained Clarifai model version as a Segmenter: images in, label maps + class scores out.

Images go as lossless PNG (the masks then describe exactly the pixels we have), at most 128
per PostModelOutputs and a few MB per request, several requests in flight. Each returned
region is a mask image (`region_info.mask`) with one concept and a score;
`regions.labelmap_from_region_masks` turns them into the label map the writers and metrics use.
Videos reach predict() as decoded frames (the predict service samples them client-side).
"""

from __future__ import annotations

import io
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from clarifai_grpc.grpc.api import resources_pb2 as R
from clarifai_grpc.grpc.api.status import status_code_pb2 as C
from PIL import Image

from segcli.backends.clarifai import codes
from segcli.backends.clarifai.connection import Connection
from segcli.backends.clarifai.protos import batches, decode_mask
from segcli.backends.clarifai.regions import labelmap_from_region_masks
from segcli.core.classes import with_background
from segcli.core.errors import InvalidInputError
from segcli.core.segmentation import SegResult

WORKERS = 4


def encode_png(image: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image, dtype=np.uint8)).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


class CloudSegmenter:
    def __init__(self, conn: Connection, app_id: str, model_id: str, version_id: str, classes: list[str]):
        """`classes`: the version's (background first); regions map to them by concept id,
        whatever order Clarifai lists its concepts in."""
        self.conn, self.app_id, self.model_id, self.version_id = conn, app_id, model_id, version_id
        self.classes = with_background(classes)
        self._index = {c: i for i, c in enumerate(self.classes) if i}

    def predict(self, images: list[np.ndarray], batch_size: int = 8) -> list[SegResult]:
        # batch_size is the local engines' knob: requests are sized by count and bytes below.
        encoded = [(i, encode_png(im)) for i, im in enumerate(images)]
        # Spread even a small call over a few requests: each one waits a round trip.
        per_request = max(1, min(128, -(-len(encoded) // WORKERS)))
        groups = batches(encoded, lambda e: len(e[1]), max_items=per_request, max_bytes=4 * 1024 * 1024)
        with ThreadPoolExecutor(min(WORKERS, len(groups) or 1), thread_name_prefix="segcli-predict") as pool:
            outputs = [o for group in pool.map(self._post, groups) for o in group]
        if all(o.input.id for o in outputs):  # match by the ids we sent, whatever the order
            by_id = {int(o.input.id): o for o in outputs}
            outputs = [by_id[i] for i in range(len(images))]
        return [self._result(o, im) for o, im in zip(outputs, images)]

    def _post(self, group: list[tuple[int, bytes]]) -> list:
        inputs = [R.Input(id=str(i), data=R.Data(image=R.Image(base64=data))) for i, data in group]
        request = self.conn.request(
            "PostModelOutputs", self.app_id, model_id=self.model_id, version_id=self.version_id, inputs=inputs
        )
        response = self.conn.call("PostModelOutputs", request)
        if response.status.code not in (codes.SUCCESS, C.MIXED_STATUS):
            raise codes.error_for("PostModelOutputs", response.status)
        return list(response.outputs)

    def _result(self, output, image: np.ndarray) -> SegResult:
        if output.status.code != codes.SUCCESS:
            raise InvalidInputError(
                f"Clarifai could not predict an image: {codes.describe(output.status)}",
                hint="check the image opens, and is under 20 MB and 85 megapixels",
            )
        h, w = image.shape[:2]
        masks = []
        for region in output.data.regions:
            if not region.data.concepts or not region.region_info.HasField("mask"):
                continue
            concept = region.data.concepts[0]
            index = self._index.get(concept.id)
            if index is not None:
                masks.append((index, decode_mask(bytes(region.region_info.mask.image.base64), h, w), concept.value))
        labelmap, scores = labelmap_from_region_masks(masks, h, w, len(self.classes))
        return SegResult(labelmap=labelmap, class_scores=scores.astype(np.float32))
