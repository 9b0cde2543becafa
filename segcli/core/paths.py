"""Where segcli keeps its state: everything under SEGCLI_HOME when it is set (tests and CI
relocate it), else the platform's config and data folders (platformdirs). Pure: any layer,
the engine's weights cache included, may ask without importing the config machinery."""

from __future__ import annotations

import os
from pathlib import Path

# Under data_dir(). Constants here, not in backends/local/store.py, so that completion and error
# reporting name these files without importing the store (SQLite wrapper, blob store).
DB_NAME = "segcli.db"  # the local store's database; completion reads it (backends/local/catalog.py)
# The template YAML files parsed (core/templates.template_documents): written by `template list`
# and co., read by completion.
TEMPLATES_CACHE = "cache/templates.json"


def config_dir() -> Path:
    home = os.environ.get("SEGCLI_HOME")
    if home:
        return Path(home)
    import platformdirs

    return Path(platformdirs.user_config_dir("segcli"))


def data_dir() -> Path:
    home = os.environ.get("SEGCLI_HOME")
    if home:
        return Path(home) / "data"
    import platformdirs

    return Path(platformdirs.user_data_dir("segcli"))
