"""Read a COCO segmentation JSON and its images folder into validated items.

Each image gets a uint8 label map painted with its annotations in file order (where two overlap,
the later one wins: the one overlap rule of every format, datasets/shapes.py; the pixels a later
annotation of another concept painted over are counted as `overlapped`). Value i is the i-th
concept (category `name`) visible in that image. A concept's Region (area, bbox, mask) is the
union of its annotations, exactly what pycocotools' `annToMask` gives; when a later annotation
of another concept covers part of it, that union is no longer `labelmap == i`, so the Region
carries its own mask PNG.

Decisions:
- Images listed without annotations are valid and all background: locally they teach
  "background"; Clarifai uploads them as unlabeled inputs.
- Coordinates, width and height are in the image as displayed (EXIF orientation applied), as
  annotation tools draw them; segcli reads every image that way (datasets/imagefile.py).
- Polygons running past the image border (objects cut by the frame, converted or generated
  data) are clipped to it, as pycocotools' rasteriser does: the mask is exactly `annToMask`.
  Annotations with points more than 1 px outside are counted as `clipped` (within 1 px is
  COCO's coordinate rounding). Only a polygon with fewer than 3 points, with zero area (all
  points on one line), or wholly outside the image is invalid.
- An image with any bad annotation is invalid as a whole: silently dropping an object would
  teach the model that those pixels are background. So is one with a bbox-only annotation.
- `iscrowd` annotations (usually RLE) are painted like any other, as pycocotools does.
- `file_name` is found the way real exports write it (see `ImageFinder`); the item is named
  by the path found, relative to --images.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import threading
from collections import Counter
from pathlib import Path

import numpy as np
from pycocotools import mask as mask_utils

from segcli.core import regular
from segcli.core.errors import InvalidInputError, NotFoundError
from segcli.core.names import concept_problem
from segcli.core.textfile import SAVE_AS_UTF8
from segcli.datasets.filefacts import ImageFile, KnownFiles, KnownRender, Stash, absolute
from segcli.datasets.imagefile import BadFile, bbox_of, observe_image, png_bytes
from segcli.datasets.items import InvalidItem, LabeledItem, ReadResult, Region
from segcli.datasets.polygons import clip_ring
from segcli.datasets.reading import Progress, read_jobs, require_dir

TOLERANCE_PX = 1.0  # COCO exports round coordinates: this far outside is not "clipped"
# Bump when drawing a label map from annotations changes: remembered drawings are then redone.
RENDER_RULES = 2
_HINT = "expected a COCO instances JSON with 'images', 'annotations' and 'categories'"


class BadAnnotation(Exception):
    pass


def read_coco(
    annotations: Path,
    images_dir: Path,
    on_progress: Progress | None = None,
    workers: int | None = None,
    known: KnownFiles | None = None,
    stash: Stash | None = None,
) -> ReadResult:
    """Validate every image entry. An item whose image `known` vouches for (unchanged since
    the backend stored it) and whose label map it drew before from the same annotations is
    made without reading or drawing anything; the others in worker processes, which hand the
    bytes of valid images and label maps to `stash` if given."""
    doc = _load(Path(annotations))
    images_dir = require_dir(
        images_dir, "images folder", hint="pass the folder holding the files named in the JSON's 'images'"
    )
    categories = _categories(doc["categories"], Path(annotations))
    entries, invalid = _image_entries(doc["images"], ImageFinder(images_dir))
    known_ids = {_image_id(e) for e in doc["images"]} - {None}
    by_image, orphans = _group_annotations(doc["annotations"], known_ids)
    jobs = []
    for entry, path in entries:
        anns = by_image.get(entry["id"], [])
        jobs.append((entry, path, anns, None, render_key(entry, anns, categories)))
    facts, renders = _known(jobs, known)
    jobs = [(entry, path, anns, facts.get(absolute(path)), key) for entry, path, anns, _, key in jobs]
    done = {
        k: _known_item(job, renders[job[4]], images_dir)
        for k, job in enumerate(jobs)
        if job[3] is not None and job[4] in renders
    }
    read_one = functools.partial(_read_image, images_dir=images_dir, categories=categories, stash=stash)
    result = read_jobs(jobs, done, read_one, workers, on_progress, invalid + orphans)
    # The class order: the categories the items use, by id; each keeps its id for export.
    used = set(result.concepts)
    for cid, name in sorted(categories.items()):
        if name in used and name not in result.category_ids:
            result.category_ids[name] = cid
            result.class_order.append(name)
    return result


def render_key(entry: dict, anns: list, categories: dict[int, str]) -> str | None:
    """A hash of everything an image's label map is drawn from (its size, and each annotation's
    concept and segmentation in order), or None when that cannot be written down (no drawing
    is then remembered)."""
    drawn = [
        [categories.get(a.get("category_id")) if type(a.get("category_id")) is int else None, a.get("segmentation")]
        for a in anns
    ]
    try:
        text = json.dumps([RENDER_RULES, entry["width"], entry["height"], drawn], sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
    except (TypeError, ValueError, RecursionError):
        return None


def _known(jobs: list, known: KnownFiles | None) -> tuple[dict[str, ImageFile], dict[str, KnownRender]]:
    if known is None:
        return {}, {}
    facts = known.images([absolute(path) for _, path, _, _, _ in jobs])
    keys = [key for _, path, _, _, key in jobs if key is not None and absolute(path) in facts]
    return facts, (known.renders(keys) if keys else {})


def _known_item(job: tuple, render: KnownRender, images_dir: Path) -> LabeledItem | InvalidItem:
    """The item of an entry whose image and drawing are both known: only the size rule is left
    to apply (the annotations were valid when drawn: the key covers them)."""
    entry, path, _, info, _ = job
    if (info.width, info.height) != (entry["width"], entry["height"]):
        return InvalidItem(
            entry["file_name"],
            f"image is {info.width}x{info.height}{info.turned()} but the JSON says {entry['width']}x{entry['height']}",
        )
    return LabeledItem(
        name=path.relative_to(images_dir).as_posix(),
        image_path=path,
        image_sha256=info.sha256,
        width=info.width,
        height=info.height,
        labels=render.labels,
        regions=render.regions,
        labelmap_path=render.labelmap_path,
        labelmap_sha256=render.labelmap_sha256,
        clipped=render.clipped,
        overlapped=render.overlapped,
    )  # no render_key: nothing new to remember


def _load(path: Path) -> dict:
    if path.is_dir() or not os.path.lexists(path):  # a FIFO, a device...: refused below
        problem = "is a folder" if path.is_dir() else "not found"
        raise NotFoundError(
            f"COCO annotations file {problem}: {path}",
            hint="pass the JSON file, e.g. annotations/instances_val2017.json",
        )
    try:
        raw = regular.read_regular(path)  # a FIFO or a device: refused, never waited on
    except regular.NotRegularFile as e:
        raise InvalidInputError(f"COCO annotations file {path} {e.reason}", hint="pass the JSON file itself") from None
    except OSError as e:
        raise InvalidInputError(f"cannot read {path}: {e.strerror or e}", hint="check the file's permissions") from None
    # JSON text starts with ASCII, so UTF-8/16/32 are told apart with or without a BOM
    # (json.detect_encoding); any other encoding is refused rather than guessed.
    encoding = json.detect_encoding(raw)
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError as e:
        bad = raw[e.start : e.start + 1]
        raise InvalidInputError(
            f"{path} is not valid {encoding.replace('-sig', '').upper()} text "
            f"({f'byte 0x{bad[0]:02x} at offset {e.start}' if bad else 'it ends mid-character'})",
            hint=SAVE_AS_UTF8 + ", or re-export it",
        ) from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        cut = e.msg.startswith("Unterminated") or e.pos >= len(text.rstrip()) - 1
        raise InvalidInputError(
            f"{path} is not valid JSON{' - it ends early, truncated?' if cut else ''} "
            f"(line {e.lineno}, column {e.colno}: {e.msg})",
            hint="re-export or re-download the annotations file",
        ) from None
    except (RecursionError, ValueError) as e:  # nested too deep; a number too long to convert
        what = "nested too deeply" if isinstance(e, RecursionError) else str(e).split(";")[0]
        raise InvalidInputError(
            f"{path} is not JSON segcli can read ({what})", hint="re-export or re-download the annotations file"
        ) from None
    missing = [
        k
        for k in ("images", "annotations", "categories")
        if not isinstance(doc, dict) or not isinstance(doc.get(k), list)
    ]
    if missing:
        raise InvalidInputError(f"{path} is not a COCO file: no '{missing[0]}' list", hint=_HINT)
    if not doc["images"]:
        raise InvalidInputError(f"{path} lists no images (empty dataset)", hint=_HINT)
    return doc


def _categories(entries: list, path: Path) -> dict[int, str]:
    categories: dict[int, str] = {}
    for k, cat in enumerate(entries):
        ok = (
            isinstance(cat, dict)
            and type(cat.get("id")) is int
            and isinstance(cat.get("name"), str)
            and cat["name"].strip()
        )
        if not ok:
            raise InvalidInputError(f"{path}: categories[{k}] needs an integer 'id' and a 'name'", hint=_HINT)
        if not _is_unicode(cat["name"]):
            raise InvalidInputError(
                f"{path}: categories[{k}] has a name that is not valid Unicode "
                "(a lone surrogate escape such as \\ud800)",
                hint=_HINT,
            )
        problem = concept_problem(cat["name"].strip())
        if problem is not None:
            raise InvalidInputError(
                f"{path}: categories[{k}] name {cat['name'].strip()!r} {problem}",
                hint="rename the category in the JSON (concept names are one line of text)",
            )
        if cat["id"] in categories:
            raise InvalidInputError(f"{path}: category id {cat['id']} is listed twice", hint=_HINT)
        categories[cat["id"]] = cat["name"].strip()
    return categories


def _image_entries(entries: list, finder: ImageFinder) -> tuple[list[tuple[dict, Path]], list[InvalidItem]]:
    """Structurally sound image entries with the file each names, and the others as InvalidItems."""
    found, invalid = [], []
    ids = Counter(_image_id(e) for e in entries)
    names = Counter(e.get("file_name") for e in entries if isinstance(e, dict) and isinstance(e.get("file_name"), str))
    for k, entry in enumerate(entries):
        name = entry.get("file_name") if isinstance(entry, dict) else None
        name = name if isinstance(name, str) and name and _is_unicode(name) else f"images[{k}]"
        problem = _entry_problem(entry, ids, names)
        where = None if problem else finder.find(entry["file_name"])
        if isinstance(where, str):
            problem = where
        if problem:
            invalid.append(InvalidItem(name, problem))
        else:
            found.append((entry, where))
    # Two entries naming one file in different spellings ("a.jpg", "./a.jpg", "C:\\x\\a.jpg").
    paths = Counter(path for _, path in found)
    good = []
    for entry, path in found:
        if paths[path] > 1:
            invalid.append(
                InvalidItem(
                    entry["file_name"], f"{paths[path]} entries in 'images' name the same file {finder.relative(path)}"
                )
            )
        else:
            good.append((entry, path))
    return good, invalid


def _image_id(entry) -> int | str | None:
    image_id = entry.get("id") if isinstance(entry, dict) else None
    return image_id if isinstance(image_id, (int, str)) else None


def _is_unicode(text: str) -> bool:
    """False for strings JSON's \\udXXX escapes made with lone surrogates (no file can have
    such a name, and SQLite cannot store them)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _entry_problem(entry, ids: Counter, names: Counter) -> str | None:
    if not isinstance(entry, dict):
        return "image entry is not an object"
    for key in ("id", "file_name", "width", "height"):
        if key not in entry:
            return f"image entry has no '{key}'"
    if _image_id(entry) is None:
        return "image id must be an integer or a string"
    if not isinstance(entry["file_name"], str) or not entry["file_name"].strip():
        return "image entry has no usable 'file_name'"
    if not _is_unicode(entry["file_name"]) or "\x00" in entry["file_name"]:
        return "file_name is not a valid file name (lone surrogate or NUL character)"
    if not all(type(entry[k]) is int and entry[k] > 0 for k in ("width", "height")):
        return "image width and height must be positive integers"
    if ids[entry["id"]] > 1:
        return f"image id {entry['id']} is used by {ids[entry['id']]} entries"
    if names[entry["file_name"]] > 1:
        return f"file is listed {names[entry['file_name']]} times in 'images'"
    return None


