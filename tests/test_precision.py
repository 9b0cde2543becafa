"""Reduced precision (issue 22): `model export --precision`, `predict --precision` and its cached
graphs, the held-out mIoU per precision in `model show`, `segcli benchmark`, and the cloud's
refusals. A tiny U-Net trained once per module (conftest.trained_home)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from segcli.core.errors import ExitCode

from conftest import mask_upload_argv, ok, tamper_normalisation, train_argv

pytest.importorskip("torch", reason="the local engine needs the [local] extra")
pytest.importorskip("onnxruntime.quantization", reason="needs onnxruntime")

from segcli.engine.onnx_predict import lane_count  # noqa: E402

TRAIN = train_argv("--set", "num_epochs=2", "--set", "val_percent=25")


def model_dir(home: Path) -> Path:
    [run] = (home / "data" / "runs").iterdir()
    return run / "model"


def _labels(path: Path, images: np.ndarray) -> np.ndarray:
    """argmax of an exported contract file's logits on uint8 images, normalised as its metadata says."""
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    meta = sess.get_modelmeta().custom_metadata_map
    mean, std = (np.asarray(json.loads(meta[k]), np.float32) for k in ("segcli.mean", "segcli.std"))
    x = ((images.astype(np.float32) / 255.0 - mean) / std).transpose(0, 3, 1, 2)
    return sess.run(["logits"], {"pixel_values": np.ascontiguousarray(x)})[0].argmax(1)


def _images(shapes_data: Path) -> np.ndarray:
    from PIL import Image

    return np.stack([np.asarray(Image.open(p).convert("RGB")) for p in sorted((shapes_data / "images").iterdir())])


@pytest.mark.parametrize("precision", ["fp16", "int8"])
def test_export_precision_loads_and_agrees_with_fp32(cli, home, shapes_data, tmp_path, precision):
    import onnx

    base = ["model", "export", "--model", "m", "--app", "a", "-o", "json", "-q"]
    fp32 = ok(cli(*base, "-f", tmp_path / "m.onnx")).json()
    doc = ok(cli(*base, "-f", tmp_path / f"m.{precision}.onnx", "--precision", precision)).json()
    assert fp32["precision"] == "fp32" and doc["precision"] == precision
    assert doc["sha256"] == hashlib.sha256((tmp_path / f"m.{precision}.onnx").read_bytes()).hexdigest()
    model = onnx.load(str(tmp_path / f"m.{precision}.onnx"))
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta["segcli.precision"] == precision and json.loads(meta["segcli.classes"]) == doc["classes"]
    if precision == "int8":  # really quantized: integer weights
        assert any(i.data_type == onnx.TensorProto.INT8 for i in model.graph.initializer)
    images = _images(shapes_data)
    agree = float((_labels(tmp_path / "m.onnx", images) == _labels(tmp_path / f"m.{precision}.onnx", images)).mean())
    assert agree >= 0.95, agree


def test_precision_is_an_onnx_export(cli, home, tmp_path):
    done = cli(
        "model",
        "export",
        "--model",
        "m",
        "--app",
        "a",
        "--format",
        "safetensors",
        "--precision",
        "int8",
        "-f",
        tmp_path / "m.safetensors",
    )
    assert done.code == ExitCode.INVALID_INPUT and "ONNX" in done.err
    assert not (tmp_path / "m.safetensors").exists()


def _predict(cli, shapes_data, *extra):
    return cli("predict", "--model", "m", "--app", "a", shapes_data / "images", "-o", "json", *extra)


