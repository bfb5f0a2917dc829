"""Shared fixtures: a small digits run on classes 0-4, a tiny random BERT saved like a pretrained
model, and synthetic two-domain sentiment files it can learn in a few steps."""

import random
import shutil

import pytest

import zerotune
from zerotune.config import load_config

PARENT = ["data.name=digits", "data.classes=[0,1,2,3,4]", "model.name=cnn", "model.channels=[8,16]", "model.dense=32",
          "model.batch_norm=true", "train.epochs=4", "train.batch_size=32", "train.threads=1",
          "train.deterministic=true", "log.progress=false", "log.graph=false"]
TARGET = ["data.name=digits", "data.classes=[5,6,7,8,9]", "data.train_per_class=20", "train.epochs=6",
          "train.batch_size=20", "train.threads=1", "train.deterministic=true", "optim.lr=1e-2",
          "log.progress=false", "log.graph=false", "log.embeddings=false", "log.images=false"]
POSITIVE = ["good", "great", "love", "excellent", "nice"]
NEGATIVE = ["bad", "awful", "hate", "terrible", "poor"]
FILLER = ["the", "food", "service", "was", "phone", "it", "is", "very"]


@pytest.fixture(scope="session")
def parent_run(tmp_path_factory):
    """A CNN trained on digits 0-4 (a few seconds)."""
    root = tmp_path_factory.mktemp("parent")
    return zerotune.train(load_config(None, PARENT + [f"log.dir={root}", "log.name=digits04"])).run_dir


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


@pytest.fixture
def target():
    """Settings of the few-shot target task: digits 5-9, 20 training images per class."""
    return list(TARGET)


@pytest.fixture
def copy_of(tmp_path):
    def copy(src, name):
        return shutil.copytree(src, tmp_path / name)

    return copy