class ImageFinder:
    """Finds the file a COCO `file_name` means, always inside --images.

    Real exports write "img.jpg", "train/img.jpg", "./img.jpg", Windows "images\\img.jpg",
    and absolute paths from the machine that made them ("/home/x/data/img.jpg",
    "C:\\data\\img.jpg"). Rules, first hit wins:
    1. the name as written, relative to --images (a POSIX name may contain a backslash);
    2. its parts split on / and \\ with "", ".", a drive ("C:") and everything up to the last
       ".." dropped, then ever shorter tails: data/img.jpg, then img.jpg;
    3. the base name anywhere below --images, when exactly one file has it.
    Several files with that base name is ambiguous and, like no file at all, an invalid item.
    """

    def __init__(self, root: Path):
        self.root = root
        self._top: set[str] | None = None
        self._by_name: dict[str, list[Path]] | None = None
        self._lock = threading.Lock()

    def find(self, file_name: str) -> Path | str:
        """The file's path, or the reason there is none."""
        tails = self._tails(file_name)
        literal = Path(file_name)
        if not literal.is_absolute() and ".." not in literal.parts and self._is_file(file_name):
            return self.root / file_name
        for tail in tails:
            if self._is_file(tail):
                return self.root / tail
        if not tails:
            return "file_name names no file"
        matches = self._named(tails[-1])
        if len(matches) == 1:
            return matches[0]
        if matches:
            listed = ", ".join(self.relative(p) for p in matches[:3])
            return (
                f"{file_name!r} is ambiguous: {len(matches)} files named {tails[-1]} are below "
                f"{self.root.name}/ ({listed}{', ...' if len(matches) > 3 else ''})"
            )
        looked = " and ".join(dict.fromkeys(f"{self.root.name}/{t}" for t in (tails[0], tails[-1])))
        return f"image file not found: looked for {looked} (and for {tails[-1]} in its subfolders)"

    def relative(self, path: Path) -> str:
        return path.relative_to(self.root).as_posix()

    @staticmethod
    def _tails(file_name: str) -> list[str]:
        parts = [p for p in re.split(r"[\\/]", file_name) if p not in ("", ".")]
        if parts and re.fullmatch(r"[A-Za-z]:", parts[0]):
            parts = parts[1:]
        if ".." in parts:
            parts = parts[len(parts) - parts[::-1].index("..") :]
        return ["/".join(parts[k:]) for k in range(len(parts))]

    def _is_file(self, rel: str) -> bool:
        """Whether `rel` names something that is no folder: a file, or a FIFO, device or link
        loop, which the reader then refuses with its reason (core/regular), never opens."""
        if "/" not in rel:  # one listing of --images answers the common flat layout, no stat each
            if self._top is None:
                with self._lock:
                    if self._top is None:
                        self._top = {e.name for e in os.scandir(self.root) if not _is_folder(e)}
            return rel in self._top
        path = self.root / rel
        return os.path.lexists(path) and not path.is_dir()

    def _named(self, base: str) -> list[Path]:
        with self._lock:
            if self._by_name is None:
                self._by_name = {}
                for folder, dirs, files in os.walk(self.root):
                    dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                    for f in sorted(files):
                        self._by_name.setdefault(f, []).append(Path(folder) / f)
        return self._by_name.get(base, [])


