"""The params document: the seed's get_params + update_params, resolved once and checked
against the backend's data.

`build_document` is the one path from (params file | template defaults) + flags + `--set` to a
validated document; the template (its YAML) is the only source of defaults, types and ranges.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

from segcli.backends.base import Backend
from segcli.core.errors import InvalidInputError, NotFoundError
from segcli.core.templates import (
    CLOUD_RUN,
    FILE_VIEW,
    LOCAL_RUN,
    ParamsUpdate,
    Template,
    default_document,
    load_document,
    parse_assignments,
    resolve_document,
)


def build_document(
    backend: Backend,
    template_name: Optional[str],
    params_file: Optional[Path],
    update: ParamsUpdate,
    sets: list[str],
    for_training: bool = False,
    note=None,
) -> tuple[Template, dict[str, Any]]:
    """Start from the file (or the template's defaults: the named template, else the
    backend's default), apply flags and `--set`, validate once.

    for_training resolves every param the backend's training takes (all knobs locally, so the
    version records them; platform params only on Clarifai, with a `note` for changed local-only
    knobs that are not sent); otherwise the document is the params-file view.
    """
    if params_file is not None:
        doc = load_document(params_file)
        file_template = (
            (doc.get("train_params") or {}).get("template") if isinstance(doc.get("train_params"), dict) else None
        )
        if template_name and file_template and file_template != template_name:
            raise InvalidInputError(
                f"--template {template_name} differs from the params file's template {file_template}",
                hint=f"drop --template, or regenerate: segcli template params {template_name} -f {params_file}",
            )
        if template_name and not file_template:  # a hand-written file: --template names it
            update.train_params.setdefault("template", template_name)
    else:
        template = backend.find_template(template_name)
        doc = default_document(template, include_local=not template.on_clarifai)
    update.train_params.update(parse_assignments(sets))
    view = (LOCAL_RUN if backend.accepts_local_params else CLOUD_RUN) if for_training else FILE_VIEW
    template, doc, dropped = resolve_document(
        update.apply(doc), backend.list_templates(), backend.default_template, view
    )
    if dropped and note is not None:
        note(f"local-only params not sent to {backend.title}: {', '.join(dropped)}")
    return template, doc


def check_against_backend(
    backend: Backend, app_id: str, doc: dict[str, Any], all_concepts: bool = False
) -> dict[str, Any]:
    """Dataset, version and concepts must exist; --all-concepts fills concepts from the data."""
    dataset_id, version_id = doc.get("dataset_id"), doc.get("dataset_version_id")
    if version_id and not dataset_id:
        raise InvalidInputError(
            "dataset_version_id is set but dataset_id is empty",
            hint="add --dataset DATASET (or set dataset_id in the params file)",
        )
    if dataset_id:
        try:
            backend.get_dataset(app_id, dataset_id)
        except NotFoundError as exc:
            raise NotFoundError(f"params: {exc.message}", hint=exc.hint) from None
    known = [c.id for c in backend.list_concepts(app_id)]
    if version_id:
        version = backend.get_dataset_version(app_id, dataset_id, version_id)
        known_in_data = version.concepts or known
    else:
        known_in_data = known
    if all_concepts:
        doc["concepts"] = list(known_in_data)
    unknown = [c for c in doc.get("concepts", []) if c not in known]
    if unknown:
        raise InvalidInputError(
            f"unknown concepts: {', '.join(unknown)} (app '{app_id}' has: {', '.join(known) or 'none'})",
            hint=f"segcli app concepts {app_id}",
        )
    return doc


def dump_document(doc: dict[str, Any], template: Template) -> str:
    """YAML as the SDK saves it; local-only knobs not set are listed as comments to uncomment."""
    import yaml  # here: `template list`, `train status` and co. never write YAML

    text = yaml.safe_dump(doc, sort_keys=False, default_flow_style=None)
    hidden = [p for n, p in template.params.items() if p.local_only and n not in doc.get("train_params", {})]
    if hidden:
        text += "# Local-backend knobs (the clarifai backend ignores them); uncomment under train_params:\n"
        for p in hidden:
            value = yaml.safe_dump(p.default, default_flow_style=True).strip().removesuffix("...").strip()
            text += f"#   {p.name}: {value}   # {' '.join(p.help.split())}\n"
    return text
