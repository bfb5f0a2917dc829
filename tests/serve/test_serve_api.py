"""The HTTP API on a real server: predictions equal PyTorch's, metadata, and every 4xx path."""

import dataclasses
import json
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest
import torch

from zerotune import load_run
from zerotune.compute.threads import available_cpus
from zerotune.data import build_data
from zerotune.errors import UserError
from zerotune.export import ExportOptions, export_run
from zerotune.serve import ServeOptions, create_app, load_served_model, running_server
from zerotune.cli.serve import main as serve_main
from zerotune.serve.model import ServedModel


def probs_close(got, want, atol=1e-5) -> bool:
    return bool(np.allclose(np.asarray(got), want, atol=atol))


def test_health_and_docs(client):
    r = client.get("/health")
    assert r.status_code == 200 and r.json() == {"status": "ok", "model": "cnn", "backend": "pytorch"}
    assert client.get("/docs").status_code == 200
    spec = client.get("/openapi.json").json()
    assert {"/predict", "/health", "/metadata"} <= set(spec["paths"])
    example = spec["components"]["schemas"]["PredictRequest"]["properties"]["inputs"]["examples"][0]
    assert np.asarray(example).shape == (1, 8, 8)


def test_metadata(client, cnn_run):
    m = client.get("/metadata").json()
    assert m["model"]["name"] == "cnn" and m["model"]["backend"] == "pytorch"
    assert m["task"] == "classification" and m["classes"] == [str(i) for i in range(10)]
    assert m["input"]["shape"] == [1, 8, 8] and m["input"]["dtype"] == "float32"
    assert m["input"]["normalisation"]["applied_by_server"] is True
    assert len(m["version"]["model"]) == 12 and m["version"]["zerotune"]
    assert m["model"]["source"]["run"] == str(cnn_run.resolve())
    test = json.loads((cnn_run / "metrics.json").read_text())["test"]  # what the page at / shows of the run
    assert m["run"]["name"] == "cnn" and m["run"]["test"]["accuracy"] == test["accuracy"]
    assert "per_class" not in m["run"]["test"] and m["run"]["steps"] > 0


def test_batch_predictions_equal_pytorch(client, cnn_ref):
    r = client.post("/predict", json={"inputs": cnn_ref.raw[:50].tolist()})
    assert r.status_code == 200
    body = r.json()
    assert body["classes"] == cnn_ref.classes[:50].tolist()
    assert body["labels"] == [cnn_ref.names[c] for c in cnn_ref.classes[:50]]
    assert probs_close(body["probabilities"], cnn_ref.probs[:50])
    assert body["model"] == "cnn" and "values" not in body


@pytest.mark.parametrize("shape", ["one", "grayscale one", "grayscale batch"])
def test_single_examples_and_grayscale_forms(client, cnn_ref, shape):
    x = {"one": cnn_ref.raw[3], "grayscale one": cnn_ref.raw[3, 0], "grayscale batch": cnn_ref.raw[3:4, 0]}[shape]
    body = client.post("/predict", json={"inputs": x.tolist()}).json()
    assert body["classes"] == [int(cnn_ref.classes[3])]
    assert probs_close(body["probabilities"], cnn_ref.probs[3:4])


def test_tabular_model(tabular_run, tabular_ref):
    with running_server(create_app(load_served_model(tabular_run))) as url:
        r = httpx.post(url + "/predict", json={"inputs": tabular_ref.raw.tolist()}, trust_env=False)
        body = r.json()
        assert body["classes"] == tabular_ref.classes.tolist()
        assert set(body["labels"]) <= set(tabular_ref.names)
        assert probs_close(body["probabilities"], tabular_ref.probs)
        meta = httpx.get(url + "/metadata", trust_env=False).json()
        assert meta["input"]["shape"] == [30] and len(meta["input"]["feature_names"]) == 30


def detail(r) -> str:
    d = r.json()["detail"]
    return d if isinstance(d, str) else " ".join(e["msg"] + " " + ".".join(map(str, e["loc"])) for e in d)


