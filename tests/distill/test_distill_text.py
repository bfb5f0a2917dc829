"""A fine-tuned transformer teaches a smaller one: the student keeps the teacher's first layers and tokenizer."""

import pytest

from zerotune.config import load_config
from zerotune.errors import UserError
from zerotune.pipeline.distill import distill


def _student(sentiment, model_path, runs_dir, *extra):
    train, test = sentiment
    return load_config(None, [
        "data.name=text", f"data.path={train}", f"data.test_path={test}", "model.name=hf", f"model.path={model_path}",
        "model.layers=1", "train.epochs=3", "train.batch_size=16", "train.threads=1", "optim.lr=5e-3",
        "log.progress=false", "log.graph=false", "log.embeddings=false", f"log.dir={runs_dir}", *extra])


def test_one_layer_student_learns_from_the_fine_tuned_two_layer_teacher(text_run, tiny_bert, sentiment, runs_dir):
    result = distill(_student(sentiment, tiny_bert, runs_dir), teacher=text_run)
    d, test = result.metrics["distill"], result.metrics["test"]
    assert d["teacher_logits"] == "cached" and d["student_parameters"] < d["teacher_parameters"]
    assert d["teacher_test_accuracy"] >= 0.9  # the synthetic reviews are easy: the teacher has them right
    assert test["teacher_agreement"] >= 0.9 and test["accuracy"] >= 0.9


def test_student_with_another_vocabulary_is_refused(text_run, tmp_path, sentiment, runs_dir, tiny_bert):
    import shutil

    other = tmp_path / "other-bert"
    shutil.copytree(tiny_bert, other)
    vocab = (other / "vocab.txt").read_text().splitlines()
    (other / "vocab.txt").write_text("\n".join(vocab[:5] + vocab[5:][::-1]) + "\n")
    for f in other.glob("tokenizer*.json"):
        f.unlink()
    with pytest.raises(UserError, match="another vocabulary"):
        distill(_student(sentiment, other, runs_dir), teacher=text_run)
    assert not runs_dir.exists()
