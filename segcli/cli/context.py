"""What every command shares: resolved settings, one backend, one output sink, common options."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Optional

import click
import typer

from segcli.cli import complete
from segcli.config import Settings, resolve
from segcli.core.errors import ConfigError, InvalidInputError
from segcli.render.output import FORMATS, Output


def one_of(*choices: str):
    """A Typer callback refusing any value but `choices` (Click's usage error, exit 2)."""

    def check(value: str) -> str:
        if value not in choices:
            raise typer.BadParameter(f"must be one of {', '.join(choices)}")
        return value

    return check


def comma_list(value: Optional[str]) -> Optional[list[str]]:
    """ "a, b,,c" -> ["a", "b", "c"]; nothing given -> None (so a default applies)."""
    return [c.strip() for c in value.split(",") if c.strip()] if value else None


class FiniteFloat(click.FloatRange):
    """The type of every float option: a number in the range, and finite. click's FloatRange
    lets "nan" through any range (every comparison with NaN is false) and "inf" through an open
    one; a NaN --max-invalid-percent would accept any share of bad items."""

    name = "finite float"

    def convert(self, value, param, ctx):
        try:
            number = float(value)
        except (TypeError, ValueError):
            return super().convert(value, param, ctx)  # click's own "is not a valid float"
        if not math.isfinite(number):
            self.fail(f"{value} is not a finite number", param, ctx)
        return super().convert(value, param, ctx)


_check_format = one_of(*FORMATS)


# Options many commands share; each carries its shell completion (cli/complete.py).
OutputOpt = Annotated[
    str,
    typer.Option(
        "--output",
        "-o",
        help="table | json | yaml (data on stdout).",
        callback=_check_format,
        autocompletion=complete.output_formats,
    ),
]
AppOpt = Annotated[
    Optional[str],
    typer.Option(
        "--app", "-a", help="App id (default: SEGCLI_APP, then the profile's app).", autocompletion=complete.apps
    ),
]
ModelOpt = Annotated[Optional[str], typer.Option("--model", "-m", help="Model id.", autocompletion=complete.models)]
RequiredModelOpt = Annotated[str, typer.Option("--model", "-m", help="Model id.", autocompletion=complete.models)]
TrainedVersionOpt = Annotated[
    Optional[str],
    typer.Option(
        "--version",
        help="Model version (default: latest trained).",
        autocompletion=complete.model_versions(complete.TRAINED),
    ),
]
DatasetVersionOpt = Annotated[
    Optional[str],
    typer.Option("--dataset-version", help="Dataset version id.", autocompletion=complete.dataset_versions),
]
TemplateOpt = Annotated[
    Optional[str],
    typer.Option(
        "--template", "-t", help="Training template (segcli template list).", autocompletion=complete.templates
    ),
]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress on stderr.")]
PrecisionOpt = Annotated[
    str,
    typer.Option(
        "--precision",
        click_type=click.Choice(["fp32", "fp16", "int8"]),
        help="fp32 (the trained weights), fp16 (half precision) or int8 (quantized, calibrated on the "
        "version's training images; 4x smaller, ~1.7x faster model on CPUs: segcli benchmark "
        "tells). fp16/int8 run on ONNX Runtime; each is built once per version and its held-out mIoU "
        "recorded (segcli model show).",
    ),
]
EngineOpt = Annotated[
    str,
    typer.Option(
        "--engine",
        click_type=click.Choice(["auto", "onnx", "torch"]),
        help="Local inference engine: onnx (ONNX Runtime), torch, or auto "
        "(onnx when installed). Ignored by the clarifai backend.",
    ),
]


def _tile(value: str) -> "int | str":
    from segcli.core.geometry import parse_tile

    try:
        return parse_tile(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc).replace("--tile ", "")) from None


def _megapixels(value: Optional[float]) -> Optional[float]:
    """--max-megapixels: raise (or lower) the decompression-bomb guard for this command."""
    if value is None:
        return None
    from PIL import Image

    Image.MAX_IMAGE_PIXELS = int(value * 1e6)
    return value


TileOpt = Annotated[
    str,
    typer.Option(
        "--tile",
        callback=_tile,
        metavar="auto|off|SIZE",
        help="Sliding windows over big images. auto: versions trained with resize_mode=native slide "
        "their crop_size window over any image larger than it (others predict the whole resized "
        "image, as they trained); off: whole image always; SIZE: SIZE x SIZE windows (at the "
        "model's resolution) for any version. An image that fits one window gives the whole-image "
        "result exactly. Local backend only.",
    ),
]
OverlapOpt = Annotated[
    Optional[float],
    typer.Option(
        "--overlap",
        click_type=FiniteFloat(0.0, 0.9),
        help="Share of a window its neighbour overlaps (default: the version's tile_overlap, 0.25); "
        "overlapping logits are blended, weighted towards each window's centre.",
    ),
]
MaxMegapixelsOpt = Annotated[
    Optional[float],
    typer.Option(
        "--max-megapixels",
        callback=_megapixels,
        click_type=FiniteFloat(0.0, 1e6, min_open=True),
        help="Refuse images above this many megapixels before decoding (decompression-bomb guard; "
        "default Pillow's 89). Raise it for very large photos.",
    ),
]
YesOpt = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]
ExistOkOpt = Annotated[bool, typer.Option("--exist-ok", help="Succeed if it already exists.")]


@dataclass
class State:
    """Global flags from the root callback; the backend opens lazily on first use."""

    profile: Optional[str] = None
    backend_flag: Optional[str] = None
    _settings: Optional[Settings] = None
    _backend: Any = None
    secrets: list[str] = field(default_factory=list)

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = resolve(self.profile, {"backend": self.backend_flag})
            pat = self._settings.get("pat")
            if pat:
                self.secrets.append(pat)
        return self._settings

    @property
    def backend(self):
        if self._backend is None:
            from segcli.backends.registry import open_backend

            self._backend = open_backend(self.settings)
        return self._backend

    @property
    def backend_class(self):
        """The selected backend's class, without opening it (no store, no connection)."""
        if self._backend is not None:
            return type(self._backend)
        from segcli.backends.registry import backend_class

        return backend_class(self.settings.backend)

    def app_id(self, flag: Optional[str]) -> str:
        app = flag or self.settings.get("app")
        if not app:
            raise ConfigError("no app given", hint="pass --app APP, set SEGCLI_APP, or run: segcli config set app APP")
        return app

    def close(self) -> None:
        if self._backend is not None:
            self._backend.close()
        self._backend = None
        self._settings = None


STATE = State()


def out(fmt: str = "table", quiet: bool = False) -> Output:
    return Output(fmt, quiet)


def save_user_file(path: Path, text: str) -> None:
    """Write a file the user named (-f): atomically, with errors that say what to do."""
    from segcli.core.files import require_parent, write_text_atomic

    require_parent(path)
    try:
        write_text_atomic(path, text)
    except OSError as exc:
        from segcli.core.faults import cannot_write

        raise cannot_write(exc, path, hint="choose another path") from None


def confirm_or_abort(question: str, yes: bool) -> None:
    """Ask on a terminal; without one, refuse and name --yes (never hang a script)."""
    import sys

    if yes:
        return
    if not sys.stdin.isatty():
        raise InvalidInputError(f"{question} needs confirmation", hint="add --yes to confirm without a prompt")
    if not typer.confirm(question, default=False, err=True):
        raise typer.Exit(1)
