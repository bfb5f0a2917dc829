"""Text files, tokenisation with the model's tokenizer, dynamic padding, and bad pretrained directories."""

import json
import shutil

import pytest
import torch
import yaml

from zerotune.config import DataConfig
from zerotune.data.text import PAD, build_text_data, load_tokenizer, read_text_file
from zerotune.errors import UserError
from zerotune.finetune.sources import resolve_source
from zerotune.models import create_model


def test_tsv_csv_and_jsonl_with_and_without_header(tmp_path):
    (tmp_path / "a.tsv").write_text("good food\t1\nbad phone\t0\n", encoding="utf-8")
    (tmp_path / "b.csv").write_text('label,review\n1,"good, very good"\n0,bad\n', encoding="utf-8")
    rows = [{"sentence": "good", "y": "pos"}, {"sentence": "bad", "y": "neg"}]
    (tmp_path / "c.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    assert read_text_file(tmp_path / "a.tsv") == (["good food", "bad phone"], ["1", "0"])
    assert read_text_file(tmp_path / "b.csv", "review", "label") == (["good, very good", "bad"], ["1", "0"])
    assert read_text_file(tmp_path / "c.jsonl", "sentence", "y") == (["good", "bad"], ["pos", "neg"])
    with pytest.raises(UserError, match=r"c.jsonl:1 needs the keys 'text' and 'label'"):
        read_text_file(tmp_path / "c.jsonl")


def test_splits_are_token_ids_padded_with_minus_one_and_truncated(tiny_bert, sentiment):
    train, test = sentiment
    cfg = DataConfig(name="text", path=str(train), test_path=str(test), max_length=5, val_fraction=0.2)
    data = build_text_data(cfg, load_tokenizer(tiny_bert))
    assert data.meta.class_names == ["0", "1"] and data.meta.input_shape == [5]
    assert data.meta.sizes == {"train": 160, "val": 40, "test": 100}
    x = data.train.x
    assert x.dtype == torch.long and int(x.max()) < 30
    lengths = (x != PAD).sum(1)
    assert int(lengths.max()) == 5 and int(lengths.min()) == 4  # truncated to max_length, [CLS] ... [SEP] included
    assert all(bool((row[:n] != PAD).all() and (row[n:] == PAD).all()) for row, n in zip(x, lengths))


def test_model_cuts_batches_to_their_longest_sequence(tiny_bert):
    """Dynamic padding: extra padding columns change nothing."""
    torch.manual_seed(0)
    model = create_model("hf", input_shape=(6,), num_outputs=2, path=str(tiny_bert)).eval()
    x = torch.tensor([[2, 5, 6, 3, PAD, PAD], [2, 7, 3, PAD, PAD, PAD]])
    wide = torch.cat([x, torch.full((2, 10), PAD)], dim=1)
    torch.testing.assert_close(model(wide), model(x))
    torch.testing.assert_close(model(x[1:, :3]), model(x)[1:])


def test_test_labels_unknown_to_training_are_refused(tmp_path, tiny_bert):
    (tmp_path / "train.tsv").write_text("".join(f"good {i}\t1\nbad {i}\t0\n" for i in range(10)), encoding="utf-8")
    (tmp_path / "test.tsv").write_text("good\t1\nmeh\t2\nso so\tneutral\n", encoding="utf-8")
    cfg = DataConfig(name="text", path=str(tmp_path / "train.tsv"), test_path=str(tmp_path / "test.tsv"))
    with pytest.raises(UserError, match=r"labels '2', 'neutral' are not in the training data \(its labels: '0', '1'\)"):
        build_text_data(cfg, load_tokenizer(tiny_bert))


def test_pretrained_directory_without_weights_or_tokenizer_is_refused(tmp_path, tiny_bert):
    no_weights = shutil.copytree(tiny_bert, tmp_path / "no-weights")
    (no_weights / "model.safetensors").unlink()
    with pytest.raises(UserError, match="has no weights"):
        resolve_source(str(no_weights))
    no_tok = shutil.copytree(tiny_bert, tmp_path / "no-tokenizer")
    for f in ("vocab.txt", "tokenizer.json"):
        (no_tok / f).unlink(missing_ok=True)
    with pytest.raises(UserError, match="has no tokenizer"):
        resolve_source(str(no_tok))
    with pytest.raises(UserError, match="does not exist"):
        resolve_source(str(tmp_path / "nowhere"))
    assert resolve_source(str(tiny_bert)).kind == "pretrained"


def _too_long(tokenizer, path, max_length):
    texts, _ = read_text_file(path)
    return sum(len(ids) > max_length for ids in tokenizer(texts)["input_ids"])


def test_truncated_texts_are_counted_per_split_and_reported(tiny_bert, sentiment, capsys):
    train, test = sentiment
    tokenizer = load_tokenizer(tiny_bert)
    cfg = DataConfig(name="text", path=str(train), test_path=str(test), max_length=5, val_fraction=0.2)
    meta = build_text_data(cfg, tokenizer).meta
    n_train, n_test = _too_long(tokenizer, train, 5), _too_long(tokenizer, test, 5)
    assert 0 < n_test < 100 and meta.truncated["test"] == n_test
    assert meta.truncated["train"] + meta.truncated["val"] == n_train and meta.truncated["val"] > 0
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"warning: texts longer than data.max_length=5 tokens were truncated: {meta.truncated['train']} of "
                   f"160 train, {meta.truncated['val']} of 40 val, {n_test} of 100 test examples"]
    assert build_text_data(cfg.model_copy(update={"max_length": 64}), tokenizer).meta.truncated == \
        {"train": 0, "val": 0, "test": 0}
    assert capsys.readouterr().err == ""  # nothing cut, nothing said