@pytest.mark.parametrize("body, message", [
    ({"inputs": "a photo of a seven"},
     "inputs is text; this model takes arrays of numbers: one example of shape [1, 8, 8]"),
    ({"inputs": ["seven", "one"]}, "inputs contains text; this model takes arrays"),
    ({"inputs": [[1, 2], [3]]}, "not a rectangular array"),
    ({"inputs": [1.0, None, 2.0]}, "null values"),
    ({"inputs": [True, False]}, "true/false"),
    ({"inputs": [1, 2, 3]}, "inputs has shape [3]; this model takes"),
    ({"inputs": np.zeros((2, 3, 8, 8)).tolist()}, "inputs has shape [2, 3, 8, 8]"),
    ({"inputs": []}, "inputs has shape [0]"),
    ({"inputs": np.zeros((0, 1, 8, 8)).tolist()}, "has shape [0]"),
    ({"inputs": np.zeros((101, 1, 8, 8)).tolist()}, "inputs holds 101 examples; at most 100"),
    ({"inputs": [[[1e39] * 8] * 8]}, "NaN or infinite values"),
    ({"inputs": [[[10**400] * 8] * 8]}, "numbers too large"),
    ({}, "Field required body.inputs"),
    ({"inputs": [0] * 64, "extra": 1}, "Extra inputs are not permitted body.extra"),
    ({"inputs": {"a": 1}}, "body.inputs"),
])
def test_bad_inputs_get_422_with_a_clear_message(client, body, message):
    r = client.post("/predict", json=body)
    assert r.status_code == 422
    assert message in detail(r)


@pytest.mark.parametrize("raw", [b'{"inputs": [[[NaN, 0, 0, 0, 0, 0, 0, 0]]]}', b'{"inputs": Infinity}',
                                 b'{"inputs": [1, 2', b"not json", b"", b"[" * 50_000 + b"]" * 50_000])
def test_malformed_json_is_a_4xx(client, raw):
    r = client.post("/predict", content=raw, headers={"content-type": "application/json"})
    assert 400 <= r.status_code < 500


def test_nan_in_a_valid_shape_is_named(client):
    row = "[" + ", ".join(["NaN"] + ["0"] * 7) + "]"
    raw = '{"inputs": [[' + ", ".join([row] * 8) + "]]}"
    r = client.post("/predict", content=raw, headers={"content-type": "application/json"})
    assert r.status_code == 422 and "NaN or infinite" in detail(r)


@pytest.mark.parametrize("run", ["cnn_run", "tabular_run", "regression_run"])
def test_huge_finite_inputs_get_422_naming_the_allowed_range(request, run):
    served = load_served_model(request.getfixturevalue(run))
    meta, shape = served.meta, served.meta.input_shape
    huge = np.full([2, *shape], 3.0e38)  # finite in float32, but the model's activations would overflow
    huge[1] = -3.0e38
    lo, hi = meta.x_mean[0] - 1e6 * meta.x_std[0], meta.x_mean[0] + 1e6 * meta.x_std[0]
    bound = np.asarray(meta.x_mean) + 0.99e6 * np.asarray(meta.x_std)
    edge = np.broadcast_to(bound.reshape(-1, 1, 1), shape) if len(shape) == 3 else bound
    with running_server(create_app(served)) as url:
        r = httpx.post(url + "/predict", json={"inputs": huge.tolist()}, trust_env=False)
        inside = httpx.post(url + "/predict", json={"inputs": np.asarray(edge).tolist()}, trust_env=False)
    assert r.status_code == 422, r.text
    what = "channel 0" if len(shape) == 3 else f"feature {meta.feature_names[0]!r}"
    assert detail(r) == (f"example(s) 0, 1 lie too far from the training data for the model to compute: {what} is "
                         f"3e+38; its allowed range is [{lo:.4g}, {hi:.4g}], the training mean ± 1,000,000 standard "
                         "deviations")
    assert inside.status_code == 200, inside.text  # far, but inside the range: answered with finite values


