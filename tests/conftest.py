import contextlib
import io
import logging
import os
import random
import warnings
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"

# Tests never reach a model or data hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

# Under pytest-xdist each CPU runs a test process of its own: one torch thread each (children inherit
# it), so that no process's OpenMP threads wait on a thread another process has taken the core from.
if int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")) > 1:
    os.environ.setdefault("OMP_NUM_THREADS", "1")


def pytest_xdist_auto_num_workers(config):
    """``-n auto``: one process per CPU, and one more: many tests wait on child processes (ranks, servers,
    pip), and the extra process keeps the CPUs busy meanwhile (11.7 against 13.1 minutes on 2 cores)."""
    return len(os.sched_getaffinity(0)) + 1 if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1) + 1


# Tests that start several training processes (ranks): two of them at once on 2 cores put four ranks
# on them, whose collectives then wait on each other's time slices (3-5 times slower).
RANKS = ("tests/distributed/", "tests/sft/test_sft_ranks.py", "[distributed.md]")


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist's own hook reads the groups into the test ids
def pytest_collection_modifyitems(config, items):
    """Under pytest-xdist, the tests that share a module-scoped fixture run on one worker: it is built once;
    and the tests that start ranks run one at a time, on one worker."""
    for item in items:
        fixtures = getattr(getattr(item, "_fixtureinfo", None), "name2fixturedefs", {})
        if any(part in item.nodeid for part in RANKS):
            item.add_marker(pytest.mark.xdist_group("ranks"))
        elif any(defs and defs[-1].scope == "module" for defs in fixtures.values()):
            item.add_marker(pytest.mark.xdist_group(item.nodeid.split("::")[0]))


@pytest.fixture
def runs_dir(tmp_path) -> Path:
    return tmp_path / "runs"


@pytest.fixture(scope="session")
def read_events():
    """``read_events(run_dir)``: TensorBoard's EventAccumulator over a run, every point of every plugin kept."""
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    def read(run_dir):
        acc = EventAccumulator(str(run_dir), size_guidance={"scalars": 0, "images": 0, "histograms": 0, "tensors": 0})
        acc.Reload()
        return acc

    return read


@pytest.fixture
def moved(monkeypatch):
    """The training events after which the global random generators had moved: a run records them
    while it trains. A callback or view that draws from them would shift a resumed run's dropout
    masks and augmentations away from an uninterrupted run's."""
    import pickle

    import numpy as np
    import torch

    from zerotune.train.loop import Trainer

    def state() -> bytes:
        return pickle.dumps((torch.get_rng_state().numpy().tobytes(), np.random.get_state(), random.getstate()))

    events, emit = [], Trainer._emit

    def checked(self, event):
        before = state()
        emit(self, event)
        if state() != before:
            events.append(event)

    monkeypatch.setattr(Trainer, "_emit", checked)
    return events


@pytest.fixture(scope="session")
def saved_before_checksums():
    """``saved_before_checksums(checkpoint_dir)``: make a checkpoint what an older zerotune wrote, with no
    checksums.json and no word of it in state.json."""
    import json

    def rewrite(checkpoint: Path) -> None:
        (checkpoint / "checksums.json").unlink()
        state = json.loads((checkpoint / "state.json").read_text())
        assert state.pop("checksums") == "crc32c"
        (checkpoint / "state.json").write_text(json.dumps(state))

    return rewrite


@dataclass
class CliResult:
    """What ``zerotune ARGS`` did in this process, under the names ``subprocess.run`` gives them."""

    returncode: int
    stdout: str
    stderr: str
    # Python warnings and log records of level WARNING and above: a process of its own prints them on
    # stderr, but in this process pytest records them instead, so a one-line check must look here too.
    warnings: list[str]


@contextlib.contextmanager
def _process_state_kept(cwd):
    """Run a block in ``cwd`` with COLUMNS=200, then put back what a command may change for the whole
    process: working directory, environment, torch threads and determinism, random generators, signals."""
    import signal

    import numpy as np
    import torch

    before = (os.getcwd(), dict(os.environ), torch.get_num_threads(), torch.are_deterministic_algorithms_enabled(),
              torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark, torch.get_rng_state(),
              np.random.get_state(), random.getstate())
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    os.environ["COLUMNS"] = "200"  # as wide as the subprocess calls of these tests make it
    try:
        if cwd is not None:
            os.chdir(cwd)
        yield
    finally:
        where, env, threads, deterministic, cudnn_det, cudnn_bench, torch_rng, np_rng, py_rng = before
        os.chdir(where)
        os.environ.clear()
        os.environ.update(env)
        torch.set_num_threads(threads)
        if torch.are_deterministic_algorithms_enabled() != deterministic:
            torch.use_deterministic_algorithms(deterministic)
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = cudnn_det, cudnn_bench
        torch.set_rng_state(torch_rng)
        np.random.set_state(np_rng)
        random.setstate(py_rng)
        for s, handler in handlers.items():
            signal.signal(s, handler)


class _Records(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record):
        self.messages.append(f"{record.name}: {record.getMessage()}")


