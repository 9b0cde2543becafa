"""`segcli demo` runs every pipeline step and leaves overlays on disk (small settings for speed)."""
from __future__ import annotations

import json

import pytest

pytest.importorskip("torch", reason="the local engine needs the [local] extra")


def test_demo_runs_the_whole_pipeline(cli, tmp_path):
    out = tmp_path / "demo"
    result = cli("demo", "--dir", out, "--images", "16", "--size", "64", "--epochs", "2")
    assert result.code == 0, result.err
    for step in ("app create", "dataset upload", "template params", "train", "predict", "model eval"):
        assert f"$ segcli {step}" in result.err, step
    doc = json.loads((out / "predictions" / "predictions.json").read_text())
    assert len(doc["items"]) == 8
    assert all((out / "predictions" / item["overlay_path"]).exists() for item in doc["items"])
    assert "Overlays:" in result.err