def stub(served, runner, normalised=True):
    """``served`` with another backend call (and, optionally, no normalisation to measure inputs by)."""
    meta = served.meta if normalised else dataclasses.replace(served.meta, x_mean=None, x_std=None)
    return ServedModel("stub", meta, "pytorch", {}, "0", runner)


def test_outputs_that_overflow_get_422_naming_the_overflow(cnn_served):
    # Without training statistics the range cannot be checked first; the outputs still are.
    def runner(x):
        huge = np.abs(x).reshape(len(x), -1).max(axis=1, keepdims=True) > 1e30
        return np.where(huge, np.inf, 0.0) * np.ones((1, 10))

    with running_server(create_app(stub(cnn_served, runner, normalised=False))) as url:
        two = [np.zeros((1, 8, 8)).tolist(), np.full((1, 8, 8), 3e38).tolist()]
        r = httpx.post(url + "/predict", json={"inputs": two}, trust_env=False)
        ok = httpx.post(url + "/predict", json={"inputs": np.zeros((1, 8, 8)).tolist()}, trust_env=False)
    assert r.status_code == 422
    assert detail(r).startswith("the model's outputs overflow float32 (infinite or NaN) for example(s) 1: inputs as "
                                "large as 3e+38 are too far from the training data")
    assert ok.status_code == 200 and ok.json()["classes"] == [0]


def test_a_model_that_fails_on_inputs_gets_422_and_spares_the_requests_batched_with_them(cnn_served):
    def runner(x):
        if np.abs(x).max() > 1e30:
            raise RuntimeError("The following operation failed in the TorchScript interpreter.\n"
                               "RuntimeError: min > max")
        return np.zeros((len(x), 10))

    app = create_app(stub(cnn_served, runner, normalised=False), ServeOptions(max_batch=64, max_wait_ms=1000))
    bodies = [{"inputs": np.full((1, 8, 8), 3.0e38).tolist()}, {"inputs": np.zeros((4, 1, 8, 8)).tolist()}]
    with running_server(app) as url, ThreadPoolExecutor(2) as pool:  # both may share one model call
        bad, ok = pool.map(lambda body: httpx.post(url + "/predict", json=body, trust_env=False, timeout=60), bodies)
    assert bad.status_code == 422, bad.text
    assert detail(bad).startswith("the model cannot compute outputs for these inputs (RuntimeError: min > max); ")
    assert ok.status_code == 200 and ok.json()["classes"] == [0, 0, 0, 0]


def test_an_int8_model_refuses_huge_inputs_before_they_reach_it(cnn_run, cnn_ref, tmp_path):
    # Dynamic int8 takes its scales from the whole batch: a 3e38 example raised, or wrecked its neighbours.
    path = export_run(cnn_run, ExportOptions("torchscript", int8="dynamic"), out=tmp_path).path
    app = create_app(load_served_model(path), ServeOptions(max_batch=64, max_wait_ms=1000))
    bodies = [{"inputs": np.full((1, 8, 8), 3.0e38).tolist()}, {"inputs": cnn_ref.raw[:4].tolist()}]
    with running_server(app) as url, ThreadPoolExecutor(2) as pool:
        huge, ok = pool.map(lambda body: httpx.post(url + "/predict", json=body, trust_env=False, timeout=60), bodies)
    assert huge.status_code == 422 and "lie too far from the training data" in detail(huge)
    assert ok.status_code == 200 and ok.json()["classes"] == cnn_ref.classes[:4].tolist()


def test_rows_of_a_shared_model_call_are_independent(cnn_served, cnn_ref):
    # Batched requests share one model call; rows do not mix, so a refused request leaves the others as they were.
    (probs,) = cnn_served.predict(np.concatenate([np.full((1, 1, 8, 8), 3.0e38, np.float32), cnn_ref.raw[:3]]))
    assert not np.isfinite(probs[0]).all()
    assert np.allclose(probs[1:], cnn_ref.probs[:3], atol=1e-5)


