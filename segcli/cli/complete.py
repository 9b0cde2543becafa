"""Shell completion: the values a TAB offers for segcli's options and arguments.

Typer calls these (`autocompletion=` on the options and arguments) in the short process a shell
starts on TAB (`segcli completion bash|zsh|fish` prints the hook). They must answer in
milliseconds, print nothing and never fail, so:
- this module imports only the standard library; what a callback needs loads inside it;
- local backend: ids come from the store's SQLite file, opened read-only
  (backends/local/catalog.py): no backend object, no migration, no numpy or torch;
- other backends (Clarifai): ids come only from what list commands cached a few minutes ago
  (cli/complete_cache.py); a TAB never waits on the network;
- any error answers no candidates, silently.
What is already typed scopes the ids: `--model M` before a VERSION offers M's versions, a
DATASET before --dataset-version offers its versions; the app and backend resolve as for the
command itself (--app / --profile / --backend flag -> SEGCLI_* env -> the profile).
"""

from __future__ import annotations

import functools
from typing import Callable, Iterable, Optional

from segcli.core import statuses as status_names

Entry = tuple[str, str, str]  # id, help, status
Candidates = list[tuple[str, str]]

# Model-version statuses (core/statuses.py) each command accepts.
TRAINED = frozenset({status_names.TRAINED})
RUNNING = status_names.RUNNING
RESUMABLE = status_names.RESUMABLE


def _quiet(fn: Callable[..., Iterable]) -> Callable[..., Candidates]:
    """No exception and no output ever reach the shell: a failing lookup offers nothing."""

    @functools.wraps(fn)
    def wrapper(ctx, incomplete):
        try:
            return [(value, help_) for value, help_ in fn(ctx, incomplete or "")]
        except Exception:  # noqa: BLE001 - a TAB must never print a traceback
            return []

    return wrapper


def click_callback(fn: Callable[..., Candidates]):
    """A callback of this module as a plain Click option's `shell_complete` (the root's options
    are Click's, not Typer's)."""

    def shell_complete(ctx, param, incomplete):
        from click.shell_completion import CompletionItem

        return [
            CompletionItem(value, help=help_ or None)
            for value, help_ in fn(ctx, incomplete)
            if value.startswith(incomplete or "")
        ]

    return shell_complete


def _param(ctx, *names: str) -> Optional[str]:
    """The first of these parameters typed so far, in this command or a parent group."""
    while ctx is not None:
        values = _typed(ctx)
        for name in names:
            if values.get(name):
                return str(values[name])
        ctx = ctx.parent
    return None


def _typed(ctx) -> dict:
    """ctx.params, plus the arguments Click left unparsed: completing an option's value, Click
    stops at that option (it has no value yet) and leaves the arguments typed before it in
    ctx.args, in order (`dataset preview D --dataset-version <TAB>`)."""
    values = dict(ctx.params)
    leftovers = list(getattr(ctx, "args", ()))
    for param in getattr(ctx.command, "params", ()):
        if param.param_type_name == "argument" and values.get(param.name) is None and leftovers:
            values[param.name] = leftovers.pop(0)
    return values


def _settings(ctx):
    from segcli.config import resolve

    root = ctx.find_root().params
    return resolve(root.get("profile"), {"backend": root.get("backend")})


def _app(ctx, settings) -> Optional[str]:
    return _param(ctx, "app", "app_id") or settings.get("app")


def _lookup(settings, kind: str, **scope: Optional[str]) -> list[Entry]:
    from segcli.cli import complete_cache

    if not complete_cache.caches(settings):
        from segcli.backends.registry import catalog_ids
        from segcli.config import data_dir

        return catalog_ids(settings.backend, data_dir(), kind, **{k: v for k, v in scope.items() if v}) or []
    if any(not v for v in scope.values()):
        return []
    return complete_cache.recall(settings, kind, tuple(scope.values()))


def _entries(entries: Iterable[Entry], statuses: Optional[frozenset] = None) -> Candidates:
    return [(e[0], e[1]) for e in entries if statuses is None or e[2] in statuses]


# -- ids ------------------------------------------------------------------------------------
@_quiet
def apps(ctx, incomplete):
    return _entries(_lookup(_settings(ctx), "apps"))


@_quiet
def datasets(ctx, incomplete):
    settings = _settings(ctx)
    return _entries(_lookup(settings, "datasets", app=_app(ctx, settings)))


@_quiet
def models(ctx, incomplete):
    settings = _settings(ctx)
    return _entries(_lookup(settings, "models", app=_app(ctx, settings)))


def model_versions(statuses: Optional[frozenset] = None) -> Callable[..., Candidates]:
    """Versions of the --model typed so far (of every model of the app without one), limited
    to `statuses`: predict offers TRAINED ones, cancel running ones, resume failed/cancelled.
    A cached status may be minutes old (a run ends), so cached versions are all offered, their
    status as last seen in the help."""

    @_quiet
    def versions(ctx, incomplete):
        from segcli.cli import complete_cache

        settings = _settings(ctx)
        app_id, model_id = _app(ctx, settings), _param(ctx, "model", "model_id")
        filtered = None if complete_cache.caches(settings) else statuses
        if model_id:
            return _entries(_lookup(settings, "versions", app=app_id, model=model_id), filtered)
        return _entries(_across(settings, "app_versions", app_id, "models", "versions", "model"), filtered)

    return versions


