"""The floor of a validating upload: read, sha256 and fully decode every image and mask once.

What any tool that proves each file is a readable image must do at least; bench_ingest.py runs
this as its own process (interpreter start-up included, like the segcli command it is compared
with) on threads and on processes, and takes the fastest as the anchor.
Usage: python bench/decode_hash_floor.py DIR [DIR...] --mode thread|process --workers N [--draft]
(--draft: JPEGs decoded at 1/8 scale, as segcli's validation does; a stricter anchor.)
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import sys
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

from PIL import Image

SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
DRAFT = False


def one(path: str) -> str:
    with open(path, "rb") as fh:
        data = fh.read()
    digest = hashlib.sha256(data).hexdigest()
    with Image.open(io.BytesIO(data)) as image:
        if DRAFT and image.format == "JPEG":
            image.draft(image.mode, (max(1, image.width // 8), max(1, image.height // 8)))
        image.load()
    return digest


def _init(draft: bool) -> None:
    global DRAFT
    DRAFT = draft


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("dirs", nargs="+")
    parser.add_argument("--mode", choices=("thread", "process"), default="process")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--draft", action="store_true")
    args = parser.parse_args()
    files = sorted(
        entry.path
        for d in args.dirs
        for entry in os.scandir(d)
        if entry.is_file() and entry.name.lower().endswith(SUFFIXES)
    )
    _init(args.draft)
    if args.workers <= 1:
        digests = [one(f) for f in files]
    elif args.mode == "thread":
        with ThreadPoolExecutor(args.workers) as pool:
            digests = list(pool.map(one, files))
    else:
        with ProcessPoolExecutor(args.workers, initializer=_init, initargs=(args.draft,)) as pool:
            digests = list(pool.map(one, files, chunksize=16))
    assert len(digests) == len(files)
    print(len(files), file=sys.stderr)


if __name__ == "__main__":
    main()
