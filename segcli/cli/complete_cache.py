"""Ids a remote backend's list commands saw, kept a few minutes for shell completion.

On Clarifai a TAB cannot ask the server: importing the SDK and one round trip take seconds, and a
TAB must answer at once. So the commands that list ids anyway (`app list`, `dataset list`,
`model list`, `model show`, `dataset version list`, `template list`, `train list`, and `train`
for the version it starts) leave them here, and completion (cli/complete.py) offers them while
they are fresh (TTL_S). The local backend needs none of this: completion reads its store.

One small JSON file per (backend, user id, API base, kind, scope) under
<config dir>/completion-cache/, written atomically with mode 0600; the file name is a hash of
that key. No secret is part of a key or of the data: ids, a short help text, a status.
Writing never fails a command: a cache that cannot be written is simply not there.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Iterable, Optional, Sequence

TTL_S = 600.0
Entry = tuple[str, str, str]  # id, help shown beside it (zsh/fish), status (model versions)


def _path(settings, kind: str, scope: Sequence[str]) -> Path:
    import hashlib  # here: local list commands never get this far

    from segcli.config import config_dir

    key = json.dumps([settings.backend, settings.get("user_id") or "", settings.get("api_base") or "", kind, *scope])
    return config_dir() / "completion-cache" / (hashlib.sha256(key.encode()).hexdigest()[:32] + ".json")


def caches(settings) -> bool:
    """Whether completion reads this cache for `settings`' backend: those that cannot list ids
    from this machine (registry: no `catalog`), i.e. all but the local one."""
    from segcli.backends.registry import BACKENDS

    return not BACKENDS[settings.backend].catalog


def remember(settings, kind: str, scope: Sequence[str], entries: Iterable[Entry], add: bool = False) -> None:
    """Store what a command just listed (`add`: one more entry to what is there)."""
    if not caches(settings):
        return
    from segcli.core.files import write_text_atomic

    entries = [list(e) for e in entries]
    try:
        path = _path(settings, kind, scope)
        if add:
            known = {e[0] for e in entries}
            entries += [list(e) for e in recall(settings, kind, scope) if e[0] not in known]
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(path, json.dumps({"written_at": time.time(), "entries": entries}), mode=0o600)
    except OSError:
        pass


def recall(settings, kind: str, scope: Sequence[str], now: Optional[float] = None) -> list[Entry]:
    """What was stored under this key less than TTL_S ago; [] otherwise."""
    try:
        doc = json.loads(_path(settings, kind, scope).read_text())
        age = (time.time() if now is None else now) - float(doc["written_at"])
        if not 0 <= age <= TTL_S:
            return []
        return [(str(e[0]), str(e[1]), str(e[2])) for e in doc["entries"]]
    except (OSError, ValueError, KeyError, TypeError, IndexError):
        return []


# -- what the commands remember, from the records they listed ----------------------------------
def version_entry(v) -> Entry:
    return v.id, f"{v.status} {_when(v.created_at)}", v.status


def dataset_version_entry(v) -> Entry:
    return v.id, f"{v.inputs} inputs {_when(v.created_at)}", ""


def _when(created_at: str) -> str:
    return created_at[:16].replace("T", " ")  # as the local store's listing shows it


def remember_versions(settings, versions: Iterable) -> None:
    """Model versions, per (app, model) as completion looks them up."""
    by_model: dict[tuple[str, str], list[Entry]] = {}
    for v in versions:
        by_model.setdefault((v.app_id, v.model_id), []).append(version_entry(v))
    for (app_id, model_id), entries in by_model.items():
        remember(settings, "versions", (app_id, model_id), reversed(entries))  # newest first