def _is_folder(entry: os.DirEntry) -> bool:
    try:
        return entry.is_dir()
    except OSError:  # a link loop: not a folder
        return False


def _group_annotations(anns: list, known_ids: set) -> tuple[dict, list[InvalidItem]]:
    by_image: dict = {}
    orphans = []
    for k, ann in enumerate(anns):
        if not isinstance(ann, dict):
            orphans.append(InvalidItem(f"annotations[{k}]", "annotation is not an object"))
            continue
        image_id = ann.get("image_id")
        if isinstance(image_id, (list, dict)) or image_id not in known_ids:
            orphans.append(
                InvalidItem(
                    f"annotation {ann.get('id', f'#{k}')}", f"refers to image id {image_id!r}, which is not in 'images'"
                )
            )
            continue
        by_image.setdefault(image_id, []).append(ann)
    return by_image, orphans


def _read_image(
    job: tuple[dict, Path, list[dict], ImageFile | None, str | None],
    images_dir: Path,
    categories: dict[int, str],
    stash: Stash | None = None,
) -> LabeledItem | InvalidItem:
    entry, path, anns, info, key = job
    name = path.relative_to(images_dir).as_posix()
    observed = ()
    if info is None:
        try:
            info, seen = observe_image(path, stash)
        except BadFile as e:
            return InvalidItem(entry["file_name"], e.reason)
        observed = (seen,) if seen is not None else ()
    w, h = info.width, info.height
    if (w, h) != (entry["width"], entry["height"]):
        return InvalidItem(
            entry["file_name"], f"image is {w}x{h}{info.turned()} but the JSON says {entry['width']}x{entry['height']}"
        )
    try:
        masks = [_annotation_mask(ann, categories, w, h) for ann in anns]
        labelmap, labels, regions, overlapped = _render([(c, m) for c, m, _ in masks], h, w)
    except BadAnnotation as e:
        return InvalidItem(entry["file_name"], str(e))
    png = png_bytes(labelmap)
    digest = hashlib.sha256(png).hexdigest()
    if stash is not None:
        stash.keep(digest, png)
    return LabeledItem(
        name=name,
        image_path=path,
        image_sha256=info.sha256,
        width=w,
        height=h,
        labels=labels,
        regions=regions,
        labelmap_png=png,
        labelmap_sha256=digest,
        clipped=sum(clipped for _, _, clipped in masks),
        observed=observed,
        render_key=key,
        overlapped=overlapped,
    )


