"""Images embedded in an annotation file (LabelMe's `imageData`): named by the annotation file's
path plus a marker, so that an item's `image_path` stays a string every reader of image bytes
(validation, the local blob store, the Clarifai upload) opens through `image_bytes`. Nothing is
written out: the bytes are decoded from the JSON whenever they are needed."""

from __future__ import annotations

import base64
import binascii
import json
import os
from pathlib import Path

MARKER = "#imageData"


def embedded_image(raw: bytes, json_path: Path) -> str:
    """The image_path of the image embedded in `json_path` (whose imageData decodes to `raw`)."""
    return str(json_path) + MARKER


def is_embedded(path: str | Path) -> bool:
    return isinstance(path, str) and path.endswith(MARKER)


def container(path: str | Path) -> str | Path:
    """The file that holds the bytes: the JSON for an embedded image, else the path itself."""
    return path[: -len(MARKER)] if is_embedded(path) else path


def decode_embedded(json_bytes: bytes) -> bytes:
    try:
        data = json.loads(json_bytes.decode("utf-8-sig")).get("imageData")
        return base64.b64decode(data or "")
    except (ValueError, AttributeError, TypeError, binascii.Error) as e:
        raise OSError(f"imageData cannot be decoded: {e}") from None


def image_bytes(path: str | Path) -> bytes:
    """The bytes of an image file, or of an embedded image; a FIFO, a device or a link loop is
    refused (core/regular.NotRegularFile, an OSError), never waited on."""
    from segcli.core.regular import read_regular

    data = read_regular(container(path))
    return decode_embedded(data) if is_embedded(path) else data


def stored_size(path: str | Path) -> int:
    """The size of the file holding an image (for batching uploads)."""
    return os.stat(container(path)).st_size
