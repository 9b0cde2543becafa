"""Domain records shared by both backends. JSON shapes come from `to_dict()`: scripts depend on them."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


class Record:
    def to_dict(self) -> dict[str, Any]:
        return asdict(self)  # type: ignore[call-overload]


@dataclass
class App(Record):
    id: str
    created_at: str
    datasets: int = 0
    models: int = 0


@dataclass
class Concept(Record):
    id: str
    name: str


@dataclass
class Dataset(Record):
    id: str
    app_id: str
    created_at: str
    inputs: int = 0
    versions: int = 0


@dataclass
class DatasetVersion(Record):
    id: str
    dataset_id: str
    app_id: str
    created_at: str
    inputs: int = 0
    concepts: list[str] = field(default_factory=list)  # those its labels use, in class order
    # Class i of the version (core/classes.py): background first, then the dataset's order.
    classes: list[str] = field(default_factory=list)
    # COCO category id of each concept uploaded from COCO (export gives them back).
    category_ids: dict[str, int] = field(default_factory=dict)


@dataclass
class UploadResult(Record):
    added: int
    skipped: int
    invalid: int
    updated: int = 0
    valid: int = 0
    clipped: int = 0  # COCO annotations whose polygons ran past the image border (clipped to it)
    dataset_id: str = ""
    concepts: list[str] = field(default_factory=list)
    invalid_items: list[dict[str, str]] = field(default_factory=list)
    dry_run: bool = False
    classes: list[str] = field(default_factory=list)  # the dataset's class order after the upload
    format: str = ""  # the label format read (coco, masks, labelme, yolo, voc, labelstudio, cityscapes, cvat)
    overlapped_pixels: int = 0  # pixels a later shape of another concept painted over (datasets/shapes.py)


@dataclass
class Model(Record):
    id: str
    app_id: str
    model_type_id: str
    created_at: str
    versions: int = 0
    latest_version: str | None = None


# Training statuses: core/statuses.py (imported here for the modules that take them from here).
from segcli.core.statuses import CANCELLED, FINAL as FINAL_STATUSES, QUEUED, TRAINED, TRAINING, TRAINING_FAILED  # noqa: E402, F401


@dataclass
class ModelVersion(Record):
    id: str
    model_id: str
    app_id: str
    status: str
    template: str
    created_at: str
    message: str = ""
    dataset_id: str | None = None
    dataset_version_id: str | None = None
    concepts: list[str] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)
    epoch: int = 0
    epochs: int = 0
    metrics: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)  # one entry per finished epoch
    progress: dict[str, Any] = field(default_factory=dict)  # live: step, loss, img/s, eta_s
    # Class i of the model (background first) and how that relates to its dataset version's
    # order: core/classes.py DATASET | SUBSET | LEGACY | SERVER.
    classes: list[str] = field(default_factory=list)
    class_order: str = ""

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATUSES
