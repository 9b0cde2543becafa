"""The local backend's record of files it has validated and stored: what lets a re-run of an
upload read only the files that changed (datasets/filefacts.py says when a file is unchanged).

One row per file path in the store's `file_facts` table: the file's stamp when it was read,
when the reading began, its sha256 and the facts validation established. A row is used only
when every check passes, else the file is simply read again:
- its checksum matches its other columns (a garbled, truncated or hand-edited row fails);
- it was written under the same validation rules (RULES);
- the file's stamp now is the stamp recorded, and the file was not "racy" then;
- the facts parse into the exact shape expected;
- the content it vouches for is in this store: the image blob, the stored label map blob. So
  the record only ever saves reading files whose validated bytes are already stored; it can
  never make the store hold bytes nobody hashed.
Rows are written after the items' blobs and rows are, and failing to write them never fails
an upload: the record is an optimisation.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import sqlite3
from collections.abc import Iterable

from segcli.backends.local.db import select_in
from segcli.backends.local.store import Store
from segcli.core.stamps import Stamp, stamp_of
from segcli.datasets.filefacts import ImageFile, KnownMask, KnownRender, MaskFacts, Observed
from segcli.datasets.items import LabeledItem, Region

log = logging.getLogger(__name__)

# Bump when validation changes what a valid file is or what its facts mean: older rows are
# then ignored (and replaced as files are read again).
RULES = 1
_SHA = re.compile(r"[0-9a-f]{64}")


class FileCache:
    """KnownFiles (datasets/filefacts.py) over the local store."""

    def __init__(self, store: Store):
        self.store = store

    # -- reading -------------------------------------------------------------------------
    def images(self, paths: Iterable[str]) -> dict[str, ImageFile]:
        found = {}
        for path, sha, facts in self._verified(paths, "image"):
            info = _image(sha, facts)
            if info is not None and self.store.blobs.has(info.sha256):
                found[path] = info
        return found

    def masks(self, paths: Iterable[str]) -> dict[str, KnownMask]:
        found = {}
        for path, sha, facts in self._verified(paths, "mask"):
            mask = _mask(sha, facts)
            stored = None if mask is None else self.store.blobs.find(mask.labelmap_sha256)
            if stored is not None:
                found[path] = KnownMask(mask, stored)
        return found

    def _verified(self, paths: Iterable[str], kind: str) -> Iterable[tuple[str, str, object]]:
        """(path, sha256, parsed facts) of rows that pass every check but the store's. Only
        files with a row are stat'ed (now, as the lookup vouches for them): a first upload
        stats none."""
        for row in self._rows(list(paths)):
            path, row_kind, stamp, read_at, sha, facts_json, checksum = row
            try:
                if checksum != _checksum(path, row_kind, stamp, read_at, sha, facts_json):
                    continue
                now = stamp_of(path)
                if row_kind != kind or now is None or stamp != _stamp_text(now) or now.racy(read_at):
                    continue
                yield path, sha, json.loads(facts_json)
            except (TypeError, ValueError, KeyError, RecursionError):
                continue  # a value of the wrong type: a row no version of segcli wrote

    def _rows(self, paths: list[str]) -> list[tuple]:
        try:
            rows = select_in(
                self.store.db,
                "SELECT path, kind, stamp, read_at_ns, sha256, facts_json, checksum FROM file_facts WHERE path IN",
                paths,
            )
        except sqlite3.DatabaseError as e:  # a damaged table costs the speed-up, not the upload
            log.debug("file facts unreadable, reading every file: %s", e)
            return []
        return [tuple(r) for r in rows]

    def renders(self, keys: Iterable[str]) -> dict[str, KnownRender]:
        found = {}
        keys = list(keys)
        try:
            rows = select_in(self.store.db, "SELECT key, facts_json, checksum FROM label_renders WHERE key IN", keys)
        except sqlite3.DatabaseError as e:
            log.debug("label renders unreadable, drawing every label map: %s", e)
            return {}
        for key, facts_json, checksum in rows:
            try:
                if checksum != _checksum(key, "render", "", 0, "", facts_json):
                    continue
                render = self._render(json.loads(facts_json))
            except (TypeError, ValueError, KeyError, RecursionError, OSError):
                continue
            if render is not None:
                found[key] = render
        return found

    def _render(self, doc) -> KnownRender | None:
        """The drawing a row describes, its region masks read from the store; None unless every
        part is well-formed and stored."""
        if set(doc) - {"overlapped"} != {"labelmap", "labels", "regions", "clipped"} or not _SHA.fullmatch(
            doc["labelmap"]
        ):
            return None
        labelmap = self.store.blobs.find(doc["labelmap"])
        if labelmap is None:
            return None
        labels = {_count(v): name for v, name in doc["labels"] if isinstance(name, str)}
        if len(labels) != len(doc["labels"]) or not all(1 <= v <= 254 for v in labels):
            return None
        regions = []
        for concept, area, x, y, w, h, mask in doc["regions"]:
            if not isinstance(concept, str) or (
                mask is not None and not (isinstance(mask, str) and _SHA.fullmatch(mask))
            ):
                return None
            png = None
            if mask is not None:
                stored = self.store.blobs.find(mask)
                if stored is None:
                    return None
                png = stored.read_bytes()
            regions.append(Region(concept, _count(area, 1), (_count(x), _count(y), _count(w, 1), _count(h, 1)), png))
        return KnownRender(
            doc["labelmap"], labelmap, labels, tuple(regions), _count(doc["clipped"]), _count(doc.get("overlapped", 0))
        )

    # -- writing -------------------------------------------------------------------------
    def remember(self, items: Iterable[LabeledItem]) -> int:
        """Record what was read (and drawn) to make `items`, whose content the store now holds."""
        items = list(items)
        try:
            rows = [_row(seen) for item in items for seen in item.observed]
            renders = [_render_row(item) for item in items if item.render_key]
            if not rows and not renders:
                return 0
            with self.store.tx() as db:
                db.executemany(
                    "INSERT OR REPLACE INTO file_facts(path, kind, stamp, read_at_ns, sha256,"
                    " facts_json, checksum) VALUES (?,?,?,?,?,?,?)",
                    rows,
                )
                db.executemany(
                    "INSERT OR REPLACE INTO label_renders(key, facts_json, checksum) VALUES (?,?,?)", renders
                )
        except (sqlite3.Error, OSError, TypeError, ValueError) as e:
            log.debug("could not record file facts (the next upload reads every file): %s", e)
            return 0
        return len(rows) + len(renders)


def _row(seen: Observed) -> tuple:
    facts = seen.facts
    kind = "mask" if isinstance(facts, MaskFacts) else "image"
    facts_json = _facts_json(facts)
    stamp = _stamp_text(seen.stamp)
    return (
        seen.path,
        kind,
        stamp,
        seen.read_at_ns,
        facts.sha256,
        facts_json,
        _checksum(seen.path, kind, stamp, seen.read_at_ns, facts.sha256, facts_json),
    )


def _render_row(item: LabeledItem) -> tuple:
    """The drawing of a COCO item: its label map and region masks are blobs (by their hash)."""
    regions = [
        [
            r.concept,
            int(r.area),
            *map(int, r.bbox),
            None if r.mask_png is None else hashlib.sha256(r.mask_png).hexdigest(),
        ]
        for r in item.regions
    ]
    doc = {
        "labelmap": item.labelmap_sha256 or hashlib.sha256(item.labelmap_bytes()).hexdigest(),
        "labels": [[int(v), name] for v, name in sorted(item.labels.items())],
        "regions": regions,
        "clipped": int(item.clipped),
    }
    if item.overlapped:
        doc["overlapped"] = int(item.overlapped)
    facts_json = _compact_json(doc)
    return item.render_key, facts_json, _checksum(item.render_key, "render", "", 0, "", facts_json)


def _facts_json(facts: ImageFile | MaskFacts) -> str:
    """What validation established, as the compact JSON _image and _mask parse. Formatted
    here, not by json: every value is an int or a hex digest, and the encoder's ~5 us a call
    was a third of remembering a 1,000-pair upload, which the user waits for."""
    if isinstance(facts, MaskFacts):
        areas = ",".join("[%d,%d]" % pair for pair in sorted(facts.areas.items()))
        boxes = ",".join("[%d,%d,%d,%d,%d]" % (v, *box) for v, box in sorted(facts.bboxes.items()))
        return '{"width":%d,"height":%d,"labelmap":"%s","areas":[%s],"bboxes":[%s]}' % (
            facts.width,
            facts.height,
            _hex(facts.labelmap_sha256),
            areas,
            boxes,
        )
    return '{"width":%d,"height":%d,"orientation":%d}' % (facts.width, facts.height, facts.orientation)


def _hex(digest: str) -> str:
    if not _SHA.fullmatch(digest):
        raise ValueError(f"not a sha256 digest: {digest!r}")
    return digest


# One encoder for every row: json.dumps with separators builds a new one per call.
_compact_json = json.JSONEncoder(separators=(",", ":")).encode


def _stamp_text(stamp: Stamp) -> str:
    return f"{stamp.size}:{stamp.mtime_ns}:{stamp.ctime_ns}:{stamp.ino}:{stamp.dev}"


def _checksum(path: str, kind: str, stamp: str, read_at: int, sha: str, facts_json: str) -> str:
    text = "\x1f".join((str(RULES), path, kind, stamp, str(read_at), sha, facts_json))
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def _count(value, low: int = 0) -> int:
    if type(value) is not int or value < low:
        raise ValueError(value)
    return value


def _image(sha: str, doc) -> ImageFile | None:
    try:
        if not _SHA.fullmatch(sha) or set(doc) != {"width", "height", "orientation"}:
            return None
        orientation = _count(doc["orientation"], 1)
        if orientation > 8:
            return None
        return ImageFile(sha, _count(doc["width"], 1), _count(doc["height"], 1), orientation)
    except (TypeError, ValueError):
        return None


def _mask(sha: str, doc) -> MaskFacts | None:
    try:
        if not _SHA.fullmatch(sha) or set(doc) != {"width", "height", "labelmap", "areas", "bboxes"}:
            return None
        width, height = _count(doc["width"], 1), _count(doc["height"], 1)
        labelmap = doc["labelmap"]
        if not isinstance(labelmap, str) or not _SHA.fullmatch(labelmap):
            return None
        areas = {_count(v): _count(n, 1) for v, n in doc["areas"]}
        bboxes = {_count(v): (_count(x), _count(y), _count(w, 1), _count(h, 1)) for v, x, y, w, h in doc["bboxes"]}
        labelled = {v for v in areas if v not in (0, 255)}
        if (
            max(areas, default=0) > 255
            or sum(areas.values()) != width * height
            or set(bboxes) != labelled
            or any(x + w > width or y + h > height for x, y, w, h in bboxes.values())
        ):
            return None
        return MaskFacts(sha, width, height, areas, bboxes, labelmap)
    except (TypeError, ValueError):
        return None
