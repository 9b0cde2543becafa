"""`segcli dataset preview`: a contact sheet of a dataset's images with their ground truth.

What the sheet shows is what training sees: images decoded as displayed (EXIF orientation,
datasets/imagefile.open_rgb), label-map values mapped to classes through the same lookup table
(datasets/labels.class_lut), and the colours predict gives those classes (render/palette.py
derives a colour from the set of class names, so the same concepts get the same colours).

- Without --concepts every concept is drawn, coloured as for a model trained on all of them
  (the version's concepts, or the dataset's now: what `train --dataset` would train).
- With --concepts a,b only images containing a or b are picked, and only a and b are drawn,
  coloured as for `train --concepts a,b`: the other concepts are background, as that training
  reads them.

Items are streamed, never all held: without --seed the sheet shows the first N items in the
stored order (inputs are named by a hash of their bytes, so that is an arbitrary but fixed
sample, and reading stops after N); --seed S draws N of them at random, reading up to the last
one drawn (with --concepts, every item, since which ones match is only known by reading them).
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Optional

from segcli.backends.base import Backend, DatasetItem
from segcli.core.errors import InvalidInputError, NotFoundError
from segcli.core.files import require_parent
from segcli.render.progress import Counter

Keep = Callable[[DatasetItem], bool]


def sample(
    items: Iterable[DatasetItem], total: int, n: int, seed: Optional[int], keep: Optional[Keep] = None
) -> list[DatasetItem]:
    """Up to `n` items (those `keep` accepts, if given), in stored order; see the module
    docstring. `total` = how many items `items` yields (the dataset's input count)."""
    if seed is None:
        picked = []
        for item in items:
            if keep is None or keep(item):
                picked.append(item)
                if len(picked) == n:
                    break
        return picked
    rng = random.Random(seed)
    if keep is None:
        return list(_at(items, sorted(rng.sample(range(total), min(n, total)))))
    # Reservoir sampling (algorithm R) over the matching items: one pass, n held at a time.
    reservoir: list[tuple[int, DatasetItem]] = []
    seen = 0
    for index, item in enumerate(items):
        if not keep(item):
            continue
        seen += 1
        if len(reservoir) < n:
            reservoir.append((index, item))
        else:
            slot = rng.randrange(seen)
            if slot < n:
                reservoir[slot] = (index, item)
    return [item for _, item in sorted(reservoir, key=lambda pair: pair[0])]


def _at(items: Iterable[DatasetItem], indices: list[int]) -> Iterator[DatasetItem]:
    """The items at these (sorted) positions; stops reading after the last one."""
    targets = iter(indices)
    target = next(targets, None)
    if target is None:
        return
    for index, item in enumerate(items):
        if index == target:
            yield item
            target = next(targets, None)
            if target is None:
                return


def containing(concepts: Optional[list[str]]) -> Optional[Keep]:
    """A `keep` test: the item's label map has a pixel of one of `concepts` (None: no test)."""
    if not concepts:
        return None
    wanted = set(concepts)

    def has_any(item: DatasetItem) -> bool:
        import numpy as np

        values = [v for v, c in item.labels.items() if c in wanted]
        return bool(values) and bool(np.isin(item.labelmap, values).any())

    return has_any


def tile_of(item: DatasetItem, classes: list[str]):
    """The item as a contact-sheet tile: image as displayed, label map in class indices."""
    import numpy as np

    from segcli.datasets.imagefile import BadFile, open_rgb
    from segcli.datasets.labels import class_lut
    from segcli.render.contact_sheet import Tile

    try:
        image = open_rgb(item.image, item.name)
    except BadFile:
        return Tile(name=item.name, note="cannot decode this image")
    classmap = np.asarray(class_lut(item.labels, classes), dtype=np.uint8)[item.labelmap]
    if classmap.shape != image.shape[:2]:
        return Tile(
            name=item.name,
            image=image,
            note=f"label map {classmap.shape[1]}x{classmap.shape[0]} is not the image's size",
        )
    return Tile(name=item.name, image=image, classmap=classmap)


def preview(
    backend: Backend,
    app_id: str,
    dataset_id: str,
    version_id: Optional[str],
    path: Path,
    *,
    n: int = 16,
    concepts: Optional[list[str]] = None,
    seed: Optional[int] = None,
    tile_size: int = 256,
    progress_mode: str = "off",
) -> dict[str, Any]:
    """Write the contact sheet to `path` (PNG); return what it shows (the JSON of the command)."""
    from segcli.core.classes import BACKGROUND
    from segcli.core.files import write_atomic
    from segcli.render.contact_sheet import present, render_sheet
    from segcli.render.palette import colors_for

    _check_path(path)
    if version_id is not None:
        version = backend.get_dataset_version(app_id, dataset_id, version_id)
        total, in_data, order = version.inputs, list(version.concepts), list(version.classes)
    else:
        total = backend.get_dataset(app_id, dataset_id).inputs
        in_data = backend.dataset_concepts(app_id, dataset_id)
        order = backend.dataset_classes(app_id, dataset_id)
    if total == 0:
        raise InvalidInputError(
            f"dataset '{dataset_id}' has no inputs to preview",
            hint=f"segcli dataset upload {dataset_id} --app {app_id} ...",
        )
    unknown = [c for c in concepts or [] if c not in in_data]
    if unknown:
        where = f"dataset version {version_id}" if version_id else f"dataset '{dataset_id}'"
        raise InvalidInputError(
            f"no concept {', '.join(unknown)} in {where} (it has: {', '.join(in_data) or 'none'})",
            hint=f"segcli dataset show {dataset_id} --app {app_id}  (concepts and their images)",
        )
    # The classes (and so the colours) a model trained on the dataset, or on --concepts, gets.
    classes = order if not concepts else [BACKGROUND, *(c for c in order if c in concepts)]
    items = backend.iter_dataset_items(app_id, dataset_id, version_id)
    keep = containing(concepts)
    # How many items will be read: N from the start, or (seeded, filtered) up to all of them.
    reads = min(n, total) if seed is None and keep is None else total
    with Counter("reading images", reads, progress_mode) as counter:
        picked = sample(_counted(items, counter), total, n, seed, keep)
    if not picked:
        raise NotFoundError(
            f"no image of dataset '{dataset_id}' contains {' or '.join(concepts or [])}",
            hint=f"segcli dataset show {dataset_id} --app {app_id}  (images per concept)",
        )
    tiles = [tile_of(item, classes) for item in picked]
    title = _title(app_id, dataset_id, version_id, len(picked), total, concepts, seed)
    sheet = render_sheet(tiles, classes, tile_size, title)
    write_atomic(path, lambda fh: sheet.save(fh, format="PNG"))
    shown, ignore = present(tiles, len(classes))
    colors = colors_for(classes)
    return {
        "path": str(path),
        "dataset_id": dataset_id,
        "dataset_version_id": version_id,
        "images": len(picked),
        "concepts": [classes[i] for i in shown],
        "colors": {classes[i]: "#%02x%02x%02x" % tuple(colors[i]) for i in shown},
        "ignore_pixels": ignore,
        "width": sheet.width,
        "height": sheet.height,
        "items": [{"input_id": item.input_id, "name": item.name} for item in picked],
    }


def _counted(items: Iterable[DatasetItem], counter: Counter) -> Iterator[DatasetItem]:
    for item in items:
        counter.advance()
        yield item


def _title(
    app_id: str,
    dataset_id: str,
    version_id: Optional[str],
    shown: int,
    total: int,
    concepts: Optional[list[str]],
    seed: Optional[int],
) -> str:
    parts = [
        f"{dataset_id}" + (f" @ {version_id}" if version_id else "") + f" (app {app_id})",
        f"{shown} of {total} images" + (f" with {' or '.join(concepts)}" if concepts else ""),
    ]
    if seed is not None:
        parts.append(f"seed {seed}")
    return "  ·  ".join(parts)


def _check_path(path: Path) -> None:
    if path.suffix.lower() != ".png":
        raise InvalidInputError(
            f"{path} is not a .png file name: the contact sheet is a PNG", hint=f"-f {path.with_suffix('.png')}"
        )
    require_parent(path)