def run_cli(*args, cwd=None) -> CliResult:
    """``zerotune ARGS`` in this process (no 2-3 s of a new interpreter importing torch); argparse's
    exit is an exit code here as it is for a process."""
    from zerotune.cli.main import main

    out, err, logged = io.StringIO(), io.StringIO(), _Records()
    logging.getLogger().addHandler(logged)
    try:
        with (_process_state_kept(cwd), warnings.catch_warnings(record=True) as caught,
              contextlib.redirect_stdout(out), contextlib.redirect_stderr(err)):
            warnings.simplefilter("always")
            # Python's default filters hide these from a process's stderr, and here one may be an earlier
            # test's garbage, collected during this command.
            warnings.simplefilter("ignore", ResourceWarning)
            try:
                code = main([str(a) for a in args])
            except SystemExit as e:
                code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    finally:
        logging.getLogger().removeHandler(logged)
    noise = [f"{w.category.__name__}: {w.message}" for w in caught] + logged.messages
    return CliResult(code, out.getvalue(), err.getvalue(), noise)


@pytest.fixture(scope="session")
def cli():
    """``cli(*args, cwd=None)``: ``zerotune ARGS`` run in this process; a CliResult."""
    return run_cli



def quiet(*overrides: str) -> list[str]:
    """Overrides that keep a test run silent."""
    return ["log.progress=false", *overrides]


# -- tiny trained runs shared by tests/export and tests/serve (trained once per session) ------

RECIPES = ROOT / "recipes"
_SMALL_CNN = ["model.channels=[8, 16]", "model.dense=32", "train.epochs=3", "data.augment.rotate_degrees=0",
              "data.augment.shift=0"]


def _train_once(root: Path, recipe: str | None, name: str, overrides: list[str]) -> Path:
    if (root / name / "metrics.json").exists():
        return root / name
    import zerotune
    from zerotune.config import load_config

    cfg = load_config(RECIPES / recipe if recipe else None,
                      [*overrides, "log.progress=false", "log.tensorboard=false", f"log.dir={root}", f"log.name={name}"])
    return zerotune.train(cfg).run_dir


@pytest.fixture(scope="session")
def runs_root(tmp_path_factory) -> Path:
    return tmp_path_factory.getbasetemp() / "zerotune-runs"


@pytest.fixture(scope="session")
def cnn_run(runs_root) -> Path:
    """A small digits CNN with batch norm: conv 8-16, dense 32, 3 epochs, no augmentation."""
    return _train_once(runs_root, "digits_cnn.toml", "cnn", _SMALL_CNN)


@pytest.fixture(scope="session")
def mlp_run(runs_root) -> Path:
    """The digits MLP recipe (Linear-heavy: 64-256-128-10), 4 epochs."""
    return _train_once(runs_root, "digits_mlp.toml", "mlp", ["train.epochs=4"])


@pytest.fixture(scope="session")
def tabular_run(runs_root) -> Path:
    """Softmax regression on breast_cancer: one Linear layer on 30 standardised features."""
    return _train_once(runs_root, "breast_cancer_softmax.toml", "tabular", ["train.epochs=10"])


@pytest.fixture(scope="session")
def regression_run(runs_root) -> Path:
    """Least-squares linear regression on diabetes, 5 epochs."""
    return _train_once(runs_root, "diabetes_linear.yaml", "regression", ["train.epochs=5"])


# -- a tiny random BERT, synthetic sentiment files, and a text run trained on them ------------

POSITIVE = ["good", "great", "love", "excellent", "nice"]
NEGATIVE = ["bad", "awful", "hate", "terrible", "poor"]
FILLER = ["the", "food", "service", "was", "phone", "it", "is", "very"]


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory):
    """A randomly initialised 2-layer BERT with its own word-level vocabulary, saved with save_pretrained."""
    pytest.importorskip("transformers")
    pytest.importorskip("peft")
    import torch
    from transformers import BertConfig, BertModel, BertTokenizer

    out = tmp_path_factory.mktemp("tiny-bert")
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *POSITIVE, *NEGATIVE, *FILLER, "not"]
    (out / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    BertTokenizer(str(out / "vocab.txt")).save_pretrained(str(out))
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=64)
    BertModel(cfg).save_pretrained(str(out))
    return out


