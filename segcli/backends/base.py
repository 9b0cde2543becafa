"""The Backend interface: everything a command may ask of local or Clarifai storage/compute.

Both backends implement it and one contract test suite runs the same CLI scenarios against
both. Methods raise segcli.core.errors types only; the CLI renders them.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator

from segcli.core.segmentation import Segmenter
from segcli.core.entities import App, Concept, Dataset, DatasetVersion, Model, ModelVersion, UploadResult
from segcli.core.templates import Template
from segcli.datasets.items import ReadResult

if TYPE_CHECKING:  # numpy costs ~45 ms at import: metadata commands never need it
    import numpy as np

# The constant list Clarifai's SDK returns for list_trainable_model_types().
TRAINABLE_MODEL_TYPES = (
    "visual-classifier", "visual-detector", "visual-segmenter", "visual-embedder",
    "clusterer", "text-classifier", "embedding-classifier", "text-to-text",
)
SUPPORTED_MODEL_TYPES = ("visual-segmenter",)

def check_model_type(model_type_id: str) -> None:
    """Both backends refuse the same model types with the same message."""
    from segcli.core.errors import InvalidInputError

    if model_type_id not in SUPPORTED_MODEL_TYPES:
        known = model_type_id in TRAINABLE_MODEL_TYPES
        raise InvalidInputError(
            f"model type '{model_type_id}' is {'not supported by segcli' if known else 'unknown'}",
            hint="segcli model types  (segcli trains visual-segmenter models)")


ProgressFn = Callable[[int], None]   # called with the number of items just finished


@dataclass
class EvalItem:
    name: str
    image: "np.ndarray"          # HxWx3 uint8 RGB
    target: "np.ndarray"         # HxW uint8 class indices of the version's classes; 255 = ignore


class Backend(ABC):
    name: str = ""
    # How often `train --watch` polls: first interval, backing off to the max.
    watch_interval_s: float = 0.5
    max_watch_interval_s: float = 0.5

    # -- apps ------------------------------------------------------------------------
    @abstractmethod
    def create_app(self, app_id: str, exist_ok: bool = False) -> App: ...
    @abstractmethod
    def list_apps(self) -> list[App]: ...
    @abstractmethod
    def get_app(self, app_id: str) -> App: ...
    @abstractmethod
    def delete_app(self, app_id: str) -> None: ...
    @abstractmethod
    def list_concepts(self, app_id: str) -> list[Concept]: ...

    # -- datasets --------------------------------------------------------------------
    @abstractmethod
    def create_dataset(self, app_id: str, dataset_id: str, exist_ok: bool = False) -> Dataset: ...
    @abstractmethod
    def list_datasets(self, app_id: str) -> list[Dataset]: ...
    @abstractmethod
    def get_dataset(self, app_id: str, dataset_id: str) -> Dataset: ...
    @abstractmethod
    def delete_dataset(self, app_id: str, dataset_id: str) -> None: ...
    @abstractmethod
    def upload(self, app_id: str, dataset_id: str, data: ReadResult, on_progress: ProgressFn) -> UploadResult:
        """Write every item of `data` (already validated) exactly once; re-runs add nothing."""
    @abstractmethod
    def create_dataset_version(self, app_id: str, dataset_id: str, description: str = "") -> DatasetVersion: ...
    @abstractmethod
    def list_dataset_versions(self, app_id: str, dataset_id: str) -> list[DatasetVersion]: ...
    @abstractmethod
    def get_dataset_version(self, app_id: str, dataset_id: str, version_id: str) -> DatasetVersion: ...
    @abstractmethod
    def iter_eval_items(self, app_id: str, dataset_id: str, version_id: str,
                        classes: list[str]) -> Iterator[EvalItem]: ...

    # -- models and templates -------------------------------------------------------
    def list_model_types(self) -> list[dict[str, Any]]:
        return [{"id": t, "supported": t in SUPPORTED_MODEL_TYPES} for t in TRAINABLE_MODEL_TYPES]

    @abstractmethod
    def create_model(self, app_id: str, model_id: str, model_type_id: str = "visual-segmenter",
                     exist_ok: bool = False) -> Model: ...
    @abstractmethod
    def list_models(self, app_id: str) -> list[Model]: ...
    @abstractmethod
    def get_model(self, app_id: str, model_id: str) -> Model: ...
    @abstractmethod
    def delete_model(self, app_id: str, model_id: str) -> None: ...
    @abstractmethod
    def list_templates(self) -> list[Template]: ...

    # -- training --------------------------------------------------------------------
    @abstractmethod
    def train(self, app_id: str, model_id: str, template: Template, params: dict[str, Any]) -> ModelVersion:
        """Start training from a validated params document; returns the new (QUEUED) version."""
    @abstractmethod
    def get_version(self, app_id: str, model_id: str, version_id: str | None = None) -> ModelVersion:
        """A version's current status; version_id None = the latest version."""
    @abstractmethod
    def list_versions(self, app_id: str, model_id: str) -> list[ModelVersion]: ...
    @abstractmethod
    def training_log(self, app_id: str, model_id: str, version_id: str) -> str: ...
    @abstractmethod
    def cancel_training(self, app_id: str, model_id: str, version_id: str) -> ModelVersion: ...
    def resume_training(self, app_id: str, model_id: str, version_id: str) -> ModelVersion:
        from segcli.core.errors import ConflictError

        raise ConflictError(f"the {self.name} backend cannot resume training",
                            hint="start a new version: segcli train ...")

    # -- inference -------------------------------------------------------------------
    @abstractmethod
    def load_segmenter(self, app_id: str, model_id: str, version_id: str | None = None, *,
                       engine: str = "auto", notify: Callable[[str], None] | None = None) -> Segmenter:
        """version_id None = the newest TRAINED version. `engine` (auto | onnx | torch) picks the
        local inference engine (ignored where the backend predicts remotely); `notify` gets
        one-line progress messages (e.g. a first-use ONNX export)."""

    def trained_model_dir(self, app_id: str, model_id: str, version_id: str | None = None) -> tuple[ModelVersion, Path]:
        """A TRAINED version and the local directory of its weights (model.safetensors +
        config.json); version_id None = the newest TRAINED version. For `model export`."""
        from segcli.core.errors import ConflictError

        raise ConflictError(f"the {self.name} backend cannot export weights; the model stays in its cloud",
                            hint="train on the local backend to export (segcli --backend local train ...)")

    def close(self) -> None:
        """Release connections; called once at exit."""