@_quiet
def dataset_versions(ctx, incomplete):
    """Versions of the dataset typed so far (DATASET or --dataset), else of every dataset."""
    settings = _settings(ctx)
    app_id, dataset_id = _app(ctx, settings), _param(ctx, "dataset", "dataset_id")
    if dataset_id:
        return _entries(_lookup(settings, "dataset_versions", app=app_id, dataset=dataset_id))
    return _entries(_across(settings, "app_dataset_versions", app_id, "datasets", "dataset_versions", "dataset"))


def _across(settings, app_kind: str, app_id: Optional[str], parent_kind: str, kind: str, key: str) -> list[Entry]:
    """`kind` of every parent in the app (every model's versions): one query locally, parent by
    parent from the cache, with the parent named in the help."""
    from segcli.cli import complete_cache

    if not complete_cache.caches(settings):
        return _lookup(settings, app_kind, app=app_id)
    found: list[Entry] = []
    for parent, _, _ in _lookup(settings, parent_kind, app=app_id):
        found += [(e[0], f"{parent}: {e[1]}", e[2]) for e in _lookup(settings, kind, app=app_id, **{key: parent})]
    return found


@_quiet
def templates(ctx, incomplete):
    """The backend's templates: local YAML files; on Clarifai what `template list` cached,
    else the local templates that are on Clarifai too."""
    from segcli.cli import complete_cache

    settings = _settings(ctx)
    if complete_cache.caches(settings):
        cached = complete_cache.recall(settings, "templates", ())
        if cached:
            return _entries(cached)
    return [
        (name, short(description))
        for name, description, on_clarifai in _local_templates()
        if not complete_cache.caches(settings) or on_clarifai
    ]


def _local_templates() -> Iterable[tuple[str, str, bool]]:
    """(name, description, on_clarifai) of the template YAML files: from the parsed copy
    `template list` leaves in the data dir while the files are unchanged (no PyYAML import),
    else read with libyaml (~2 ms for both files against ~50 ms for the pure-Python loader).
    Core/templates' full validation is not needed by a TAB; nothing is written."""
    from segcli.core.paths import TEMPLATES_CACHE, data_dir
    from segcli.core.templates import template_documents

    for _, raw in template_documents(data_dir() / TEMPLATES_CACHE, write=False):
        raw = raw or {}
        yield str(raw["name"]), " ".join(str(raw.get("description", "")).split()), bool(raw.get("on_clarifai"))


def short(text: str, width: int = 60) -> str:
    """A description cut to fit beside a candidate."""
    return text if len(text) <= width else text[: width - 1].rstrip() + "…"


# -- configuration --------------------------------------------------------------------------
@_quiet
def profiles(ctx, incomplete):
    from segcli.config import ConfigFile

    file = ConfigFile.load()
    return [
        (name, p.get("backend", "") + (" (active)" if name == file.current else ""))
        for name, p in sorted(file.profiles.items())
    ]


@_quiet
def backends(ctx, incomplete):
    from segcli.backends.registry import BACKENDS

    return [(name, spec.description) for name, spec in BACKENDS.items()]


@_quiet
def setting_keys(ctx, incomplete):
    from segcli.config import ENV_FOR_KEY

    return [(key, f"env {env}") for key, env in ENV_FOR_KEY.items()]


@_quiet
def setting_values(ctx, incomplete):
    """`config set KEY <TAB>`: backend names, or app ids; nothing for free text and secrets."""
    key = _param(ctx, "key")
    if key == "backend":
        return backends(ctx, incomplete)
    if key == "app":
        return apps(ctx, incomplete)
    return []


def choices(*values: str) -> Callable[..., Candidates]:
    """A fixed set of values (formats, shells)."""

    @_quiet
    def fixed(ctx, incomplete):
        return [(v, "") for v in values]

    return fixed


output_formats = choices("table", "json", "yaml")  # render/output.FORMATS (checked by a test)


def register_shells() -> None:
    """Register the shells' completion protocols: Typer's, with zsh and fish showing each
    candidate's help as plain text. Typer renders help through rich (markup), an import of
    ~0.2 s on every TAB; segcli's completion help is plain text, so that is skipped."""
    import re

    from click.shell_completion import add_completion_class
    from typer._completion_classes import FishComplete, ZshComplete
    from typer.completion import completion_init

    class PlainZsh(ZshComplete):
        def format_completion(self, item) -> str:
            def escape(s: str) -> str:  # as Typer's ZshComplete escapes
                return (
                    s.replace('"', '""').replace("'", "''").replace("$", "\\$").replace("`", "\\`").replace(":", r"\\:")
                )

            if item.help:
                return f'"{escape(item.value)}":"{escape(item.help)}"'
            return f'"{escape(item.value)}"'

    class PlainFish(FishComplete):
        def format_completion(self, item) -> str:
            if item.help:
                return item.value + "\t" + re.sub(r"\s", " ", item.help)
            return item.value

    completion_init()
    add_completion_class(PlainZsh, "zsh")
    add_completion_class(PlainFish, "fish")