def test_predict_int8_builds_once_reuses_and_records_mIoU(cli, home, shapes_data):
    mdir = model_dir(home)
    fp32 = ok(_predict(cli, shapes_data)).json()
    first = ok(_predict(cli, shapes_data, "--precision", "int8"))
    assert "preparing the int8" in first.err
    graph, record = mdir / "model.int8.onnx", mdir / "model.int8.onnx.json"
    assert json.loads(record.read_text())["sha256"] == hashlib.sha256(graph.read_bytes()).hexdigest()
    stamp = graph.stat().st_mtime_ns, graph.stat().st_ino
    second = ok(_predict(cli, shapes_data, "--precision", "int8"))
    assert "preparing" not in second.err and "measuring" not in second.err  # cached graph, recorded mIoU
    assert (graph.stat().st_mtime_ns, graph.stat().st_ino) == stamp
    assert second.json() == first.json()
    # The same regions format; most pixels of most images get fp32's classes.
    assert [i["input"] for i in first.json()["items"]] == [i["input"] for i in fp32["items"]]

    evaluated = ok(
        cli("model", "eval", "--model", "m", "--app", "a", "--dataset", "d", "--precision", "int8", "-o", "json", "-q")
    ).json()
    assert evaluated["precision"] == "int8" and 0.0 <= evaluated["mIoU"] <= 1.0
    shown = ok(cli("model", "show", "m", "--app", "a", "-o", "json")).json()["model_versions"][0]
    recorded = shown["precision_mIoU"]
    assert set(recorded) == {"fp32", "int8"}
    for entry in recorded.values():
        assert 0.0 <= entry["mIoU"] <= 1.0 and entry["split"] == "held-out" and entry["images"] == 3
    table = ok(cli("model", "show", "m", "--app", "a")).out
    assert "int8" in table and f"{recorded['int8']['mIoU']:.4f}" in table  # (wrapped in a narrow terminal)