def test_several_training_files_equal_their_concatenation(tmp_path, tiny_bert, sentiment):
    train, test = sentiment
    lines = train.read_text(encoding="utf-8").splitlines(keepends=True)
    (tmp_path / "a.tsv").write_text("".join(lines[:120]), encoding="utf-8")
    (tmp_path / "b.tsv").write_text("".join(lines[120:]), encoding="utf-8")
    tokenizer = load_tokenizer(tiny_bert)
    joined = build_text_data(DataConfig(name="text", path=[str(tmp_path / "a.tsv"), str(tmp_path / "b.tsv")],
                                        test_path=[str(test)]), tokenizer)
    whole = build_text_data(DataConfig(name="text", path=str(train), test_path=str(test)), tokenizer)
    for split in ("train", "val", "test"):
        assert torch.equal(joined.split(split).x, whole.split(split).x)
        assert torch.equal(joined.split(split).y, whole.split(split).y)


@pytest.mark.parametrize("command", ["train", "finetune"])
def test_test_flag_names_the_test_file(command, tmp_path, tiny_bert, sentiment, monkeypatch):
    from zerotune.cli.main import main

    train, test = sentiment
    monkeypatch.chdir(test.parent)  # --test is relative to the current directory
    sets = ["data.name=text", f"data.path={train}", "data.max_length=4", "train.epochs=1", "train.threads=1",
            "log.tensorboard=false"]
    args = ["--from", str(tiny_bert), "--strategy", "head", "--set", "finetune.baseline=false"] \
        if command == "finetune" else ["--set", "model.name=hf", "--set", f"model.path={tiny_bert}"]
    args = [command, *args, *(a for s in sets for a in ("--set", s)), "--test", test.name,
            "--runs-dir", str(tmp_path), "--name", "r", "--no-progress"]
    assert main(args) == 0
    assert yaml.safe_load((tmp_path / "r" / "config.yaml").read_text())["data"]["test_path"] == str(test)
    meta = json.loads((tmp_path / "r" / "meta.json").read_text())
    assert meta["sizes"]["test"] == 100 and meta["truncated"]["test"] == _too_long(load_tokenizer(tiny_bert), test, 4)