def test_body_size_limit(cnn_served):
    app = create_app(cnn_served, ServeOptions(max_body_bytes=4096))
    with running_server(app) as url, httpx.Client(base_url=url, trust_env=False) as c:
        small = c.post("/predict", json={"inputs": np.zeros((1, 8, 8)).tolist()})
        assert small.status_code == 200
        big = c.post("/predict", json={"inputs": np.zeros((20, 1, 8, 8)).tolist()})
        assert big.status_code == 413 and "4096 bytes" in big.json()["detail"]

        def chunks():  # no Content-Length: the limit must hold on the streamed bytes too
            yield b'{"inputs": ['
            for i in range(200):
                yield (b"0, " * 63 + b"0,")
            yield b"0]}"

        streamed = c.post("/predict", content=chunks(), headers={"content-type": "application/json"})
        assert streamed.status_code == 413


def test_bearer_token(cnn_served, cnn_ref):
    app = create_app(cnn_served, ServeOptions(token="s3cret-token"))
    payload = {"inputs": cnn_ref.raw[:2].tolist()}
    with running_server(app) as url, httpx.Client(base_url=url, trust_env=False) as c:
        assert c.get("/health").status_code == 200  # liveness probes need no token
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic s3cret-token"}):
            r = c.post("/predict", json=payload, headers=headers)
            assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
            assert c.get("/metadata", headers=headers).status_code == 401
        ok = c.post("/predict", json=payload, headers={"Authorization": "Bearer s3cret-token"})
        assert ok.status_code == 200 and ok.json()["classes"] == cnn_ref.classes[:2].tolist()
        spec = c.get("/openapi.json").json()
        assert "HTTPBearer" in spec["components"]["securitySchemes"]


def test_onnx_backend_from_exported_file(cnn_onnx, cnn_ref):
    served = load_served_model(cnn_onnx)
    assert served.backend == "onnxruntime" and served.source["format"] == "onnx"
    with running_server(create_app(served)) as url:
        body = httpx.post(url + "/predict", json={"inputs": cnn_ref.raw.tolist()}, trust_env=False).json()
        assert body["classes"] == cnn_ref.classes.tolist()
        assert probs_close(body["probabilities"], cnn_ref.probs, atol=1e-4)
        meta = httpx.get(url + "/metadata", trust_env=False).json()
        assert meta["model"]["backend"] == "onnxruntime" and meta["model"]["export"]["opset"] == 18


def test_torchscript_backend_from_exported_file(cnn_run, cnn_ref, tmp_path):
    from zerotune.export import ExportOptions, export_run

    path = export_run(cnn_run, ExportOptions("torchscript"), out=tmp_path).path
    served = load_served_model(path)
    assert served.backend == "pytorch" and served.source["format"] == "torchscript"
    (probs,) = served.predict(cnn_ref.raw)
    assert np.allclose(probs, cnn_ref.probs, atol=1e-5)
    with pytest.raises(UserError, match="runs on the torch backend only"):
        load_served_model(path, backend="onnx")


def test_regression_values_in_target_units(regression_run):
    run = load_run(regression_run)
    test = build_data(run.config.data).test
    raw = test.x.numpy() * np.asarray(run.meta.x_std) + np.asarray(run.meta.x_mean)
    with torch.no_grad():
        want = run.model(test.x).squeeze(-1).numpy() * run.meta.y_std + run.meta.y_mean
    with running_server(create_app(load_served_model(regression_run))) as url:
        body = httpx.post(url + "/predict", json={"inputs": raw[:20].tolist()}, trust_env=False).json()
        meta = httpx.get(url + "/metadata", trust_env=False).json()
    assert np.allclose(body["values"], want[:20], rtol=1e-4, atol=1e-3)
    assert "classes" not in body and meta["task"] == "regression" and meta["classes"] is None


def test_onnx_backend_on_a_run_exports_in_memory(cnn_run, cnn_ref):
    served = load_served_model(cnn_run, backend="onnx")
    assert served.backend == "onnxruntime" and served.export["in_memory"] is True
    (probs,) = served.predict(cnn_ref.raw[:20])
    assert np.allclose(probs, cnn_ref.probs[:20], atol=1e-4)