def write_sentiment(path, n: int, seed: int, fillers=FILLER) -> None:
    """`n` lines of ``sentence<TAB>label``: filler words around one word that carries the label."""
    rng = random.Random(seed)
    lines = []
    for _ in range(n):
        y = rng.randint(0, 1)
        words = [rng.choice(fillers) for _ in range(rng.randint(1, 4))]
        words.insert(rng.randint(0, len(words)), rng.choice(POSITIVE if y else NEGATIVE))
        lines.append(f"{' '.join(words)}\t{y}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


@pytest.fixture(scope="session")
def sentiment(tmp_path_factory):
    """(train file, test file) of the same synthetic reviews, drawn with different seeds."""
    d = tmp_path_factory.mktemp("sentiment")
    write_sentiment(d / "train.tsv", 200, 0)
    write_sentiment(d / "test.tsv", 100, 1)
    return d / "train.tsv", d / "test.tsv"


@pytest.fixture(scope="session")
def text_run(runs_root, tiny_bert, sentiment) -> Path:
    """The tiny BERT fine-tuned on the sentiment files for 2 epochs (data.name = "text", a few seconds)."""
    train, test = sentiment
    return _train_once(runs_root, None, "text", [
        "data.name=text", f"data.path={train}", f"data.test_path={test}", "model.name=hf", f"model.path={tiny_bert}",
        "train.epochs=2", "train.batch_size=16", "train.threads=1", "optim.lr=5e-3", "log.graph=false",
        "log.embeddings=false"])


@pytest.fixture(scope="session")
def text_exports(text_run, tmp_path_factory) -> dict:
    """The text run exported once to ONNX and once to TorchScript, into one directory of their own."""
    from zerotune.export import ExportOptions, export_run

    out = tmp_path_factory.mktemp("text-export")
    return {"onnx": export_run(text_run, ExportOptions("onnx"), out=out),
            "torchscript": export_run(text_run, ExportOptions("torchscript"), out=out)}


class TextReference:
    """A text run's test texts, their native token ids (as in training) and PyTorch's probabilities."""

    def __init__(self, run_dir: Path):
        import torch

        from zerotune import load_run
        from zerotune.data.text import read_text_file
        from zerotune.runload.load import run_data

        run = load_run(run_dir)
        self.run = run
        self.texts, _ = read_text_file(run.config.data.test_path)
        self.ids = run_data(run).test.x
        with torch.no_grad():
            self.logits = run.model(self.ids).numpy()
        self.probs = torch.softmax(torch.from_numpy(self.logits), 1).numpy()
        self.classes = self.probs.argmax(1)
        self.names = run.meta.class_names

    def logits_of(self, texts: list[str]):
        """PyTorch's logits for any texts, tokenised as in training."""
        import torch

        from zerotune.data.text import load_tokenizer, pad_ids, tokenize

        tok = load_tokenizer(self.run.path / "hf")
        ids = tokenize(tok, texts, self.run.config.data.max_length)
        with torch.no_grad():
            return self.run.model(pad_ids(ids, max(map(len, ids)))).numpy()


@pytest.fixture(scope="session")
def text_ref(text_run) -> TextReference:
    return TextReference(text_run)


# -- a synthetic corpus and a tiny character-level GPT trained on it (tests/lm, tests/export) ----

SUBJECTS = ["the cat", "a dog", "my friend", "the king", "our queen"]
VERBS = ["sees", "likes", "finds", "follows", "greets"]
OBJECTS = ["the moon.", "a bird.", "the river.", "an apple.", "the sea."]


def write_corpus(path, lines: int, seed: int = 0) -> str:
    """`lines` short sentences from a tiny grammar: predictable enough for a small model to learn."""
    rng = random.Random(seed)
    text = "\n".join(f"{rng.choice(SUBJECTS)} {rng.choice(VERBS)} {rng.choice(OBJECTS)}" for _ in range(lines)) + "\n"
    path.write_text(text, encoding="utf-8")
    return text


TINY_GPT = ["data.name=corpus", "data.block_size=32", "data.val_fraction=0.1", "data.test_fraction=0.1",
            "data.windows_per_epoch=640", "data.eval_windows=64", "model.name=gpt", "model.n_layer=2",
            "model.n_head=2", "model.n_embd=32", "optim.name=adamw", "optim.lr=1e-2", "optim.weight_decay=0.1",
            "optim.clip_norm=1.0", "schedule.name=cosine", "schedule.warmup_steps=10", "train.batch_size=32",
            "train.epochs=6", "log.sample_tokens=40", "log.views_min_seconds=0", "log.embedding_samples=64"]


@pytest.fixture(scope="session")
def corpus_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("corpus") / "sentences.txt"
    write_corpus(path, 1500)
    return path


@pytest.fixture(scope="session")
def lm_run(runs_root, corpus_file, tmp_path_factory) -> Path:
    """A 2-layer character-level GPT trained for 120 steps on the synthetic corpus, TensorBoard on."""
    name = "lm"
    if (runs_root / name / "metrics.json").exists():
        return runs_root / name
    import zerotune
    from zerotune.config import load_config

    cache = tmp_path_factory.mktemp("token-cache")
    cfg = load_config(None, [*TINY_GPT, f"data.path={corpus_file}", f"data.cache_dir={cache}", "log.progress=false",
                             f"log.dir={runs_root}", f"log.name={name}"])
    return zerotune.train(cfg).run_dir


@pytest.fixture
def lm_config():
    """``lm_config(root, corpus, cache, name, *overrides)``: a quiet Config of the tiny GPT on a corpus."""
    from zerotune.config import load_config

    def make(root, corpus, cache, name, *extra):
        return load_config(None, [*TINY_GPT, f"data.path={corpus}", f"data.cache_dir={cache}", "log.progress=false",
                                  "log.tensorboard=false", f"log.dir={root}", f"log.name={name}", "train.epochs=2",
                                  "train.checkpoint_every_steps=5", *extra])

    return make
