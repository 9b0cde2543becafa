"""Read a YOLO segmentation dataset (Ultralytics, Roboflow's "YOLOv8" exports) into validated items.

Layouts (Ultralytics' rule: a label file is the image's path with the last `images` folder
replaced by `labels` and the suffix by `.txt`):
- `images/` + `labels/`, flat or with split folders (`images/train`, `labels/train`, ...);
- Roboflow: `train/images` + `train/labels`, `valid/...`, `test/...`;
- a `data.yaml` (or any `*.yaml` with `names`) at the root: `names` as a list or as a dict
  {index: name}; `path`/`train`/`val`/`test` are not needed (every image below the root is read).
Each label line is `class x1 y1 x2 y2 ...`: a polygon in coordinates normalised to the image's
width and height (0..1). Lines of exactly 5 numbers are detection boxes, not segmentation: the
item is invalid (train a segmentation model from polygons). An image without a label file is all
background (Ultralytics reads it so). Polygons are drawn in file order, the later winning.
The class order is `names` (every class, used or not).

Ultralytics' semantic-segmentation datasets (`yolo semseg`) say `masks_dir: masks` in the YAML
(or have masks/ beside it and no labels/, which Ultralytics reads the same way): then each
image's label is an index PNG (or .bmp, .tif) of the same stem, at its path with the last
`images` folder replaced by `masks_dir`; pixel value i is `names[i]` after the YAML's
`label_mapping` (class 0 included: it is a class there, not background, unless it is named
"background"; with a single name, 0 is background and 1 the class), 255 is ignore. A value
neither lists makes the item invalid, named (ultralytics/data/dataset.py SemanticDataset).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

from segcli.core.classes import BACKGROUND, IGNORE_INDEX
from segcli.datasets.filefacts import KnownFiles, Stash
from segcli.datasets.items import InvalidItem, ReadResult
from segcli.datasets.reading import Progress, require_dir
from segcli.datasets.shapes import Drawing, Shape, drawing_key, file_digest, read_drawings
from segcli.datasets.sources import BadSource, read_lines, read_text, walk_files

HINT = "expected a YOLO dataset: images/ and labels/ (or train/images, train/labels) and data.yaml with names"


def find_yaml(root: Path) -> Path | None:
    for name in ("data.yaml", "data.yml", "dataset.yaml"):
        if (root / name).is_file():
            return root / name
    found = sorted(p for p in root.glob("*.y*ml") if p.is_file())
    return found[0] if len(found) == 1 else None


MASK_SUFFIXES = (".png", ".PNG", ".bmp", ".tif")  # Ultralytics' semantic-segmentation masks


def dataset_yaml(root: Path) -> tuple[Path, Any]:
    """The dataset YAML's path and its document."""
    import yaml

    from segcli.core import safeyaml
    from segcli.core.errors import InvalidInputError

    path = find_yaml(root)
    if path is None:
        raise InvalidInputError(f"no data.yaml in {root}: YOLO label files name classes by index only", hint=HINT)
    try:
        return path, safeyaml.safe_load(read_text(path))  # bounded: no alias bomb (core/safeyaml.py)
    except (BadSource, yaml.YAMLError) as e:
        raise InvalidInputError(f"{path} cannot be read: {getattr(e, 'reason', e)}", hint=HINT) from None


def masks_dir(root: Path) -> Optional[str]:
    """`_masks_dir` of the folder's YAML, None when it has none or it cannot be read (format
    detection asks this; read_yolo then says why it cannot be read)."""
    if find_yaml(root) is None:
        return None
    try:
        _, doc = dataset_yaml(root)
    except Exception:  # noqa: BLE001 - unreadable: read_yolo says why
        return None
    return _masks_dir(root, doc)


def _masks_dir(root: Path, doc: Any) -> Optional[str]:
    """Where Ultralytics' semantic-segmentation masks are: the YAML's `masks_dir`, else masks/
    when it exists beside the YAML (Ultralytics picks its PNG-mask dataset so); None: polygons."""
    if not isinstance(doc, dict) or "names" not in doc:
        return None  # not a dataset YAML (a training config beside a masks folder, say)
    value = doc.get("masks_dir")
    if isinstance(value, str) and value.strip().strip("/"):
        return value.strip().strip("/")
    # masks/ without the key: Ultralytics' choice, unless the folder is segcli's own images/ +
    # masks/ + classes.txt layout, where value 0 is background (detect then asks which)
    implicit = (root / "masks").is_dir() and not (root / "labels").is_dir() and not (root / "classes.txt").exists()
    return "masks" if implicit else None


def _mask_values(path: Path, doc: Any, names: list[str]) -> dict[int, Optional[str]]:
    """Pixel value -> concept ("" background, None ignore) of Ultralytics' masks: value i is
    names[i] after the YAML's `label_mapping` {raw: id, 255 / "ignore_label" / null: ignore};
    with one name (binary), 0 is background and 1 the class; 255 is ignore."""
    from segcli.core.errors import InvalidInputError

    raw = doc.get("label_mapping") if isinstance(doc, dict) else None
    mapping: dict[int, int] = {}
    if raw is not None:
        if not isinstance(raw, dict):
            raise InvalidInputError(f"{path}: label_mapping must map mask values to class ids", hint=HINT)
        try:
            for key, to in raw.items():
                to = to.strip() if isinstance(to, str) else to
                mapping[int(key)] = IGNORE_INDEX if to is None or to == "ignore_label" else int(to)
        except (TypeError, ValueError):
            raise InvalidInputError(f"{path}: label_mapping must map mask values to class ids", hint=HINT) from None
    classes = [""] + names if len(names) == 1 else names
    by_id: dict[int, Optional[str]] = {i: ("" if n in ("", BACKGROUND) else n) for i, n in enumerate(classes)}
    by_id[IGNORE_INDEX] = None
    table = {}
    for value in range(256):
        to = mapping.get(value, value)
        if to in by_id:
            table[value] = by_id[to]
    return table