def _annotation_mask(ann: dict, categories: dict[int, str], w: int, h: int) -> tuple[str, np.ndarray, bool]:
    """(concept, transposed mask, whether its polygons ran past the border and were clipped)."""
    aid = ann.get("id", "?")
    cid = ann.get("category_id")
    if type(cid) is not int or cid not in categories:
        raise BadAnnotation(f"annotation {aid} has unknown category id {cid!r}")
    seg = ann.get("segmentation")
    if seg is None or seg == []:  # detection exports: the object's pixels are unknown
        has = "only a bounding box and no" if ann.get("bbox") else "no"
        raise BadAnnotation(f"annotation {aid} has {has} segmentation (polygons or RLE)")
    clipped = False
    try:
        if isinstance(seg, list):
            rings, clipped = _checked_polygons(seg, w, h)
            rle = mask_utils.merge(mask_utils.frPyObjects(rings, h, w))
        elif isinstance(seg, dict):
            rle = _checked_rle(seg, w, h)
        else:
            raise BadAnnotation("segmentation must be a list of polygons or an RLE object")
    except BadAnnotation as e:
        raise BadAnnotation(f"annotation {aid}: {e}") from None
    # decode() gives an (h, w) column-major 0/1 array; its transpose is a row-major (w, h) one.
    return categories[cid], mask_utils.decode(rle).T.view(bool), clipped


