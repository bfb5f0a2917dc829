"""Serving a text run: strings in, tokenised by the server with the run's own tokenizer, on PyTorch
(the run directory) and onnxruntime (the exported directory alone), micro-batched, and every 4xx."""

import asyncio
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import numpy as np
import pytest

from zerotune.errors import UserError
from zerotune.serve import ServeOptions, create_app, load_served_model, running_server


def probs_close(got, want, atol=1e-5) -> bool:
    return bool(np.allclose(np.asarray(got), want, atol=atol))


def detail(r) -> str:
    d = r.json()["detail"]
    return d if isinstance(d, str) else " ".join(e["msg"] + " " + ".".join(map(str, e["loc"])) for e in d)


@pytest.fixture(scope="module")
def text_url(text_served):
    with running_server(create_app(text_served, ServeOptions(max_examples=100))) as url:
        yield url


@pytest.fixture(scope="module")
def text_client(text_url):
    with httpx.Client(base_url=text_url, timeout=30, trust_env=False) as c:
        yield c


@pytest.fixture(scope="module")
def standalone_onnx(text_exports, tmp_path_factory):
    """The exported model, sidecar and tokenizer copied to a directory of their own."""
    src = text_exports["onnx"].path
    out = tmp_path_factory.mktemp("standalone")
    for name in (src.name, src.name + ".json"):
        shutil.copy(src.parent / name, out / name)
    shutil.copytree(src.parent / (src.name + ".tokenizer"), out / (src.name + ".tokenizer"))
    return out / src.name


def test_strings_on_pytorch_equal_the_runs_predictions(text_client, text_ref):
    r = text_client.post("/predict", json={"inputs": text_ref.texts})
    assert r.status_code == 200
    body = r.json()
    assert body["classes"] == text_ref.classes.tolist()
    assert body["labels"] == [text_ref.names[c] for c in text_ref.classes]
    assert probs_close(body["probabilities"], text_ref.probs)
    one = text_client.post("/predict", json={"inputs": text_ref.texts[7]}).json()  # one string: a list of one
    assert one["classes"] == [int(text_ref.classes[7])] and probs_close(one["probabilities"], text_ref.probs[7:8])


def test_long_texts_are_truncated_as_in_training(text_client, text_ref):
    long = "good " * 500  # 500 tokens: cut at max_length (capped at the model's 64 positions)
    body = text_client.post("/predict", json={"inputs": [long, "bad"]}).json()
    want = text_ref.logits_of(["good " * 62, "bad"])  # 62 words + [CLS] + [SEP] = 64 tokens
    probs = np.exp(want) / np.exp(want).sum(1, keepdims=True)
    assert probs_close(body["probabilities"], probs)
    assert body["truncated"] == [0]  # the answer says which input was cut
    short = text_client.post("/predict", json={"inputs": ["bad", "good " * 62]}).json()  # 64 tokens: not cut
    assert short["truncated"] == []


def test_metadata_and_docs_describe_text(text_client):
    m = text_client.get("/metadata").json()
    assert m["input"]["type"] == "text" and m["input"]["dtype"] == "string"
    assert m["input"]["tokenizer"]["max_length"] == 64 and m["input"]["tokenizer"]["truncation"] is True
    assert [t["name"] for t in m["input"]["model_inputs"]["tensors"]] == ["input_ids", "attention_mask"]
    assert m["classes"] == ["0", "1"] and m["task"] == "classification"
    spec = text_client.get("/openapi.json").json()
    inputs = spec["components"]["schemas"]["PredictRequest"]["properties"]["inputs"]
    assert {"type": "string"} in inputs["anyOf"]
    for example in inputs["examples"]:  # the documented examples are answered
        assert text_client.post("/predict", json={"inputs": example}).status_code == 200


def test_onnxruntime_from_the_exported_directory_alone(standalone_onnx, text_ref):
    served = load_served_model(standalone_onnx)
    assert served.backend == "onnxruntime" and served.text and served.max_length == 64
    with running_server(create_app(served)) as url:
        body = httpx.post(url + "/predict", json={"inputs": text_ref.texts}, trust_env=False).json()
        meta = httpx.get(url + "/metadata", trust_env=False).json()
    assert body["classes"] == text_ref.classes.tolist()
    assert probs_close(body["probabilities"], text_ref.probs, atol=1e-4)
    assert meta["model"]["backend"] == "onnxruntime" and meta["input"]["type"] == "text"


