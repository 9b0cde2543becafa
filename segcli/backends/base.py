"""The Backend: the rules every backend follows, over small primitives each backend implements.

Public methods (what services and commands call) hold the shared rules: ids are checked,
existence is checked and reported with one message per situation (backends/refusals.py),
"the latest version" means the same thing everywhere, and state checks (cancel, resume,
predict) refuse the same way. They call `_private` primitives that only store and fetch:

- a getter returns the record, or None when it (or its parent) does not exist;
- a lister returns the records (oldest first where order matters), or None when the parent
  does not exist;
- a creator returns False when the record already existed (None when the parent does not);
- everything else runs after the rules passed, so it can assume its subjects exist.

A new backend implements the primitives marked @abstractmethod and adds one entry to
backends/registry.py; the contract suite (tests/test_contract.py) then runs against it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from contextlib import nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, ContextManager, Iterator, NamedTuple, Optional, TypeVar

from segcli.backends import refusals
from segcli.core import classes as order_rules
from segcli.core.classes import BACKGROUND
from segcli.core.entities import TRAINED, App, Concept, Dataset, DatasetVersion, Model, ModelVersion, UploadResult
from segcli.core.ids import check_id
from segcli.core.statuses import RESUMABLE

if TYPE_CHECKING:  # numpy costs ~45 ms at import: metadata commands never need it
    import numpy as np

    from segcli.core.segmentation import Segmenter
    from segcli.core.templates import Template
    from segcli.datasets.filefacts import KnownFiles, Stash
    from segcli.datasets.items import ReadResult

# The constant list Clarifai's SDK returns for list_trainable_model_types().
TRAINABLE_MODEL_TYPES = (
    "visual-classifier",
    "visual-detector",
    "visual-segmenter",
    "visual-embedder",
    "clusterer",
    "text-classifier",
    "embedding-classifier",
    "text-to-text",
)
SUPPORTED_MODEL_TYPES = ("visual-segmenter",)

ProgressFn = Callable[[int], None]  # called with the number of items just finished
T = TypeVar("T")


def check_model_type(model_type_id: str) -> None:
    from segcli.core.errors import InvalidInputError

    if model_type_id not in SUPPORTED_MODEL_TYPES:
        known = model_type_id in TRAINABLE_MODEL_TYPES
        raise InvalidInputError(
            f"model type '{model_type_id}' is {'not supported by segcli' if known else 'unknown'}",
            hint="segcli model types  (segcli trains visual-segmenter models)",
        )


class DatasetItem(NamedTuple):
    """One labelled input as stored: what preview, export, statistics and eval read."""

    input_id: str
    name: str  # the file name it was uploaded from (relative to its folder)
    image: bytes  # the stored image file, as uploaded
    labelmap: "np.ndarray"  # HxW uint8: value v is the concept labels[v]; 0 background, 255 ignore
    labels: dict[int, str]  # label-map value -> concept id, for the values present
    # The label map's stored PNG when the backend keeps one (local): export copies it byte for
    # byte where its numbering already is the export's. None where it was rasterised (Clarifai).
    labelmap_png: Optional[bytes] = None


class EvalItem(NamedTuple):
    name: str
    image: "np.ndarray"  # HxWx3 uint8 RGB
    target: "np.ndarray"  # HxW uint8 class indices of the version's classes; 255 = ignore


def _found(value: Optional[T], error: Callable[[], Exception]) -> T:
    if value is None:
        raise error()
    return value


class Backend(ABC):
    name: str = ""
    title: str = ""  # how messages name where the work goes ("Clarifai")
    # The template `segcli train` uses when none is named, and `template list` marks: each
    # backend names its own (core/template_names.py).
    default_template: str
    # Whether training receives the templates' local-only knobs (seed, device, ...).
    accepts_local_params: bool = False
    # Whether trained weights live on this machine (model export; the `_model_dir` primitive).
    exports_weights: bool = False
    # Whether predict can slide windows over an image (--tile): a cloud model takes it whole.
    slides_windows: bool = False
    # whether its trainings write TensorBoard / MLflow logs (`train --log`): a local worker can
    writes_experiment_logs: bool = False
    # How often `train --watch` polls: first interval, backing off to the max.
    watch_interval_s: float = 0.5
    max_watch_interval_s: float = 0.5

    @classmethod
    def from_settings(cls, settings) -> "Backend":
        """Build from resolved settings (segcli.config.Settings); the registry calls this."""
        raise NotImplementedError

    def close(self) -> None:
        """Release connections; called once at exit."""

    # -- apps --------------------------------------------------------------------------
    def create_app(self, app_id: str, exist_ok: bool = False) -> App:
        check_id("app", app_id)
        self._check_created(self._create_app(app_id), app_id, f"app '{app_id}'", exist_ok)
        return self.get_app(app_id)

    def get_app(self, app_id: str) -> App:
        return _found(self._get_app(app_id), lambda: refusals.app_not_found(app_id))

    def list_apps(self) -> list[App]:
        return sorted(self._list_apps(), key=lambda a: a.id)

    def delete_app(self, app_id: str) -> None:
        self.require_app(app_id)
        self._delete_app(app_id)

    def list_concepts(self, app_id: str) -> list[Concept]:
        return _found(self._list_concepts(app_id), lambda: refusals.app_not_found(app_id))

    def require_app(self, app_id: str) -> None:
        if not self._has_app(app_id):
            raise refusals.app_not_found(app_id)

    # -- datasets ----------------------------------------------------------------------
    def create_dataset(self, app_id: str, dataset_id: str, exist_ok: bool = False) -> Dataset:
        check_id("dataset", dataset_id)
        self._check_created(
            self._create_dataset(app_id, dataset_id), app_id, f"dataset '{dataset_id}' in app '{app_id}'", exist_ok
        )
        return self.get_dataset(app_id, dataset_id)

    def get_dataset(self, app_id: str, dataset_id: str) -> Dataset:
        dataset = self._get_dataset(app_id, dataset_id)
        if dataset is None:
            self.require_app(app_id)  # a missing app is the more useful message
            raise refusals.dataset_not_found(app_id, dataset_id)
        return dataset

    def list_datasets(self, app_id: str) -> list[Dataset]:
        found = _found(self._list_datasets(app_id), lambda: refusals.app_not_found(app_id))
        return sorted(found, key=lambda d: d.id)

    def delete_dataset(self, app_id: str, dataset_id: str) -> None:
        self.get_dataset(app_id, dataset_id)
        self._delete_dataset(app_id, dataset_id)

    def upload(
        self, app_id: str, dataset_id: str, data: "ReadResult", on_progress: ProgressFn, region_format: str = "polygon"
    ) -> UploadResult:
        """Write every item of `data` (already validated) exactly once; re-runs add nothing.
        `region_format` (polygon | mask) is how a backend that stores regions sends them
        (Clarifai); one that stores label maps (local) ignores it. The dataset's class order
        is extended first (core/classes.py), so every stored concept has its index."""
        self.get_dataset(app_id, dataset_id)
        order, ids, changed = self._classes_after(app_id, dataset_id, data)
        if changed:
            self._set_dataset_classes(app_id, dataset_id, order, ids)
        result = self._upload(app_id, dataset_id, data, on_progress, region_format)
        result.classes = order_rules.with_background(order)
        return result

    def classes_after(self, app_id: str, dataset_id: str, data: "ReadResult") -> list[str]:
        """The dataset's classes (background first) once `data` is uploaded (for a dry run)."""
        self.get_dataset(app_id, dataset_id)
        return order_rules.with_background(self._classes_after(app_id, dataset_id, data)[0])

    def _classes_after(
        self, app_id: str, dataset_id: str, data: "ReadResult"
    ) -> tuple[list[str], dict[str, int], bool]:
        order, ids = self._dataset_classes(app_id, dataset_id)
        seeded = order
        if not order and self.get_dataset(app_id, dataset_id).inputs:
            # Uploaded before orders were kept: those concepts keep the (sorted) order they trained in.
            seeded = sorted(self._dataset_concepts(app_id, dataset_id))
        new = order_rules.extend(seeded, [*data.class_order, *data.concepts])
        new_ids = dict(ids)
        for name, cid in data.category_ids.items():
            new_ids.setdefault(name, cid)  # a concept keeps the COCO id it first came with
        return new, new_ids, (new != order or new_ids != ids)

    def class_numbering(
        self, app_id: str, dataset_id: str, version_id: Optional[str] = None
    ) -> tuple[list[str], dict[str, int]]:
        """(classes, COCO category ids) of a version, or of the dataset as it is now."""
        if version_id is not None:
            version = self.get_dataset_version(app_id, dataset_id, version_id)
            return list(version.classes), dict(version.category_ids)
        return self.dataset_classes(app_id, dataset_id), self._dataset_classes(app_id, dataset_id)[1]

    def dataset_classes(self, app_id: str, dataset_id: str) -> list[str]:
        """The dataset's class order now: background, the order uploads declared, then any
        concept uploaded before orders were kept (sorted)."""
        self.get_dataset(app_id, dataset_id)
        order, _ = self._dataset_classes(app_id, dataset_id)
        return order_rules.with_background(order, self._dataset_concepts(app_id, dataset_id))

    def upload_staging(self) -> ContextManager[Optional["Stash"]]:
        """A place for an upload's readers to hand the bytes they validated, used by the
        upload that follows within the same `with` (and discarded after it); None if this
        backend has none. Yields the Stash (datasets/filefacts.py)."""
        return nullcontext()

    def known_files(self) -> Optional["KnownFiles"]:
        """What this backend remembers of files it validated and stored before, so that a
        re-run of an upload need not read them again (datasets/filefacts.py); None if nothing."""
        return None

    def create_dataset_version(self, app_id: str, dataset_id: str, description: str = "") -> DatasetVersion:
        if self.get_dataset(app_id, dataset_id).inputs == 0:
            raise refusals.nothing_to_version(app_id, dataset_id)
        order, ids = self._dataset_classes(app_id, dataset_id)
        return self._create_dataset_version(app_id, dataset_id, description, order, ids)

    def list_dataset_versions(self, app_id: str, dataset_id: str) -> list[DatasetVersion]:
        self.get_dataset(app_id, dataset_id)
        return self._list_dataset_versions(app_id, dataset_id)

    def get_dataset_version(self, app_id: str, dataset_id: str, version_id: str) -> DatasetVersion:
        self.get_dataset(app_id, dataset_id)
        return _found(
            self._get_dataset_version(app_id, dataset_id, version_id),
            lambda: refusals.dataset_version_not_found(app_id, dataset_id, version_id),
        )

    def dataset_concepts(self, app_id: str, dataset_id: str) -> list[str]:
        """The concepts the dataset's labels use now, in its class order: what a version made
        now lists, hence the classes `train --dataset` gives a model."""
        self.get_dataset(app_id, dataset_id)
        order, _ = self._dataset_classes(app_id, dataset_id)
        return order_rules.ordered(self._dataset_concepts(app_id, dataset_id), order)

    def iter_dataset_items(
        self, app_id: str, dataset_id: str, version_id: Optional[str] = None
    ) -> Iterator[DatasetItem]:
        """The dataset's labelled inputs (of one version, or as they are now), in a stable order."""
        if version_id is None:
            self.get_dataset(app_id, dataset_id)
        else:
            self.get_dataset_version(app_id, dataset_id, version_id)
        return self._iter_dataset_items(app_id, dataset_id, version_id)

    def image_sizes(self, app_id: str, dataset_id: str, version_id: str) -> Optional[list[tuple[int, int]]]:
        """(height, width) of a dataset version's images, when the backend knows them without
        reading the images (None otherwise): for the hint about images much larger than the
        training size."""
        self.get_dataset_version(app_id, dataset_id, version_id)
        return self._image_sizes(app_id, version_id)

    def _image_sizes(self, app_id: str, version_id: str) -> Optional[list[tuple[int, int]]]:
        return None

    def iter_eval_items(self, app_id: str, dataset_id: str, version_id: str, classes: list[str]) -> Iterator[EvalItem]:
        """Images with targets in the model's class indices; concepts it was not trained on
        are background, ignore stays 255 (as training saw them)."""
        import numpy as np

        from segcli.datasets.imagefile import open_rgb
        from segcli.datasets.labels import class_lut

        for item in self.iter_dataset_items(app_id, dataset_id, version_id):
            lut = np.asarray(class_lut(item.labels, classes), dtype=np.uint8)
            # The stored bytes are the original file: shown upright, as its label map was drawn.
            yield EvalItem(name=item.name, image=open_rgb(item.image, item.name), target=lut[item.labelmap])

    # -- models and templates -----------------------------------------------------------
    @classmethod
    def list_model_types(cls) -> list[dict[str, Any]]:
        """The trainable model types and whether segcli trains each. A class method: the
        answer is the backend's, but needs no connection (`model types` opens no store); a
        backend whose types differ overrides it."""
        return [{"id": t, "supported": t in SUPPORTED_MODEL_TYPES} for t in TRAINABLE_MODEL_TYPES]

    def create_model(
        self, app_id: str, model_id: str, model_type_id: str = "visual-segmenter", exist_ok: bool = False
    ) -> Model:
        check_id("model", model_id)
        check_model_type(model_type_id)
        self._check_created(
            self._create_model(app_id, model_id, model_type_id),
            app_id,
            f"model '{model_id}' in app '{app_id}'",
            exist_ok,
        )
        return self.get_model(app_id, model_id)

    def get_model(self, app_id: str, model_id: str) -> Model:
        model = self._get_model(app_id, model_id)
        if model is None:
            self.require_app(app_id)
            raise refusals.model_not_found(app_id, model_id)
        return model

    def list_models(self, app_id: str) -> list[Model]:
        found = _found(self._list_models(app_id), lambda: refusals.app_not_found(app_id))
        return sorted(found, key=lambda m: m.id)

    def delete_model(self, app_id: str, model_id: str) -> None:
        self.get_model(app_id, model_id)
        self._delete_model(app_id, model_id)

    def list_templates(self) -> list[Template]:
        return self._list_templates()

    def find_template(self, name: Optional[str] = None) -> Template:
        """The named template, or this backend's default."""
        from segcli.core.templates import find_template  # its dataclasses: not for `app list`

        return find_template(self.list_templates(), name or self.default_template)

    # -- training ----------------------------------------------------------------------
    def check_trainable(self, template: Template, params: dict[str, Any]) -> None:
        """Refuse, before any dataset or model version is made, a training this backend could
        not run (e.g. pretrained weights that are not installed). Most backends need nothing."""

    def train(self, app_id: str, model_id: str, template: Template, params: dict[str, Any]) -> ModelVersion:
        """Start training from a resolved params document (services.params); returns the new
        (QUEUED) version."""
        self.get_model(app_id, model_id)
        model_classes, how = self.model_classes(app_id, params)
        chosen = set(params["concepts"])
        params["concepts"] = [c for c in model_classes if c in chosen]  # in class order
        return self._train(app_id, model_id, template, params, model_classes, how)

    def model_classes(self, app_id: str, params: dict[str, Any]) -> tuple[list[str], str]:
        """The classes a training of `params` gives the model (core/classes.model_classes):
        its dataset version's order, or a subset of it."""
        chosen = [c for c in params.get("concepts", []) if c != BACKGROUND]
        if not params.get("dataset_id") or not params.get("dataset_version_id"):
            return order_rules.with_background(chosen), order_rules.DATASET
        version = self.get_dataset_version(app_id, params["dataset_id"], params["dataset_version_id"])
        return order_rules.model_classes(version.classes, version.concepts, chosen)

    def list_versions(self, app_id: str, model_id: str) -> list[ModelVersion]:
        """Oldest first."""
        return _found(self._list_versions(app_id, model_id), lambda: self._model_missing(app_id, model_id))

    def get_version(self, app_id: str, model_id: str, version_id: Optional[str] = None) -> ModelVersion:
        """A version's current status; version_id None = the newest version."""
        if version_id is None:
            versions = self.list_versions(app_id, model_id)
            if not versions:
                raise refusals.no_versions_yet(app_id, model_id)
            return versions[-1]
        version = self._get_version(app_id, model_id, version_id)
        if version is None:
            self.get_model(app_id, model_id)
            raise refusals.version_not_found(app_id, model_id, version_id)
        return version

    def trained_version(self, app_id: str, model_id: str, version_id: Optional[str] = None) -> ModelVersion:
        """The version predict, eval and export use: the one named, else the newest TRAINED
        (else the newest, which is then refused with its status)."""
        if version_id is None:
            versions = self.list_versions(app_id, model_id)
            trained = [v for v in versions if v.status == TRAINED]
            if trained:
                return trained[-1]
        version = self.get_version(app_id, model_id, version_id)
        if version.status != TRAINED:
            raise refusals.not_trained(app_id, model_id, version.id, version.status)
        return version

    def training_log(self, app_id: str, model_id: str, version_id: str) -> str:
        return self._training_log(self.get_version(app_id, model_id, version_id))

    def cancel_training(self, app_id: str, model_id: str, version_id: str) -> ModelVersion:
        version = self.get_version(app_id, model_id, version_id)
        if version.is_final:
            raise refusals.already_ended(app_id, model_id, version_id, version.status)
        return self._cancel(version)

    def resume_training(self, app_id: str, model_id: str, version_id: str) -> ModelVersion:
        version = self.get_version(app_id, model_id, version_id)
        if version.status not in RESUMABLE:
            raise refusals.cannot_resume(app_id, model_id, version_id, version.status)
        return self._resume(version)

    # -- inference ---------------------------------------------------------------------
    def load_segmenter(
        self,
        app_id: str,
        model_id: str,
        version_id: Optional[str] = None,
        *,
        engine: str = "auto",
        notify: Optional[Callable[[str], None]] = None,
        tile: "int | str" = "auto",
        overlap: Optional[float] = None,
        precision: str = "fp32",
        calibration: Optional[Callable[[], list]] = None,
    ) -> Segmenter:
        """The newest TRAINED version unless one is named. `engine` (auto | onnx | torch) picks the
        local inference engine (ignored where the backend predicts remotely); `notify` gets
        one-line progress messages (e.g. a first-use ONNX export); `tile` and `overlap` say how
        windows slide over big images (core/geometry.Geometry.plan). `precision` fp16 | int8
        runs the version's reduced-precision graph (local weights only; `calibration` gives
        int8 its training images, services/precision.py)."""
        if not self.slides_windows and tile not in ("auto", "off"):
            raise refusals.unsupported(
                self.name,
                "slide windows over images: its models predict whole images",
                hint="drop --tile (or train on the local backend: segcli --backend local train ...)",
            )
        if precision != "fp32":
            self.require_local_weights("run a model in reduced precision")
        version = self.trained_version(app_id, model_id, version_id)
        if precision != "fp32":
            return self._load_segmenter(
                version, engine, notify, tile, overlap, precision=precision, calibration=calibration
            )
        return self._load_segmenter(version, engine, notify, tile, overlap)

    def require_local_weights(self, action: str) -> None:
        """Refuse (exit 4) what needs a version's weights on this machine where models live in
        a cloud that serves them itself: reduced precision, benchmarks, serving."""
        if not self.exports_weights:
            raise refusals.cloud_serves_its_models(self.name, action)

    def record_precision(self, version: ModelVersion, precision: str, result: dict[str, Any]) -> None:
        """Keep a precision's held-out numbers with the version (`model show`: precision_mIoU)."""
        self.require_local_weights("record precision metrics")
        self._record_metrics(version, "precision_mIoU", {precision: result})

    def _record_metrics(self, version: ModelVersion, key: str, entries: dict[str, Any]) -> None:
        """Merge `entries` into the version's metrics[key]; only where exports_weights."""
        raise NotImplementedError

    def precision_graph_tag(self, precision: str) -> str:
        """The format tag of a precision's graph (layout and int8 recipe): what a recorded mIoU
        is of, so that a number measured on another recipe is measured again."""
        self.require_local_weights("run a model in reduced precision")
        return self._precision_graph_tag(precision)

    def _precision_graph_tag(self, precision: str) -> str:
        """`precision_graph_tag`'s answer; only where exports_weights."""
        raise NotImplementedError

    def benchmark_run(
        self,
        version: ModelVersion,
        engine: str,
        precision: str,
        items: list,
        batch: int,
        calibration: Optional[list] = None,
    ) -> dict[str, Any]:
        """One engine x precision of a version `trained_model_dir` gave, timed and scored on
        `items` (EvalItems, predicted `batch` at a time) in a process of its own (`segcli
        benchmark`): the row's numbers, or {"error": one line}. `calibration`: decoded training
        images, for int8."""
        self.require_local_weights("benchmark models")
        return self._benchmark_run(version, engine, precision, items, batch, calibration)

    def _benchmark_run(
        self,
        version: ModelVersion,
        engine: str,
        precision: str,
        items: list,
        batch: int,
        calibration: Optional[list],
    ) -> dict[str, Any]:
        """`benchmark_run`'s work; only where exports_weights."""
        raise NotImplementedError

    def trained_model_dir(
        self, app_id: str, model_id: str, version_id: Optional[str] = None
    ) -> tuple[ModelVersion, Path]:
        """A TRAINED version and the local folder of its weights (model.safetensors + config.json),
        for `model export`. Backends whose models live in a cloud refuse before any call."""
        if not self.exports_weights:
            raise refusals.unsupported(
                self.name,
                "export weights; the model stays in its cloud",
                hint="train on the local backend to export (segcli --backend local train ...)",
            )
        version = self.trained_version(app_id, model_id, version_id)
        return version, self._model_dir(version)

    def write_export(
        self,
        version: ModelVersion,
        fmt: str,
        path: Path,
        notify: Callable[[str], None],
        precision: str = "fp32",
        calibration: Optional[Callable[[], list]] = None,
    ) -> tuple[dict[str, Any], str]:
        """Write a version `trained_model_dir` gave to one file `path` (`model export`: onnx or
        safetensors; onnx in `precision`, int8 calibrated on `calibration()`), atomically; return
        the model's config and the file's sha256."""
        return self._write_export(version, fmt, path, notify, precision, calibration)

    # -- helpers for the rules -----------------------------------------------------------
    @staticmethod
    def _check_created(created: Optional[bool], app_id: str, what: str, exist_ok: bool) -> None:
        """A creator's answer: None = the app is missing, False = it existed already."""
        if created is None:
            raise refusals.app_not_found(app_id)
        if not created and not exist_ok:
            raise refusals.already_exists(what)

    def _model_missing(self, app_id: str, model_id: str) -> Exception:
        self.require_app(app_id)
        return refusals.model_not_found(app_id, model_id)

    # == primitives each backend implements ===============================================
    @abstractmethod
    def _has_app(self, app_id: str) -> bool: ...
    @abstractmethod
    def _create_app(self, app_id: str) -> bool: ...
    @abstractmethod
    def _get_app(self, app_id: str) -> Optional[App]: ...
    @abstractmethod
    def _list_apps(self) -> list[App]: ...
    @abstractmethod
    def _delete_app(self, app_id: str) -> None: ...
    @abstractmethod
    def _list_concepts(self, app_id: str) -> Optional[list[Concept]]: ...

    @abstractmethod
    def _create_dataset(self, app_id: str, dataset_id: str) -> Optional[bool]: ...
    @abstractmethod
    def _get_dataset(self, app_id: str, dataset_id: str) -> Optional[Dataset]: ...
    @abstractmethod
    def _list_datasets(self, app_id: str) -> Optional[list[Dataset]]: ...
    @abstractmethod
    def _delete_dataset(self, app_id: str, dataset_id: str) -> None: ...
    @abstractmethod
    def _upload(
        self, app_id: str, dataset_id: str, data: "ReadResult", on_progress: ProgressFn, region_format: str
    ) -> UploadResult: ...
    @abstractmethod
    def _create_dataset_version(
        self, app_id: str, dataset_id: str, description: str, order: list[str], category_ids: dict[str, int]
    ) -> DatasetVersion:
        """A snapshot that records the dataset's class order (`order`, no background; used
        concepts it lacks follow, sorted: classes.with_background) and COCO ids."""

    @abstractmethod
    def _list_dataset_versions(self, app_id: str, dataset_id: str) -> list[DatasetVersion]: ...
    @abstractmethod
    def _get_dataset_version(self, app_id: str, dataset_id: str, version_id: str) -> Optional[DatasetVersion]: ...
    @abstractmethod
    def _dataset_concepts(self, app_id: str, dataset_id: str) -> list[str]: ...
    @abstractmethod
    def _dataset_classes(self, app_id: str, dataset_id: str) -> tuple[list[str], dict[str, int]]:
        """The dataset's recorded class order (no background; [] if none) and COCO ids."""

    @abstractmethod
    def _set_dataset_classes(
        self, app_id: str, dataset_id: str, order: list[str], category_ids: dict[str, int]
    ) -> None: ...
    @abstractmethod
    def _iter_dataset_items(self, app_id: str, dataset_id: str, version_id: Optional[str]) -> Iterator[DatasetItem]: ...

    @abstractmethod
    def _create_model(self, app_id: str, model_id: str, model_type_id: str) -> Optional[bool]: ...
    @abstractmethod
    def _get_model(self, app_id: str, model_id: str) -> Optional[Model]: ...
    @abstractmethod
    def _list_models(self, app_id: str) -> Optional[list[Model]]: ...
    @abstractmethod
    def _delete_model(self, app_id: str, model_id: str) -> None: ...
    @abstractmethod
    def _list_templates(self) -> list[Template]: ...

    @abstractmethod
    def _train(
        self,
        app_id: str,
        model_id: str,
        template: Template,
        params: dict[str, Any],
        classes: list[str],
        class_order: str,
    ) -> ModelVersion:
        """Start a version that records `classes` (its class i) and `class_order`."""

    @abstractmethod
    def _get_version(self, app_id: str, model_id: str, version_id: str) -> Optional[ModelVersion]: ...
    @abstractmethod
    def _list_versions(self, app_id: str, model_id: str) -> Optional[list[ModelVersion]]: ...
    @abstractmethod
    def _training_log(self, version: ModelVersion) -> str: ...
    @abstractmethod
    def _cancel(self, version: ModelVersion) -> ModelVersion: ...
    @abstractmethod
    def _resume(self, version: ModelVersion) -> ModelVersion: ...
    @abstractmethod
    def _load_segmenter(
        self,
        version: ModelVersion,
        engine: str,
        notify: Optional[Callable[[str], None]],
        tile: "int | str",
        overlap: Optional[float],
        precision: str = "fp32",
        calibration: Optional[Callable[[], list]] = None,
    ) -> Segmenter: ...

    def _model_dir(self, version: ModelVersion) -> Path:
        """The folder of a TRAINED version's weights; only where exports_weights."""
        raise NotImplementedError

    def _write_export(
        self,
        version: ModelVersion,
        fmt: str,
        path: Path,
        notify: Callable[[str], None],
        precision: str,
        calibration: Optional[Callable[[], list]],
    ) -> tuple[dict[str, Any], str]:
        """`write_export`'s work; only where exports_weights."""
        raise NotImplementedError
