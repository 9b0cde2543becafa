"""Training templates and the params YAML: schema, defaults, `--set` parsing, validation.

A template is data (templates/*.yaml locally; ListModelTypes on Clarifai), so no command
hard-codes a parameter. The params document has the shape the SDK's get_params saves:
    dataset_id, dataset_version_id, concepts, train_params: {template, ...}
Numbers stay floats as Clarifai's protobuf Struct returns them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from segcli.core.errors import InvalidInputError, NotFoundError
from segcli.core.template_names import SEGFORMER
from segcli.core.textfile import SAVE_AS_UTF8, TextEncodingError, read_text

PARAM_TYPES = ("number", "number_list", "string", "enum", "bool")
TOP_LEVEL_KEYS = ("dataset_id", "dataset_version_id", "concepts", "train_params")


@dataclass(frozen=True)
class ParamSpec:
    name: str
    type: str
    default: Any
    help: str = ""
    min: float | None = None
    max: float | None = None
    step: float | None = None
    choices: tuple[str, ...] = ()
    local_only: bool = False
    max_items: int | None = None  # number_list: most values it may hold

    def range_text(self) -> str:
        if self.type == "enum":
            return " | ".join(self.choices)
        if self.type == "number_list" and self.choices:  # words, or a list of numbers
            return (
                " | ".join(self.choices)
                + " | [numbers"
                + (f" in {self.min:g} .. {self.max:g}" if self.min is not None and self.max is not None else "")
                + "]"
            )
        if self.min is not None and self.max is not None:
            text = f"{self.min:g} .. {self.max:g}"
        elif self.min is not None:
            text = f">= {self.min:g}"
        elif self.max is not None:
            text = f"<= {self.max:g}"
        else:
            text = ""
        if self.step == 1:
            text += " (whole numbers)"
        if self.max_items:
            text += f", at most {self.max_items} values"
        return text.strip(" ,")


@dataclass(frozen=True)
class Constraint:
    """A rule between params that ranges cannot say: when `when` holds, `param` must be one of
    `allowed` (e.g. pretrained_weights=ade20k needs a model_size that has such weights)."""

    when: dict[str, str]
    param: str
    allowed: tuple[str, ...]
    message: str

    def problem(self, params: dict[str, Any]) -> str | None:
        if (
            all(str(params.get(k)) == v for k, v in self.when.items())
            and str(params.get(self.param)) not in self.allowed
        ):
            return f"train_params.{self.param}: {self.message} (got {params.get(self.param)!r})"
        return None


@dataclass(frozen=True)
class Template:
    name: str
    model_type: str
    description: str
    params: dict[str, ParamSpec]
    on_clarifai: bool = False
    source: str = ""
    constraints: tuple[Constraint, ...] = ()
    # What the local engine builds (`kind` and its knobs, engine/models.py); {} for templates
    # only Clarifai trains (ListModelTypes says nothing about architecture).
    architecture: dict[str, Any] = field(default_factory=dict)

    def defaults(self, include_local: bool = True) -> dict[str, Any]:
        return {n: _copy(p.default) for n, p in self.params.items() if include_local or not p.local_only}

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "model_type": self.model_type,
            "description": self.description,
            "on_clarifai": self.on_clarifai,
            "params": [
                {
                    "name": p.name,
                    "type": p.type,
                    "default": p.default,
                    "range": p.range_text(),
                    "local_only": p.local_only,
                    "help": p.help,
                }
                for p in self.params.values()
            ],
        }


def _copy(value: Any) -> Any:
    return list(value) if isinstance(value, list) else value


def _spec(name: str, raw: dict[str, Any], source: str) -> ParamSpec:
    kind = raw.get("type")
    if kind not in PARAM_TYPES:
        raise ValueError(f"{source}: param {name} has unknown type {kind!r}")
    default: Any = raw.get("default")
    if kind == "number":
        default = float(default)
    elif kind == "number_list" and not (isinstance(default, str) and default in raw.get("choices", ())):
        default = [float(v) for v in default]
    return ParamSpec(
        name=name,
        type=kind,
        default=default,
        help=str(raw.get("help", "")).strip(),
        min=raw.get("min"),
        max=raw.get("max"),
        step=raw.get("step"),
        choices=tuple(str(c) for c in raw.get("choices", ())),
        local_only=bool(raw.get("local_only", False)),
        max_items=raw.get("max_items"),
    )


def _constraint(raw: dict[str, Any]) -> Constraint:
    return Constraint(
        when={str(k): str(v) for k, v in raw["when"].items()},
        param=str(raw["param"]),
        allowed=tuple(str(v) for v in raw["allowed"]),
        message=str(raw["message"]),
    )


def safe_load_fast(text: str) -> Any:
    """yaml.safe_load through libyaml's parser when PyYAML has it (CSafeLoader: the same safe
    constructor and resolver, ~7x faster: 28 -> 4 ms for the two templates of `template list`).
    yaml is imported here, not at module level: `app list` and co. never need it."""
    from segcli.core import safeyaml  # bounded: no alias bomb (core/safeyaml.py)

    return safeyaml.safe_load(text)


def _template(path: Path, raw: dict[str, Any]) -> Template:
    params = {n: _spec(n, spec, path.name) for n, spec in (raw.get("params") or {}).items()}
    return Template(
        name=raw["name"],
        model_type=raw.get("model_type", "visual-segmenter"),
        description=" ".join(str(raw.get("description", "")).split()),
        params=params,
        on_clarifai=bool(raw.get("on_clarifai", False)),
        source=str(path),
        constraints=tuple(_constraint(c) for c in raw.get("constraints") or ()),
        architecture=dict(raw.get("architecture") or {}),
    )


def templates_dir() -> Path:
    """Installed wheels carry templates inside the package; a checkout reads the repo's folder."""
    packaged = Path(__file__).resolve().parent.parent / "_templates"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[2] / "templates"


