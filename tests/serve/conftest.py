"""Tiny trained runs, their raw (un-normalised) test inputs, and real servers on 127.0.0.1."""

from pathlib import Path

import httpx
import pytest
import torch

from zerotune import load_run
from zerotune.data import build_data
from zerotune.export import export_run
from zerotune.serve import ServeOptions, create_app, load_served_model, running_server


@pytest.fixture(scope="session", autouse=True)
def no_proxy(monkeypatch_session):
    # A proxy set in the environment must not intercept requests to the local servers.
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch_session.delenv(var, raising=False)


@pytest.fixture(scope="session")
def monkeypatch_session():
    with pytest.MonkeyPatch.context() as mp:
        yield mp


@pytest.fixture(scope="session")
def cnn_onnx(cnn_run, tmp_path_factory) -> Path:
    return export_run(cnn_run, out=tmp_path_factory.mktemp("serve-export")).path


class Reference:
    """A run's test split as raw inputs, with PyTorch's probabilities for them."""

    def __init__(self, run_dir: Path):
        run = load_run(run_dir)
        test = build_data(run.config.data).test
        meta = run.meta
        shape = (1, -1, 1, 1) if test.x.ndim == 4 else (1, -1)
        self.raw = (test.x * torch.tensor(meta.x_std).reshape(shape) + torch.tensor(meta.x_mean).reshape(shape)).numpy()
        with torch.no_grad():
            self.probs = torch.softmax(run.model(test.x), 1).numpy()
        self.classes = self.probs.argmax(1)
        self.names = meta.class_names


@pytest.fixture(scope="session")
def cnn_ref(cnn_run) -> Reference:
    return Reference(cnn_run)


@pytest.fixture(scope="session")
def tabular_ref(tabular_run) -> Reference:
    return Reference(tabular_run)


@pytest.fixture(scope="session")
def cnn_served(cnn_run):
    return load_served_model(cnn_run)


@pytest.fixture(scope="session")
def text_served(text_run):
    """The text run on PyTorch: strings in, tokenised with the run's own tokenizer."""
    return load_served_model(text_run)


@pytest.fixture(scope="session")
def cnn_url(cnn_served):
    """A server for the CNN run (PyTorch backend, micro-batching on, default limits)."""
    app = create_app(cnn_served, ServeOptions(max_examples=100))
    with running_server(app) as url:
        yield url


@pytest.fixture(scope="session")
def client(cnn_url):
    with httpx.Client(base_url=cnn_url, timeout=30, trust_env=False) as c:
        yield c


@pytest.fixture(scope="session")
def chat_run(tmp_path_factory):
    """A tiny character-level GPT trained from zero on dialogues in the plain chat format (context 64)."""
    import random

    import zerotune
    from zerotune.config import load_config

    root = tmp_path_factory.mktemp("chat-run")
    rng = random.Random(0)
    lines = []
    for _ in range(800):
        subject = rng.choice(["the cat", "a dog", "my friend"])
        lines.append(f"User: {subject}\nAssistant: {subject} {rng.choice(['sees', 'likes'])} the moon.\n")
    (root / "chat.txt").write_text("".join(lines))
    cfg = load_config(None, [
        "data.name=corpus", f"data.path={root / 'chat.txt'}", f"data.cache_dir={root / 'cache'}", "data.block_size=64",
        "data.windows_per_epoch=320", "data.eval_windows=32", "model.name=gpt", "model.n_layer=2", "model.n_head=2",
        "model.n_embd=32", "optim.name=adamw", "optim.lr=1e-2", "train.batch_size=32", "train.epochs=3",
        "log.progress=false", "log.tensorboard=false", f"log.dir={root}", "log.name=chat"])
    return zerotune.train(cfg).run_dir
