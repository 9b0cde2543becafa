"""Backend name -> implementation, imported only when a command needs one (keeps --help fast)."""
from __future__ import annotations

from segcli.backends.base import Backend
from segcli.config import Settings, data_dir


def open_backend(settings: Settings) -> Backend:
    if settings.backend == "clarifai":
        from segcli.backends.clarifai.backend import ClarifaiBackend

        return ClarifaiBackend.from_settings(settings)
    from segcli.backends.local.backend import LocalBackend

    return LocalBackend(data_dir())