def local_templates(cache: Path | None = None) -> list[Template]:
    """The template YAML files as Templates (`cache`: see template_documents)."""
    return [_template(path, raw) for path, raw in template_documents(cache)]


SHARED_FILE = "_shared.yaml"  # params every local template takes (`seed: shared`)
SHARED = "shared"


def template_documents(
    cache: Path | None = None, write: bool = True, folder: Path | None = None
) -> list[tuple[Path, dict[str, Any]]]:
    """Each template YAML file, parsed, its `NAME: shared` params replaced by their spec in
    `_shared.yaml` (files starting with `_` are not templates). With `cache` (a JSON file), the
    documents parsed before are taken from it while every file's stamp (core/stamps.py) is the
    one recorded, and it is rewritten (`write`) after a parse: `template list` and completion
    then skip PyYAML (~15 ms to import). A file changed so shortly before it was read that a
    second edit could keep its stamp (the racy window) is not cached at all. The documents are
    validated by their reader as always. Any problem with the cache file only means parsing
    the YAML. `folder`: the templates' folder (default: templates_dir())."""
    import json
    import time

    from segcli.core.stamps import Stamp

    folder = folder or templates_dir()
    paths = sorted(p for p in folder.glob("*.yaml") if not p.name.startswith("_"))
    shared = folder / SHARED_FILE
    files = [*paths, shared] if shared.exists() else paths
    read_at = time.time_ns()  # before the stats: a change after it is at least as recent
    try:
        stamps = [Stamp.of(p.stat()) for p in files]
        key: list | None = [[str(p), *s] for p, s in zip(files, stamps)]
    except OSError:
        stamps, key = [], None
    if cache is not None and key is not None:
        try:
            doc = json.loads(cache.read_text(encoding="utf-8"))
            cached = doc.get("documents")
            if (
                doc.get("key") == key
                and isinstance(cached, list)
                and len(cached) == len(paths)
                and all(isinstance(d, dict) and isinstance(d.get("name"), str) for d in cached)
            ):
                return list(zip(paths, cached))
        except (OSError, ValueError, AttributeError, TypeError):
            pass
    common = ((safe_load_fast(shared.read_text()) or {}).get("params") or {}) if shared.exists() else {}
    documents = [_with_shared(safe_load_fast(p.read_text()), common, p) for p in paths]
    if cache is not None and key is not None and write and not any(s.racy(read_at) for s in stamps):
        _write_cache(cache, key, documents)
    return list(zip(paths, documents))


def _with_shared(doc: Any, common: dict[str, Any], path: Path) -> Any:
    """The document with each `NAME: shared` param replaced by NAME's spec in _shared.yaml."""
    params = doc.get("params") if isinstance(doc, dict) else None
    if not isinstance(params, dict):
        return doc
    for name, spec in params.items():
        if spec == SHARED:
            if name not in common:
                raise ValueError(f"{path.name}: param {name} is 'shared' but {SHARED_FILE} has no {name}")
            params[name] = common[name]
    return doc


def _write_cache(cache: Path, key: list, documents: list) -> None:
    import json

    from segcli.core.files import write_text_atomic

    try:
        text = json.dumps({"key": key, "documents": documents})
        if json.loads(text)["documents"] != documents:
            return  # something JSON cannot hold as YAML gave it (int keys, NaN): parse each time
        cache.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(cache, text)
    except (OSError, TypeError, ValueError):
        pass  # a cache that cannot be written is simply not there


