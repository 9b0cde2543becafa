"""The labelling and training tools' own readers, for tests/test_tool_readers.py, where they can be
had. None is a dev dependency, and why (checked 2026, this machine: Python 3.11, torch 2.13 CPU):

- ultralytics 8.4 requires torchvision; the only torchvision on the registry that imports beside
  a torch is 0.29 for torch 2.14, a multi-GB CUDA build (shared/docs/engine-notes.md), so
  `pip install ultralytics` would replace the pinned CPU torch. Installed with --no-deps (plus
  opencv-python-headless, polars, psutil, ultralytics-thop), its dataset loader runs: it only
  reads torchvision's *version* at import, which a metadata stub on sys.path answers. The stub
  lives here, in a temporary folder, never in segcli.
- labelme 6 imports PyQt5 (and onnxruntime, osam...) from its package's __init__; its file
  reader (labelme/_label_file.py) and rasteriser (labelme/utils/shape.py) need only numpy,
  PIL, tifffile and loguru. `labelme_module` loads those two files from the installed package
  under a stand-in `labelme` package (a stand-in PyQt5.QtGui for utils/image.py's one Qt
  helper), so the code that reads the JSON is labelme's own, unmodified.
- datumaro 1.13 pins pillow~=12 and numpy<2.5 and pulls pandas and pyarrow: imported as is (its
  VOC reader, and its CVAT exporter writing the XML segcli reads back).

Where they are: installed in the venv, or in a folder named by SEGCLI_TOOL_READERS, which is
appended to sys.path so the venv's own numpy and PIL keep winning. Without them the tests skip,
saying so. The folder, as made for the issue-20 measurements (2026-12-05, all three ran):

    pip install --no-deps --target DIR ultralytics opencv-python-headless polars psutil \
        ultralytics-thop labelme tifffile loguru
    pip install --target DIR2 datumaro && cp -rn DIR2/* DIR/
    SEGCLI_TOOL_READERS=DIR python -m pytest tests/test_tool_readers.py

Re-checked 2026-12-06 (ultralytics 8.4.190 incl. its SemanticDataset, datumaro 1.13.12): 4 passed
(labelme not installed that time).
"""

from __future__ import annotations

import importlib.util
import os
import sys
import types
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest


def _extra_path() -> list[str]:
    folder = os.environ.get("SEGCLI_TOOL_READERS")
    return [folder] if folder and Path(folder).is_dir() else []


@contextmanager
def on_path(*folders: str) -> Iterator[None]:
    added = [f for f in [*_extra_path(), *folders] if f not in sys.path]
    sys.path.extend(added)
    importlib.invalidate_caches()
    try:
        yield
    finally:
        for folder in added:
            sys.path.remove(folder)


@contextmanager
def ultralytics_dataset(tmp_path: Path, monkeypatch) -> Iterator[types.SimpleNamespace]:
    """ultralytics' YOLODataset, check_det_dataset and get_cfg while the block runs, or skip."""
    stub = tmp_path / "torchvision-stub"
    info = stub / "torchvision-0.28.0.dist-info"
    info.mkdir(parents=True, exist_ok=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: torchvision\nVersion: 0.28.0\n")
    monkeypatch.setenv("YOLO_OFFLINE", "1")
    monkeypatch.setenv("YOLO_CONFIG_DIR", str(tmp_path / "ultralytics-config"))
    import PIL.Image

    # ultralytics replaces PIL.Image.open at import (to install a HEIF plugin on a file PIL cannot
    # identify): put PIL's own back for the tests after this one.
    monkeypatch.setattr(PIL.Image, "open", PIL.Image.open)
    with on_path(str(stub)):
        try:
            from ultralytics.cfg import get_cfg
            from ultralytics.data.dataset import YOLODataset
            from ultralytics.data.utils import check_det_dataset
        except ImportError as e:
            pytest.skip(f"ultralytics' dataset loader is not importable here ({e}); see tests/tool_readers.py")
        try:  # its semantic-segmentation dataset (`yolo semseg`, PNG masks), where this version has it
            from ultralytics.data.dataset import SemanticDataset
        except ImportError:
            SemanticDataset = None
        yield types.SimpleNamespace(
            YOLODataset=YOLODataset,
            SemanticDataset=SemanticDataset,
            check_det_dataset=check_det_dataset,
            get_cfg=get_cfg,
        )


def labelme_module() -> types.SimpleNamespace:
    """labelme's own read_label_file and shape_to_mask, loaded without Qt, or skip."""
    with on_path():
        spec = importlib.util.find_spec("labelme")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("labelme is not installed here; see tests/tool_readers.py")
    package = Path(list(spec.submodule_search_locations)[0])
    saved = {
        k: sys.modules.get(k)
        for k in (
            "labelme",
            "labelme.utils",
            "labelme._label_file",
            "labelme.utils.image",
            "labelme.utils.shape",
            "PyQt5",
            "PyQt5.QtGui",
        )
    }
    try:
        with on_path():
            fake = types.ModuleType("labelme")
            fake.__path__ = [str(package)]
            fake.__version__ = _version("labelme")
            utils = types.ModuleType("labelme.utils")
            utils.__path__ = [str(package / "utils")]
            fake.utils = utils
            qt = types.ModuleType("PyQt5")
            qt.QtGui = types.ModuleType("PyQt5.QtGui")
            sys.modules.update({"labelme": fake, "labelme.utils": utils, "PyQt5": qt, "PyQt5.QtGui": qt.QtGui})
            try:
                image = _load("labelme.utils.image", package / "utils" / "image.py")
                for name in ("apply_exif_orientation", "img_b64_to_arr", "img_data_to_pil", "img_data_to_arr"):
                    setattr(utils, name, getattr(image, name))
                label_file = _load("labelme._label_file", package / "_label_file.py")
                shape = _load("labelme.utils.shape", package / "utils" / "shape.py")
            except ImportError as e:
                pytest.skip(f"labelme's file reader cannot be loaded here ({e}); see tests/tool_readers.py")
        return types.SimpleNamespace(
            read_label_file=label_file.read_label_file,
            LabelFile=label_file.LabelFile,
            shape_to_mask=shape.shape_to_mask,
            version=fake.__version__,
        )
    finally:
        for key, module in saved.items():
            if module is None:
                sys.modules.pop(key, None)
            else:
                sys.modules[key] = module


def _version(name: str) -> str:
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "unknown"


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@contextmanager
def datumaro() -> Iterator[types.ModuleType]:
    with on_path():
        try:
            import datumaro as dm
        except ImportError as e:
            pytest.skip(f"datumaro is not importable here ({e}); see tests/tool_readers.py")
        yield dm