def edited_export(cnn_onnx, tmp_path, edit) -> Path:
    """A copy of the exported CNN whose sidecar text went through ``edit``."""
    path = tmp_path / "model.onnx"
    path.write_bytes(cnn_onnx.read_bytes())
    side = json.loads(cnn_onnx.with_name("model.onnx.json").read_text())
    path.with_name("model.onnx.json").write_text(edit(side))
    return path


def std(value):
    return lambda side: json.dumps({**side, "meta": {**side["meta"], "x_std": value}})


@pytest.mark.parametrize("edit, message", [
    (std([0.0]), "meta.x_std.0: Input should be greater than 0 (got 0.0)"),
    (std([-2.5]), "meta.x_std.0: Input should be greater than 0 (got -2.5)"),
    (std([float("nan")]), "meta.x_std.0: Input should be a finite number"),  # json.dumps writes NaN
    (std([1.0, 2.0]), "meta: x_std has 2 values; input shape [1, 8, 8] has 1 channels"),
    (std(None), "meta: x_mean and x_std come together: give both or neither"),
    (lambda side: json.dumps({**side, "meta": {**side["meta"], "y_std": 0}}), "meta.y_std: Input should be greater"),
    (lambda side: json.dumps({**side, "meta": {**side["meta"], "class_names": ["a"] * 10}}),
     "model.onnx.json was changed after export (its content SHA-256 differs); export the run again"),
], ids=["std-zero", "std-negative", "std-nan", "std-wrong-length", "std-missing", "y-std-zero", "edited"])
def test_sidecar_values_are_checked_at_load(cnn_onnx, tmp_path, capsys, edit, message):
    path = edited_export(cnn_onnx, tmp_path, edit)
    with pytest.raises(UserError, match=re.escape(message)):
        load_served_model(path)
    assert serve_main([str(path), "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err and "Traceback" not in err


def test_sidecar_without_a_content_hash_still_loads(cnn_onnx, cnn_ref, tmp_path):
    # Exports made before the sidecar recorded its own hash are still served; their values are still checked.
    path = edited_export(cnn_onnx, tmp_path, lambda side: json.dumps({k: v for k, v in side.items()
                                                                     if k != "content_sha256"}))
    (probs,) = load_served_model(path).predict(cnn_ref.raw[:5])
    assert np.allclose(probs, cnn_ref.probs[:5], atol=1e-4)


def test_load_errors(cnn_onnx, cnn_run, tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        load_served_model(tmp_path / "nothing.onnx")
    (tmp_path / "weights.bin").write_bytes(b"x")
    with pytest.raises(UserError, match="neither a run directory nor an exported model"):
        load_served_model(tmp_path / "weights.bin")
    lone = tmp_path / "lone.onnx"
    lone.write_bytes(cnn_onnx.read_bytes())
    with pytest.raises(UserError, match="has no sidecar lone.onnx.json"):
        load_served_model(lone)
    with pytest.raises(UserError, match="runs on the onnx backend only"):
        load_served_model(cnn_onnx, backend="torch")
    with pytest.raises(UserError, match="backend 'tf' is unknown"):
        load_served_model(cnn_run, backend="tf")
    corrupt = tmp_path / "model.onnx"
    corrupt.write_bytes(cnn_onnx.read_bytes()[:-100])
    corrupt.with_name("model.onnx.json").write_text(cnn_onnx.with_name("model.onnx.json").read_text())
    with pytest.raises(UserError, match="does not match its sidecar"):
        load_served_model(corrupt)
    with pytest.raises(UserError, match="is not a zerotune run"):
        load_served_model(tmp_path)


def test_a_bad_thread_count_is_refused_in_one_line_before_anything_loads(tmp_path, capsys):
    before = torch.get_num_threads()
    assert serve_main([str(tmp_path / "no-such-run"), "--port", "0", "--threads", "-2"]) == 2
    err = capsys.readouterr().err
    cpus = available_cpus()
    assert err == f"error: threads must be a positive integer up to {cpus}, the CPUs this process may use " \
                  "(0 or none: the default), got -2\n"
    assert torch.get_num_threads() == before