def find_template(templates: list[Template], name: str) -> Template:
    """The template called `name` among a backend's templates."""
    for t in templates:
        if t.name == name:
            return t
    raise NotFoundError(
        f"template '{name}' does not exist",
        hint="segcli template list  (names: " + ", ".join(t.name for t in templates) + ")",
    )


# -- values -------------------------------------------------------------------------------
def _bad(spec: ParamSpec, value: Any, why: str) -> str:
    return f"train_params.{spec.name}: {why} (got {value!r})"


def parse_number(value: Any) -> float | None:
    """A finite number in any spelling people write: YAML 1.2 / Python floats (`6e-5`, which
    YAML 1.1 loads as a string), `1_000`, hex/octal ints; None if it is not one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        number = float(value)
    elif isinstance(value, str):
        text = value.strip()
        try:
            number = float(text)
        except ValueError:
            try:
                number = float(int(text, 0))
            except ValueError:
                return None
    else:
        return None
    return number if math.isfinite(number) else None


def _check_number(spec: ParamSpec, value: Any) -> tuple[Any, str | None]:
    number = parse_number(value)
    if number is None:
        return value, _bad(spec, value, "must be a number")
    value = number
    if (spec.min is not None and value < spec.min) or (spec.max is not None and value > spec.max):
        return value, _bad(spec, value, f"must be in {spec.range_text()}")
    if spec.step == 1 and not value.is_integer():
        return value, _bad(spec, value, "must be a whole number")
    return value, None


def check_value(spec: ParamSpec, value: Any) -> tuple[Any, str | None]:
    """Normalise one value; return (value, problem or None)."""
    if spec.type == "number":
        return _check_number(spec, value)
    if spec.type == "number_list":
        if spec.choices and (isinstance(value, (str, bool)) or value is None):
            # a word this list also takes (class_weights: none | auto | [numbers])
            text = _enum_text(spec, value)
            for choice in spec.choices:  # `None`, YAML's null: the word none
                if text.lower() == choice.lower():
                    return choice, None
            if parse_number(value) is None:
                return value, _bad(spec, value, f"must be {' or '.join(spec.choices)} or a list of numbers")
        items = value if isinstance(value, list) else [value]
        if not items:
            return value, _bad(spec, value, "needs at least one number")
        if spec.max_items and len(items) > spec.max_items:
            return value, _bad(spec, value, f"takes at most {spec.max_items} values")
        out = []
        for item in items:
            num, problem = _check_number(spec, item)
            if problem:
                return value, problem
            out.append(num)
        return out, None
    if spec.type == "enum":
        text = _enum_text(spec, value)
        if text not in spec.choices:
            return value, _bad(spec, value, f"must be one of {spec.range_text()}")
        return text, None
    if spec.type == "bool":
        if not isinstance(value, bool):
            return value, _bad(spec, value, "must be true or false")
        return value, None
    if not isinstance(value, str):
        return value, _bad(spec, value, "must be a string")
    return value, None


# YAML 1.1 reads these words as booleans; a user writing `mixed_precision: no` meant the word.
_YAML_BOOL_WORDS = {False: ("no", "off", "false", "n"), True: ("yes", "on", "true", "y")}


def _enum_text(spec: ParamSpec, value: Any) -> str:
    if value is None:
        return "None"
    if isinstance(value, bool):
        for choice in spec.choices:
            if choice.lower() in _YAML_BOOL_WORDS[value]:
                return choice
    return str(value)


def parse_set_value(text: str) -> Any:
    """`--set key=value` values are YAML scalars/lists: 5, 1e-4, [256, 256], None, true."""
    import yaml

    from segcli.core import safeyaml

    try:
        return safeyaml.safe_load(text)
    except safeyaml.AliasBombError as exc:
        raise InvalidInputError(
            f"--set value {_short_text(text)}: {exc}", hint="write the value out, e.g. --set image_size=[256,256]"
        ) from None
    except yaml.YAMLError:
        return text


def _short_text(text: str) -> str:
    return repr(text if len(text) <= 40 else text[:37] + "...")


def parse_assignments(assignments: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in assignments:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise InvalidInputError(
                f"--set expects key=value, got '{item}'", hint="e.g. --set num_epochs=5 --set image_size=[256,256]"
            )
        key = key.strip()
        if key.startswith("train_params."):
            key = key[len("train_params.") :]
        out[key] = parse_set_value(value.strip())
    return out


def default_document(template: Template, include_local: bool = True) -> dict[str, Any]:
    params = template.defaults(include_local)
    params["template"] = template.name
    return {"dataset_id": "", "dataset_version_id": "", "concepts": [], "train_params": params}


def load_document(path: Path) -> dict[str, Any]:
    if not path.exists():
        raise NotFoundError(f"params file {path} does not exist", hint=f"segcli template params {SEGFORMER} -f {path}")
    import yaml

    from segcli.core import safeyaml

    try:
        doc = safeyaml.safe_load(read_text(path))  # a BOM from a Windows editor is fine; no alias bomb
    except OSError as exc:
        raise InvalidInputError(
            f"cannot read params file {path}: {exc.strerror or exc}", hint="pass a readable YAML file"
        ) from None
    except TextEncodingError as exc:
        raise InvalidInputError(
            f"params file {path} is not readable text: {exc.reason}",
            hint=SAVE_AS_UTF8 + ", or regenerate it with segcli template params",
        ) from None
    except yaml.YAMLError as exc:
        first = str(exc).splitlines()[0]
        raise InvalidInputError(
            f"params file {path} is not valid YAML: {first}",
            hint="plain YAML only (no !!python tags); regenerate with segcli template params",
        ) from None
    if not isinstance(doc, dict):
        raise InvalidInputError(
            f"params file {path} must be a YAML mapping", hint="segcli template params NAME -f FILE writes a valid one"
        )
    return doc


# Which train params a resolved document carries.
FILE_VIEW = "file"  # as the SDK's get_params saves them: platform params, local-only knobs if set
LOCAL_RUN = "local"  # every knob of the template (a local training records them all)
CLOUD_RUN = "cloud"  # platform params only: local-only knobs are never sent to Clarifai


def resolve_document(
    doc: dict[str, Any], templates: list[Template], default_template: str, view: str = FILE_VIEW
) -> tuple[Template, dict[str, Any], list[str]]:
    """Check shape, keys, types, ranges and constraints of a params document once, and fill the
    defaults `view` asks for, all from the template (its YAML, or ListModelTypes on Clarifai).

    Returns the template, the normalised document, and the local-only knobs a CLOUD_RUN dropped
    although the user had changed them (so the caller can say so). Every problem is collected so
    one run tells the user everything that is wrong.
    """
    problems = [f"unknown key '{k}' (allowed: {', '.join(TOP_LEVEL_KEYS)})" for k in doc if k not in TOP_LEVEL_KEYS]
    params = doc.get("train_params") or {}
    if not isinstance(params, dict):
        raise InvalidInputError("train_params must be a mapping", hint="segcli template params NAME -f FILE")
    template = find_template(templates, str(params.get("template") or default_template))
    include_local = view == LOCAL_RUN or (view == FILE_VIEW and not template.on_clarifai)
    out_params: dict[str, Any] = template.defaults(include_local)
    for key, value in params.items():
        spec = template.params.get(key)
        if spec is None:
            problems.append(
                f"train_params: unknown key '{key}' for template {template.name} "
                f"(see: segcli template show {template.name})"
            )
            continue
        out_params[key], problem = check_value(spec, value)
        if problem:
            problems.append(problem)
    if not problems:
        checked = {**template.defaults(), **out_params}
        problems += [p for p in (c.problem(checked) for c in template.constraints) if p]
    concepts = doc.get("concepts") or []
    if not isinstance(concepts, list) or not all(isinstance(c, str) for c in concepts):
        problems.append("concepts must be a list of concept ids")
    for key in ("dataset_id", "dataset_version_id"):
        if doc.get(key) is not None and not isinstance(doc.get(key), str):
            problems.append(f"{key} must be a string")
    if problems:
        raise InvalidInputError(
            problems[0] if len(problems) == 1 else f"{len(problems)} problems in params",
            hint=f"segcli template show {template.name}  lists every param with its range",
            details=problems if len(problems) > 1 else None,
        )
    dropped: list[str] = []
    if view == CLOUD_RUN:
        for name in [n for n in out_params if template.params[n].local_only]:
            if out_params[name] != template.params[name].default:
                dropped.append(f"{name}={out_params[name]!r}")
            del out_params[name]
    normalised = {
        "dataset_id": doc.get("dataset_id") or "",
        "dataset_version_id": doc.get("dataset_version_id") or "",
        "concepts": list(concepts),
        "train_params": out_params,
    }
    return template, normalised, dropped


@dataclass
class ParamsUpdate:
    """What a user asks to change on top of a params document (the seed's update_params)."""

    dataset_id: str | None = None
    dataset_version_id: str | None = None
    concepts: list[str] | None = None
    train_params: dict[str, Any] = field(default_factory=dict)

    def apply(self, doc: dict[str, Any]) -> dict[str, Any]:
        doc = {**doc, "train_params": {**doc.get("train_params", {}), **self.train_params}}
        if self.dataset_id is not None:
            doc["dataset_id"] = self.dataset_id
        if self.dataset_version_id is not None:
            doc["dataset_version_id"] = self.dataset_version_id
        if self.concepts is not None:
            doc["concepts"] = self.concepts
        return doc
