"""The model types the fake serves (ListModelTypes / GetModelType) and the training-param
validation that uses the same definitions.

Shape matters more than content here: the SDK's get_params walks
`model_types[].model_type_fields[]` and needs every top-level `path` to have >= 2 dotted
parts, the template field to carry `model_type_enum_options` (one per template, each with
its own `model_type_fields`), and every field to carry a non-empty `placeholder`
(get_param_info deletes that key unconditionally).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from clarifai_grpc.grpc.api import resources_pb2
from google.protobuf import struct_pb2

F = resources_pb2.ModelTypeField.ModelTypeFieldType

SEGMENTER = "visual-segmenter"
SEGFORMER = "MMSegmentation_SegFormer"
MMSEG = "MMSegmentation"


@dataclass(frozen=True)
class Param:
    name: str
    kind: int  # ModelTypeFieldType
    default: Any
    description: str
    minimum: float | None = None
    maximum: float | None = None
    step: float | None = None
    choices: Sequence[str] = ()
    section: str = "train_info.params"

    @property
    def path(self) -> str:
        return f"{self.section}.{self.name}"


# Defaults as Clarifai's get_params saves them (see shared/docs/clarifai-notes.md).
SEGFORMER_PARAMS = (
    Param(
        "image_size",
        F.ARRAY_OF_NUMBERS,
        [520.0],
        "One value resizes the short side to it; several give the exact size.",
    ),
    Param("batch_size", F.NUMBER, 2.0, "Images per optimisation step.", 1, 16, 1),
    Param("num_epochs", F.NUMBER, 1.0, "Passes over the training data.", 1, 200, 1),
    Param("per_item_lrate", F.NUMBER, 7.5e-06, "Learning rate per item; lr = batch_size * per_item_lrate.", 0, None),
    Param("pretrained_weights", F.ENUM, "ade20k", "Initial weights.", choices=("None", "ade20k")),
)
# Invented for the fake (the real field set of this template was not recorded):
# the SegFormer set without pretrained_weights and a larger default batch.
MMSEG_PARAMS = (
    Param("image_size", F.ARRAY_OF_NUMBERS, [512.0], "Short side / exact size."),
    Param("batch_size", F.NUMBER, 4.0, "Images per optimisation step.", 1, 16, 1),
    Param("num_epochs", F.NUMBER, 1.0, "Passes over the training data.", 1, 200, 1),
    Param("per_item_lrate", F.NUMBER, 2.5e-05, "Learning rate per item.", 0, None),
)
TEMPLATES = {MMSEG: MMSEG_PARAMS, SEGFORMER: SEGFORMER_PARAMS}

TOLERANCE = Param(
    "invalid_data_tolerance_percent",
    F.NUMBER,
    5.0,
    "Percent of unusable inputs tolerated before training fails.",
    0,
    100,
)
TOP_LEVEL = (
    Param("dataset_id", F.DATASET_ID, "", "Dataset to train on."),
    Param("dataset_version_id", F.DATASET_VERSION_ID, "", "Dataset version to train on."),
    Param("concepts", F.ARRAY_OF_CONCEPTS, [], "Concepts to learn.", section="output_info.data"),
    TOLERANCE,
)


def _value(python_value: Any) -> struct_pb2.Value:
    out = struct_pb2.Value()
    if isinstance(python_value, list):
        out.list_value.extend(python_value)
    elif isinstance(python_value, str):
        out.string_value = python_value
    else:
        out.number_value = float(python_value)
    return out


def _field(p: Param) -> resources_pb2.ModelTypeField:
    field = resources_pb2.ModelTypeField(
        path=p.path,
        field_type=p.kind,
        description=p.description,
        placeholder=p.name,
        default_value=_value(p.default),
    )
    if p.minimum is not None and p.maximum is not None:
        field.model_type_range_info.CopyFrom(
            resources_pb2.ModelTypeRangeInfo(min=p.minimum, max=p.maximum, step=p.step or 0)
        )
    for choice in p.choices:
        field.model_type_enum_options.add(id=choice)
    return field


def _template_field() -> resources_pb2.ModelTypeField:
    field = resources_pb2.ModelTypeField(
        path="train_info.params.template",
        field_type=F.ENUM,
        required=True,
        description="Training template.",
        placeholder="template",
        default_value=_value(SEGFORMER),
    )
    for template_id, params in TEMPLATES.items():
        option = field.model_type_enum_options.add(id=template_id, description=template_id)
        option.model_type_fields.extend(_field(p) for p in params)
    return field


def segmenter_type() -> resources_pb2.ModelType:
    model_type = resources_pb2.ModelType(
        id=SEGMENTER,
        title="Visual Segmenter",
        description="Per-pixel masks for concepts.",
        input_fields=["image"],
        output_fields=["regions[...].region_info.mask", "regions[...].data.concepts"],
        trainable=True,
        creatable=True,
    )
    model_type.model_type_fields.extend(_field(p) for p in TOP_LEVEL)
    model_type.model_type_fields.append(_template_field())
    return model_type


def model_types() -> list[resources_pb2.ModelType]:
    return [segmenter_type()]


def model_type(model_type_id: str) -> resources_pb2.ModelType | None:
    return next((t for t in model_types() if t.id == model_type_id), None)


# ---- validation of train_info.params sent by PostModelVersions -------------------------


def _check(p: Param, value: Any) -> str | None:
    """Why `value` is invalid for `p`, or None."""
    if p.kind == F.NUMBER:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return f"{p.name} must be a number"
        if p.minimum is not None and value < p.minimum:
            return f"{p.name} must be >= {p.minimum}"
        if p.maximum is not None and value > p.maximum:
            return f"{p.name} must be <= {p.maximum}"
        if p.step == 1 and float(value) != int(value):
            return f"{p.name} must be a whole number"
    elif p.kind == F.ARRAY_OF_NUMBERS:
        ok = isinstance(value, list) and 1 <= len(value) <= 2
        if not ok or not all(isinstance(v, (int, float)) and v > 0 for v in value):
            return f"{p.name} must be a list of 1 or 2 positive numbers"
    elif p.kind == F.ENUM and value not in p.choices:
        return f"{p.name} must be one of {list(p.choices)}"
    return None


def validate_params(params: dict) -> list[str]:
    """Problems with a train_info.params dict (empty list when valid). Unknown keys are
    problems too: the fake is strict so that typos surface in tests."""
    template = params.get("template")
    if template not in TEMPLATES:
        return [f"template must be one of {list(TEMPLATES)}"]
    known = {p.name: p for p in TEMPLATES[template] + (TOLERANCE,)}
    problems = [
        f"unknown param {k}"
        for k in params
        if k not in known and k not in ("template", "dataset_id", "dataset_version_id")
    ]
    for name, p in known.items():
        if name in params:
            problems.extend(filter(None, [_check(p, params[name])]))
    return problems


def effective_params(params: dict) -> dict:
    """Params with the template's defaults filled in (what the fake 'trains' with)."""
    out = {p.name: p.default for p in TEMPLATES.get(params.get("template"), ()) + (TOLERANCE,)}
    out.update(params)
    return out
