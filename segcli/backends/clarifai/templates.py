"""Training templates from the server's ListModelTypes, as segcli Templates.

The walk mirrors the SDK's `response_to_model_params` (clarifai/utils/model_train.py), so the
params document segcli writes equals what `model.get_params(template=...)` saves: top-level
train_info fields first, then `template`, then the chosen template's own fields; fields under
`*.data.*` / `*.dataset.*`, dataset ids and `internal_only` fields are skipped. Types, ranges
and help come from the same fields, so validation uses the server's definitions.
Local-only knobs of the local template with the same name are appended (marked local_only) so
a params file written for the local backend validates here; training strips them.
"""

from __future__ import annotations

from typing import Any, Iterable

from clarifai_grpc.grpc.api import resources_pb2
from google.protobuf.json_format import MessageToDict

from segcli.core.errors import NotFoundError
from segcli.core.templates import ParamSpec, Template, local_templates

SEGMENTER = "visual-segmenter"
F = resources_pb2.ModelTypeField.ModelTypeFieldType
_TYPES = {F.NUMBER: "number", F.ARRAY_OF_NUMBERS: "number_list", F.ENUM: "enum", F.BOOLEAN: "bool"}


def _skipped(path: list[str], field) -> bool:
    return (
        len(path) < 2
        or path[1] in ("data", "dataset")
        or path[-1] in ("dataset_id", "dataset_version_id")
        or field.internal_only
        or path[0] != "train_info"
    )


def _default(field) -> Any:
    if not field.HasField("default_value"):
        return None
    return MessageToDict(field.default_value)


def _kind(field, default: Any) -> str:
    if field.field_type in _TYPES:
        return _TYPES[field.field_type]
    # Types segcli has no editor for: judge by the default so validation accepts it.
    if isinstance(default, bool):
        return "bool"
    if isinstance(default, (int, float)):
        return "number"
    if isinstance(default, list) and all(isinstance(v, (int, float)) for v in default):
        return "number_list"
    return "string"


def param_spec(field) -> ParamSpec:
    default = _default(field)
    kind = _kind(field, default)
    lo = hi = step = None
    if field.HasField("model_type_range_info"):
        info = field.model_type_range_info
        lo, hi, step = info.min, info.max, (info.step or None)
    return ParamSpec(
        name=field.path.split(".")[-1],
        type=kind,
        default=default,
        help=" ".join(field.description.split()),
        min=lo,
        max=hi,
        step=step,
        choices=tuple(o.id for o in field.model_type_enum_options) if kind == "enum" else (),
    )


def _local_only(name: str) -> list[ParamSpec]:
    for template in local_templates():
        if template.name == name:
            return [p for p in template.params.values() if p.local_only]
    return []


def templates_from_model_types(model_types: Iterable, model_type_id: str = SEGMENTER) -> list[Template]:
    model_type = next((m for m in model_types if m.id == model_type_id), None)
    if model_type is None:
        raise NotFoundError(
            f"the server offers no '{model_type_id}' model type",
            hint="check CLARIFAI_API_BASE points at Clarifai's API",
        )
    shared: list[ParamSpec] = []
    template_field = None
    for field in model_type.model_type_fields:
        path = field.path.split(".")
        if _skipped(path, field):
            continue
        if path[-1] == "template":
            template_field = field
        else:
            shared.append(param_spec(field))
    if template_field is None:
        return []
    return [
        _template(option, template_field, shared, model_type_id) for option in template_field.model_type_enum_options
    ]


def _template(option, template_field, shared: list[ParamSpec], model_type_id: str) -> Template:
    own = [param_spec(f) for f in option.model_type_fields if not f.internal_only]
    marker = ParamSpec(
        name="template",
        type="string",
        default=option.id,
        help=" ".join(template_field.description.split()) or "The training template.",
    )
    params = {p.name: p for p in [*shared, marker, *own]}
    for extra in _local_only(option.id):
        params.setdefault(extra.name, extra)
    return Template(
        name=option.id,
        model_type=model_type_id,
        description=" ".join((option.description or option.id).split()),
        params=params,
        on_clarifai=True,
        source="clarifai:ListModelTypes",
    )