def test_torchscript_file_and_in_memory_onnx(text_exports, text_run, text_ref):
    for served in (load_served_model(text_exports["torchscript"].path), load_served_model(text_run, backend="onnx")):
        (probs,) = served.predict(served.encode(text_ref.texts))
        assert np.allclose(probs, text_ref.probs, atol=1e-4)


def test_tokenizer_must_match_the_sidecar(standalone_onnx, tmp_path):
    moved = tmp_path / standalone_onnx.name
    for suffix in ("", ".json"):
        shutil.copy(str(standalone_onnx) + suffix, str(moved) + suffix)
    with pytest.raises(UserError, match="needs its tokenizer model.onnx.tokenizer/"):
        load_served_model(moved)
    tok = Path(shutil.copytree(str(standalone_onnx) + ".tokenizer", str(moved) + ".tokenizer"))
    (tok / "tokenizer.json").write_text("{}")
    with pytest.raises(UserError, match="does not match the sidecar \\(tokenizer.json changed"):
        load_served_model(moved)


def test_concurrent_requests_of_different_lengths_share_model_calls(text_served, text_ref):
    """Requests whose texts differ in length are padded to the longest of their batch."""
    app = create_app(text_served, ServeOptions(max_batch=64, max_wait_ms=50))
    texts = [" ".join(["good", "very"] * (i % 7)) + " bad" * (i % 3) or "nice" for i in range(24)]
    want = text_ref.logits_of(texts)
    want = np.exp(want) / np.exp(want).sum(1, keepdims=True)

    async def send(url):
        async with httpx.AsyncClient(base_url=url, trust_env=False, timeout=30) as c:
            return await asyncio.gather(*[c.post("/predict", json={"inputs": t}) for t in texts])

    with running_server(app) as url:
        responses = asyncio.run(send(url))
    assert all(r.status_code == 200 for r in responses)
    got = np.array([r.json()["probabilities"][0] for r in responses])
    assert np.allclose(got, want, atol=1e-5)
    assert app.state.batcher.batches < len(texts)  # some requests shared a model call


@pytest.mark.parametrize("body, message", [
    ({"inputs": 5}, "inputs is a number; this model takes text: one string or a list of 1 to 100 strings"),
    ({"inputs": [1.5, 2]}, "inputs[0] is a number, not a string; this model takes text"),
    ({"inputs": [[0.1, 0.2]]}, "inputs[0] is an array, not a string"),
    ({"inputs": ["good", None]}, "inputs[1] is null, not a string"),
    ({"inputs": ["good", True]}, "inputs[1] is true/false, not a string"),
    ({"inputs": []}, "inputs is an empty list; this model takes text"),
    ({"inputs": ["good"] * 101}, "inputs holds 101 texts; at most 100 are allowed per request"),
    ({"inputs": None}, "inputs is null"),
    ({"inputs": {"text": "good"}}, "inputs is an object"),
    ({}, "Field required body.inputs"),
    ({"inputs": "good", "extra": 1}, "Extra inputs are not permitted body.extra"),
])
def test_bad_inputs_get_422_with_a_clear_message(text_client, body, message):
    r = text_client.post("/predict", json=body)
    assert r.status_code == 422
    assert message in detail(r)


def test_lone_surrogates_and_oversized_bodies(text_served):
    app = create_app(text_served, ServeOptions(max_body_bytes=4096))
    with running_server(app) as url, httpx.Client(base_url=url, trust_env=False) as c:
        r = c.post("/predict", content=b'{"inputs": ["good", "a\\ud800b"]}',
                   headers={"content-type": "application/json"})
        assert r.status_code == 422 and "inputs[1] is not valid Unicode" in detail(r)
        big = c.post("/predict", json={"inputs": "good " * 2000})
        assert big.status_code == 413 and "4096 bytes" in big.json()["detail"]


def test_image_server_refuses_strings(client):
    r = client.post("/predict", json={"inputs": ["a great phone"]})
    assert r.status_code == 422 and "inputs contains text; this model takes arrays of numbers" in detail(r)


def test_client_example_sends_text(text_url):
    client = Path(__file__).resolve().parents[2] / "examples" / "client.py"
    out = subprocess.run([sys.executable, str(client), text_url, "--text", "great food", "--text", "awful phone"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "model hf" in out.stdout and "text, task classification" in out.stdout
    assert "example 0: predicted '1'" in out.stdout and "example 1: predicted '0'" in out.stdout