def test_a_tampered_int8_graph_is_rebuilt_never_run(cli, home, shapes_data):
    mdir = model_dir(home)
    clean = ok(_predict(cli, shapes_data, "--precision", "int8", "-q")).json()
    path = mdir / "model.int8.onnx"
    tampered = tamper_normalisation(path)
    again = ok(_predict(cli, shapes_data, "--precision", "int8", "-q"))
    assert again.json() == clean  # the tampered graph never ran
    assert path.read_bytes() != tampered
    record = json.loads((mdir / "model.int8.onnx.json").read_text())
    assert record["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()


def test_fp16_predict_and_torch_refusal(cli, home, shapes_data):
    half = ok(_predict(cli, shapes_data, "--precision", "fp16", "-q")).json()
    assert len(half["items"]) == len(list((shapes_data / "images").iterdir()))
    assert (model_dir(home) / "model.fp16.onnx").is_file()
    torch = _predict(cli, shapes_data, "--precision", "int8", "--engine", "torch")
    assert torch.code == ExitCode.INVALID_INPUT and "ONNX Runtime" in torch.err


def test_benchmark_json_shape(cli, home, monkeypatch):
    monkeypatch.setenv("SEGCLI_BENCHMARK_SECONDS", "0")
    doc = ok(cli("benchmark", "--model", "m", "--app", "a", "-o", "json", "-q")).json()
    assert {
        "model_id",
        "version_id",
        "images",
        "split",
        "dataset_id",
        "dataset_version_id",
        "batch_size",
        "cpus",
        "load_average",
        "rows",
    } <= set(doc)
    assert doc["split"] == "held-out" and doc["images"] == 3
    assert [(r["engine"], r["precision"]) for r in doc["rows"]] == [
        ("onnx", "fp32"),
        ("onnx", "fp16"),
        ("onnx", "int8"),
        ("torch", "fp32"),
    ]
    for row in doc["rows"]:
        assert "error" not in row, row
        assert row["ms_per_image"] > 0 and row["images_per_s"] > 0 and row["peak_rss_mb"] > 0
        assert 0.0 <= row["mIoU"] <= 1.0
        assert row["lanes"] == 1  # 3 images: one batch
    onnx32, torch32 = doc["rows"][0], doc["rows"][3]
    assert abs(onnx32["mIoU"] - torch32["mIoU"]) < 1e-3  # the same model, two engines
    shown = ok(cli("model", "show", "m", "--app", "a", "-o", "json")).json()["model_versions"][0]
    assert set(shown["precision_mIoU"]) == {"fp32", "fp16", "int8"}  # held-out numbers recorded
    # 12 images, two batches: the ONNX Runtime rows run them side by side where lanes pay (as
    # predict would); told to, whatever this machine measures
    monkeypatch.setenv("SEGCLI_LANES", "2")
    on_d = ok(cli("benchmark", "--model", "m", "--app", "a", "--dataset", "d", "-o", "json", "-q")).json()
    assert on_d["images"] == 12
    assert [r["lanes"] for r in on_d["rows"]] == [lane_count(2)] * 3 + [1]
    assert abs(on_d["rows"][0]["mIoU"] - on_d["rows"][3]["mIoU"]) < 1e-3
    table = ok(cli("benchmark", "--model", "m", "--app", "a", "--dataset", "d", "-q"))
    assert "images/s" in table.out.lower() and "int8" in table.out


def test_a_deleted_training_dataset_refuses_new_int8_only(cli, home, shapes_data, tmp_path):
    # int8 calibrates on the version's training images and every precision is measured on its
    # held-out ones: once that dataset is deleted, an int8 graph built before still runs, a new
    # one is refused with the reason, and fp16 runs without its held-out number.
    images = shapes_data / "images"
    ok(cli("dataset", "create", "other", "--app", "a"))
    ok(cli(*mask_upload_argv(shapes_data, "other"), "-q"))
    ok(cli("dataset", "delete", "d", "--app", "a", "--yes"))

    refused = cli("predict", "--model", "m", "--app", "a", images, "--precision", "int8", "--out", tmp_path / "p")
    assert refused.code == ExitCode.NOT_FOUND
    assert "int8 calibrates on the version's training images" in refused.err and "'d'" in refused.err
    assert "--precision fp16 or fp32" in refused.err and not (tmp_path / "p").exists()
    export = cli("model", "export", "--model", "m", "--app", "a", "--precision", "int8", "-f", tmp_path / "m.onnx")
    assert export.code == ExitCode.NOT_FOUND and not (tmp_path / "m.onnx").exists()

    ran = ok(cli("predict", "--model", "m", "--app", "a", images, "--precision", "fp16", "-o", "json"))
    assert len(ran.json()["items"]) == len(list(images.iterdir()))
    assert "held-out mIoU of fp32, fp16 is not measured" in ran.err and "'d' no longer exists" in ran.err
    shown = ok(cli("model", "show", "m", "--app", "a", "-o", "json")).json()["model_versions"][0]
    assert shown["precision_mIoU"] == {}
    bench = cli("benchmark", "--model", "m", "--app", "a", "-o", "json")
    assert bench.code == ExitCode.NOT_FOUND and "--dataset" in bench.err
    other = ok(cli("benchmark", "--model", "m", "--app", "a", "--dataset", "other", "-o", "json"))
    assert [(r["engine"], r["precision"]) for r in other.json()["rows"]] == [
        ("onnx", "fp32"),
        ("onnx", "fp16"),
        ("torch", "fp32"),
    ]
    assert "no int8 row" in other.err


def test_an_int8_graph_built_before_the_dataset_went_still_runs(cli, home, shapes_data, tmp_path):
    images = shapes_data / "images"
    before = ok(cli("predict", "--model", "m", "--app", "a", images, "--precision", "int8", "-o", "json", "-q"))
    ok(cli("dataset", "create", "other", "--app", "a"))
    ok(cli(*mask_upload_argv(shapes_data, "other"), "-q"))
    ok(cli("dataset", "delete", "d", "--app", "a", "--yes"))
    after = ok(cli("predict", "--model", "m", "--app", "a", images, "--precision", "int8", "-o", "json", "-q"))
    assert after.json()["items"] == before.json()["items"]
    # the benchmark's int8 row needs no calibration either: its graph is cached
    rows = ok(cli("benchmark", "--model", "m", "--app", "a", "--dataset", "other", "-o", "json", "-q")).json()["rows"]
    assert ("onnx", "int8") in [(r["engine"], r["precision"]) for r in rows]


def test_cloud_refuses_benchmark_and_reduced_precision(cli, fake_clarifai, monkeypatch, tmp_path, shapes_data):
    for key, value in {**fake_clarifai.env(), "SEGCLI_BACKEND": "clarifai"}.items():
        monkeypatch.setenv(key, value)
    bench = cli("benchmark", "--model", "m", "--app", "a")
    assert bench.code == ExitCode.CONFLICT
    assert "the cloud serves its own models" in bench.err and "hint:" in bench.err
    pred = cli("predict", "--model", "m", "--app", "a", shapes_data / "images", "--precision", "int8")
    assert pred.code == ExitCode.CONFLICT and "the cloud serves its own models" in pred.err
    evaluated = cli("model", "eval", "--model", "m", "--app", "a", "--dataset", "d", "--precision", "fp16")
    assert evaluated.code == ExitCode.CONFLICT and "the cloud serves its own models" in evaluated.err
    export = cli("model", "export", "--model", "m", "--app", "a", "--precision", "int8", "-f", tmp_path / "x.onnx")
    assert export.code == ExitCode.CONFLICT and "cannot export weights" in export.err
    assert not (tmp_path / "x.onnx").exists()


def _attention_graph() -> bytes:
    """One self-attention block: weight MatMuls for q, k, v and the output, a score MatMul, a
    scale between the scores and the Softmax (SegFormer's export scales q and k instead; others
    write it so), a Softmax and a value MatMul."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    weights = [numpy_helper.from_array(rng.normal(0, 0.3, (8, 8)).astype(np.float32), n) for n in "qkvo"]
    scale = numpy_helper.from_array(np.asarray(8**-0.5, np.float32), "scale")
    nodes = [
        *(helper.make_node("MatMul", ["x", w], [f"{w}_out"], name=f"proj_{w}") for w in "qkv"),
        helper.make_node("Transpose", ["k_out"], ["k_t"], perm=[0, 2, 1], name="k_transpose"),
        helper.make_node("MatMul", ["q_out", "k_t"], ["scores"], name="score_matmul"),
        helper.make_node("Mul", ["scale", "scores"], ["scaled"], name="score_scale"),  # the constant first
        helper.make_node("Softmax", ["scaled"], ["attn"], axis=-1, name="softmax"),
        helper.make_node("MatMul", ["attn", "v_out"], ["mixed"], name="value_matmul"),
        helper.make_node("MatMul", ["mixed", "o"], ["y"], name="proj_o"),
    ]
    graph = helper.make_graph(
        nodes,
        "attention",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 16, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 16, 8])],
        [*weights, scale],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()


@pytest.mark.parametrize("float_attention", [True, False])
def test_int8_keeps_attention_float_and_quantizes_the_projections(float_attention):
    import onnx
    import onnxruntime as ort

    from segcli.engine.precision import Int8Recipe, int8_graph

    rng = np.random.default_rng(1)
    feeds = [{"x": rng.normal(0, 1, (1, 16, 8)).astype(np.float32)} for _ in range(8)]
    fp32 = _attention_graph()
    data = int8_graph(fp32, None, feeds, Int8Recipe(float_attention=float_attention))
    graph = onnx.load_from_string(data).graph
    quantized = {node.input[0] for node in graph.node if node.op_type == "QuantizeLinear"}
    weights = {node.name: node.input[1] for node in graph.node if node.name.startswith("proj_")}
    # the projections read int8 weights either way
    assert all(weights[f"proj_{w}"] == f"{w}_DequantizeLinear_Output" for w in "qkvo")
    # float attention: nothing between the scores and the value MatMul is quantized
    between = {"scores", "scaled", "attn"}
    assert (between & quantized == set()) if float_attention else (between <= quantized)
    assert ("-attn32" in Int8Recipe(float_attention=float_attention).tag()) == float_attention

    run = [ort.InferenceSession(g, providers=["CPUExecutionProvider"]) for g in (fp32, data)]
    want, got = (s.run(["y"], feeds[0])[0] for s in run)
    assert np.abs(got - want).max() < 0.1 * np.abs(want).max()  # still the same function