def _checked_polygons(rings: list, w: int, h: int) -> tuple[list[list[float]], bool]:
    """The rings to rasterise, and whether any ran more than TOLERANCE_PX past the border.

    pycocotools clips a polygon to the image as it rasterises, so rings go to it as written,
    and the mask is exactly `annToMask`; only rings reaching further out than the image is
    large are cut first, at that distance, to bound pycocotools' work (it walks every edge at
    5x resolution, so a point at 1e9 would exhaust memory); that cut is far outside the image.
    """
    out, clipped = [], False
    for k, ring in enumerate(rings):
        which = f"polygon {k + 1}" if len(rings) > 1 else "polygon"
        if not isinstance(ring, list) or not all(type(v) in (int, float) for v in ring):
            raise BadAnnotation("malformed polygon: expected a flat list of numbers x1,y1,x2,y2,...")
        if len(ring) % 2:
            raise BadAnnotation(f"malformed polygon: odd number of coordinates ({len(ring)})")
        if len(ring) < 6:
            raise BadAnnotation(f"{which} has {len(ring) // 2} points, needs at least 3")
        xy = np.asarray(ring, dtype=np.float64).reshape(-1, 2)
        if not np.isfinite(xy).all():
            x, y = xy[~np.isfinite(xy).all(axis=1)][0]
            raise BadAnnotation(f"{which} has a point that is not a finite number ({x:g}, {y:g})")
        if _flat(xy):
            raise BadAnnotation(f"{which} has zero area (its points lie on one line)")
        size = np.array([w, h], np.float64)
        if (xy >= 0).all() and (xy <= size).all():
            out.append(ring)
            continue
        if _flat(clip_ring(xy, 0.0, 0.0, w, h)):
            x, y = xy[0]
            raise BadAnnotation(f"{which} lies wholly outside the {w}x{h} image (first point ({x:g}, {y:g}))")
        clipped |= bool(((xy < -TOLERANCE_PX) | (xy > size + TOLERANCE_PX)).any())
        reach = float(max(w, h))
        if ((xy < -reach) | (xy > size + reach)).any():
            ring = clip_ring(xy, -reach, -reach, w + reach, h + reach).ravel().tolist()
        out.append(ring)
    return out, clipped


