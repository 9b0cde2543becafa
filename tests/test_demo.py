"""`segcli demo` runs every pipeline step and leaves overlays on disk (small settings for speed)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from segcli.cli.demo_cmd import HELD_OUT_IMAGES

pytest.importorskip("torch", reason="the local engine needs the [local] extra")


def test_demo_runs_the_whole_pipeline(cli, tmp_path):
    out = tmp_path / "demo"
    result = cli("demo", "--dir", out, "--images", "16", "--size", "64", "--epochs", "2")
    assert result.code == 0, result.err
    for step in ("app create", "dataset upload", "template params", "train", "predict", "model eval"):
        assert f"$ segcli {step}" in result.err, step
    doc = json.loads((out / "predictions" / "predictions.json").read_text())
    assert len(doc["items"]) == HELD_OUT_IMAGES
    assert all((out / "predictions" / item["overlay_path"]).exists() for item in doc["items"])
    assert "Overlays:" in result.err


def test_demo_json_prints_one_summary_object(cli, tmp_path):
    out = tmp_path / "demo"
    result = cli("demo", "--dir", out, "--images", "16", "--size", "64", "--epochs", "1", "-o", "json")
    assert result.code == 0, result.err
    summary = json.loads(result.out)  # stdout is that one object: the steps' data went to stderr
    assert set(summary) >= {"mIoU", "per_class", "seconds", "overlays", "model", "app"}
    assert 0 <= summary["mIoU"] <= 1 and summary["seconds"] > 0
    assert set(summary["per_class"]) == {"background", "circle", "square", "triangle"}
    assert all(0 <= v["iou"] <= 1 for v in summary["per_class"].values() if v["iou"] is not None)
    assert summary["app"] == "segcli-demo" and summary["model"] == "shapes-segmenter"
    assert list(Path(summary["overlays"]).glob("*.overlay.png"))
    assert "$ segcli model eval" in result.err and "segcli_EfficientNetLite0" in result.err