def _class_names(path: Path, doc: Any) -> list[str]:
    """names from the dataset YAML (at `path`): a list, or a dict {index: name} (indices 0..N-1)."""
    from segcli.core.errors import InvalidInputError

    names = doc.get("names") if isinstance(doc, dict) else None
    if isinstance(names, dict):
        try:
            by_index = {int(k): str(v) for k, v in names.items()}
        except (TypeError, ValueError):
            raise InvalidInputError(f"{path}: names keys must be class indices", hint=HINT) from None
        if sorted(by_index) != list(range(len(by_index))):
            raise InvalidInputError(f"{path}: names must number classes 0..{len(by_index) - 1}", hint=HINT)
        names = [by_index[k] for k in range(len(by_index))]
    if not isinstance(names, list) or not names or not all(isinstance(n, (str, int)) for n in names):
        raise InvalidInputError(f"{path} has no 'names' list or dict", hint=HINT)
    names = [str(n).strip() for n in names]
    if len(set(names)) != len(names) or "" in names:
        raise InvalidInputError(f"{path}: names must be distinct and not blank", hint=HINT)
    return names


def label_path(root: Path, image: Path, folder: str = "labels", suffix: str = ".txt") -> Path:
    """Ultralytics' rule: the image's path with its last `images` folder replaced by `folder`."""
    parts = list(image.relative_to(root).parts)
    for k in range(len(parts) - 2, -1, -1):
        if parts[k] == "images":
            parts[k] = folder
            break
    return (root.joinpath(*parts)).with_suffix(suffix)


def image_files(root: Path) -> list[Path]:
    return [p for p in walk_files(root) if "images" in p.relative_to(root).parts[:-1]]


def read_yolo(
    root: Path,
    on_progress: Progress | None = None,
    workers: int | None = None,
    known: KnownFiles | None = None,
    stash: Stash | None = None,
) -> ReadResult:
    root = require_dir(root, "YOLO dataset folder", hint=HINT)
    path, doc = dataset_yaml(root)  # read once: names, masks_dir and label_mapping come from it
    names = _class_names(path, doc)
    masks = _masks_dir(root, doc)
    values = _mask_values(path, doc, names) if masks is not None else {}
    drawings, invalid = [], []
    for image in image_files(root):
        name = image.relative_to(root).as_posix()
        try:
            drawings.append(
                _drawing(root, image, name, names) if masks is None else _mask(root, image, name, values, masks)
            )
        except BadSource as e:
            invalid.append(InvalidItem(name, e.reason))
    result = read_drawings(drawings, known, stash, workers, on_progress, invalid)
    result.format = "yolo"
    result.class_order = [n for n in names if n != BACKGROUND]
    return result


def _mask(root: Path, image: Path, name: str, values: dict[int, Optional[str]], folder: str) -> Drawing:
    """An Ultralytics semantic-segmentation item: the index mask at the image's path in `folder`."""
    candidates = [label_path(root, image, folder, suffix) for suffix in MASK_SUFFIXES]
    mask = next((p for p in candidates if p.is_file()), None)
    if mask is None:
        raise BadSource(f"no mask {candidates[0].relative_to(root).as_posix()} (masks_dir: {folder})")
    try:
        digest = file_digest(mask)
    except OSError as e:
        raise BadSource(f"cannot read {mask.name}: {e.strerror or e}") from None
    return Drawing(
        name=name,
        image_path=str(image),
        size=None,
        shapes=(Shape(None, raster=(str(mask), values, None)),),
        key=drawing_key("yolo-masks", None, [digest, sorted(values.items())]),
    )


def _drawing(root: Path, image: Path, name: str, names: list[str]) -> Drawing:
    labels = label_path(root, image)
    polygons = []
    if labels.is_file():
        for n, line in enumerate(read_lines(labels), start=1):
            if not line:
                continue
            fields = line.split()
            try:
                cls, values = int(fields[0]), [float(v) for v in fields[1:]]
            except ValueError:
                raise BadSource(f"{labels.name} line {n}: not a class index and numbers") from None
            if not 0 <= cls < len(names):
                raise BadSource(f"{labels.name} line {n}: class {cls} is not in names (0..{len(names) - 1})")
            if len(values) == 4:
                raise BadSource(f"{labels.name} line {n}: a detection box, not a segmentation polygon")
            if len(values) < 6 or len(values) % 2:
                raise BadSource(f"{labels.name} line {n}: a polygon needs 3 or more x y pairs")
            if any(v < -0.01 or v > 1.01 for v in values):
                raise BadSource(f"{labels.name} line {n}: coordinates must be normalised to 0..1")
            polygons.append((names[cls], tuple(values)))
    shapes = tuple(Shape(concept, rings=(ring,), scaled=True) for concept, ring in polygons)
    return Drawing(
        name=name,
        image_path=str(image),
        size=None,
        shapes=shapes,
        key=drawing_key("yolo", None, [[c, list(r)] for c, r in polygons]),
    )