def _flat(xy: np.ndarray) -> bool:
    """Fewer than 3 points, or all on one line: a polygon without area."""
    if len(xy) < 3:
        return True
    d = xy[1:] - xy[0]
    far = d[np.argmax(np.abs(d).sum(axis=1))]
    cross = d[:, 0] * far[1] - d[:, 1] * far[0]
    return bool(np.abs(cross).max() < 1e-6)


def _checked_rle(seg: dict, w: int, h: int) -> dict:
    size, counts = seg.get("size"), seg.get("counts")
    if not (isinstance(size, list) and len(size) == 2 and all(type(v) is int for v in size)):
        raise BadAnnotation("malformed RLE: 'size' must be [height, width]")
    if size != [h, w]:
        raise BadAnnotation(f"RLE size {size[1]}x{size[0]} differs from the {w}x{h} image")
    if isinstance(counts, list):
        if not all(type(v) is int and v >= 0 for v in counts):
            raise BadAnnotation("malformed RLE: counts must be non-negative integers")
        covered, rle = sum(counts), mask_utils.frPyObjects({"size": size, "counts": counts}, h, w)
    elif isinstance(counts, str):
        covered, rle = sum(_rle_string_counts(counts)), {"size": size, "counts": counts}
    else:
        raise BadAnnotation("malformed RLE: 'counts' must be a list or a string")
    # pycocotools writes past its buffer when counts overrun the image, so check first.
    if covered != h * w:
        raise BadAnnotation(f"malformed RLE: counts cover {covered} pixels, the image has {h * w}")
    return rle


def _rle_string_counts(s: str) -> list[int]:
    """Decode COCO's compressed RLE string (LEB128-like, deltas from two runs back), as
    pycocotools' rleFrString does, but refusing malformed input instead of reading past it."""
    counts: list[int] = []
    p = 0
    while p < len(s):
        x = k = 0
        more = True
        while more:
            if p >= len(s):
                raise BadAnnotation("malformed RLE: counts string ends mid-number")
            c = ord(s[p]) - 48
            if not 0 <= c < 64:
                raise BadAnnotation(f"malformed RLE: bad character {s[p]!r} in counts")
            x |= (c & 0x1F) << (5 * k)
            more = bool(c & 0x20)
            p, k = p + 1, k + 1
            if not more and c & 0x10:
                x |= -1 << (5 * k)
        if len(counts) > 2:
            x += counts[-2]
        if x < 0:
            raise BadAnnotation("malformed RLE: negative run length")
        counts.append(x)
    return counts


def _render(masks: list[tuple[str, np.ndarray]], h: int, w: int):
    """Paint masks in order; return (label map, labels, regions).

    Works on transposed (w, h) arrays: pycocotools decodes column-major, and its transpose is
    row-major, which makes painting and counting ~6x faster than on the column-major masks.
    """
    slots: dict[str, int] = {}  # concept -> value, in first-annotation order
    unions: dict[str, np.ndarray] = {}
    labelmap_t = np.zeros((w, h), np.uint8)
    overlapped = 0  # pixels a later annotation of another concept painted over (datasets/shapes.py)
    for concept, mask_t in masks:
        slot = slots.setdefault(concept, len(slots) + 1)
        if slot > 254:  # 255 is the ignore value
            raise BadAnnotation("more than 254 concepts in one image")
        under = labelmap_t[mask_t]
        overlapped += int(np.count_nonzero((under != 0) & (under != slot)))
        labelmap_t[mask_t] = slot
        unions[concept] = unions[concept] | mask_t if concept in unions else mask_t
    visible = {c: np.count_nonzero(labelmap_t == slot) for c, slot in slots.items()}
    # Renumber so values stay 1..N when a concept is entirely hidden by later annotations.
    lut = np.zeros(256, np.uint8)
    labels = {}
    for concept, slot in slots.items():
        if visible[concept]:
            labels[len(labels) + 1] = concept
            lut[slot] = len(labels)
    if len(labels) != len(slots):
        labelmap_t = lut[labelmap_t]
    regions = []
    for concept, union_t in unions.items():
        area = np.count_nonzero(union_t)
        if area == 0:
            continue  # degenerate polygons: nothing to label
        # The label-map pixels of a concept are a subset of its union, so equal counts mean
        # equal masks: only a concept partly hidden by a later one needs its own mask.
        exact = visible[concept] == area
        regions.append(Region(concept, area, bbox_of(union_t.T), None if exact else png_bytes(union_t.T)))
    return np.ascontiguousarray(labelmap_t.T), labels, tuple(regions), overlapped
