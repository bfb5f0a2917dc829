"""A damaged run is refused, never started over, and a refused resume leaves its directory as it was."""

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from bad_input import assert_refused

from zerotune.cli.main import main

IRIS = ["--set", "data.name=iris", "--set", "model.name=mlp", "--set", "model.hidden=[8]",
        "--set", "train.threads=1", "--set", "train.deterministic=true", "--no-progress"]



def tree_hash(path: Path) -> dict:
    """Every file's SHA-256 and every folder, by relative path: what "as it was" means."""
    return {p.relative_to(path).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
            for p in sorted(path.rglob("*"))}


def refused(capsys, run: Path, *needles: str) -> str:
    """Resume `run` (with an override, which would rewrite config.yaml); it must fail in one line, writing nothing."""
    before = tree_hash(run)
    code = main(["train", "--resume", str(run), "--set", "train.epochs=6"])
    line = assert_refused(code, *capsys.readouterr(), *needles)
    assert tree_hash(run) == before
    return line


def start_over(run: Path) -> str:
    return f"to start over, delete {run} or train under another --name"


# -- partly present checkpoints are damage, not a new run ---------------------------------------


def test_missing_last_state_is_refused_not_started_over(run, capsys):
    (run / "checkpoints" / "last" / "state.json").unlink()
    last = run / "checkpoints" / "last"
    refused(capsys, run, f"checkpoint {last} is damaged: state.json is missing", start_over(run))


def test_missing_last_checkpoint_beside_best_is_refused(run, capsys):
    shutil.rmtree(run / "checkpoints" / "last")
    refused(capsys, run, f"{run / 'checkpoints' / 'last' / 'state.json'} is missing", "holds best", start_over(run))


def test_missing_last_weights_are_refused(run, capsys):
    (run / "checkpoints" / "last" / "model.safetensors").unlink()
    refused(capsys, run, "model.safetensors is missing", start_over(run))


def test_killed_first_write_still_starts_again(run, capsys):
    """checkpoints/ holding only the temporary directory of a first save that was killed: a run with no checkpoint."""
    shutil.rmtree(run / "checkpoints")
    (run / "metrics.json").unlink()
    (run / "checkpoints" / ".last.tmp-abc123").mkdir(parents=True)
    (run / "checkpoints" / ".last.tmp-abc123" / "model.safetensors").write_bytes(b"half")
    assert main(["train", "--resume", str(run)]) == 0
    assert "no checkpoint yet: training it again from step 0" in capsys.readouterr().err
    assert json.loads((run / "metrics.json").read_text())["training"]["steps"] > 0
    assert not (run / "checkpoints" / ".last.tmp-abc123").exists()


# -- what a resume reads after training is checked before its first step -------------------------


def test_missing_meta_is_refused_before_training(run, capsys):
    (run / "meta.json").unlink()
    refused(capsys, run, f"{run / 'meta.json'} is missing", start_over(run))


def test_damaged_meta_is_refused_before_training(run, capsys):
    (run / "meta.json").write_text('{"not": "metadata"}')
    refused(capsys, run, f"{run / 'meta.json'} is damaged")


@pytest.mark.parametrize("damage", ["garble", "state", "weights"])
def test_damaged_best_is_refused_before_training(run, capsys, damage):
    best = run / "checkpoints" / "best"
    if damage == "garble":
        data = bytearray((best / "model.safetensors").read_bytes())
        data[-64:] = bytes(64)
        (best / "model.safetensors").write_bytes(bytes(data))
        refused(capsys, run, f"{best / 'model.safetensors'} is damaged", start_over(run))
    elif damage == "state":
        (best / "state.json").unlink()
        refused(capsys, run, f"checkpoint {best} is damaged: state.json is missing")
    else:
        (best / "model.safetensors").unlink()
        refused(capsys, run, f"checkpoint {best} is damaged: model.safetensors is missing")


def test_best_of_another_model_is_refused(run, tmp_path, capsys):
    """A best/ that is whole but holds other tensors (copied from another run) fails the final metrics: refused now."""
    other = tmp_path / "other"
    assert main(["train", "--runs-dir", str(other), "--name", "wide", "--set", "train.epochs=1",
                 *IRIS[:4], "--set", "model.hidden=[16]", *IRIS[6:]]) == 0
    capsys.readouterr()
    shutil.rmtree(run / "checkpoints" / "best")
    shutil.copytree(other / "wide" / "checkpoints" / "best", run / "checkpoints" / "best")
    refused(capsys, run, "best/model.safetensors does not fit the run's model")


def test_corrupt_env_json_is_refused_before_training(run, capsys):
    (run / "env.json").write_text("{cut")
    refused(capsys, run, f"{run / 'env.json'} is not valid JSON")


def test_a_run_missing_its_tokenizer_or_transformer_files_is_refused(run):
    """A corpus GPT run rebuilds its tokenizer from tokenizer/; without it a resume would train a new one."""
    from zerotune.config import build_config
    from zerotune.run.checksums import Damaged
    from zerotune.runload.integrity import load_resumable

    last = run / "checkpoints" / "last"
    corpus = build_config({"data": {"name": "corpus", "path": str(run / "config.yaml")}, "model": {"name": "gpt"}})
    with pytest.raises(Damaged, match=f"{run / 'tokenizer'} is missing: the run was saved with it; to start over"):
        load_resumable(run, corpus, last)
    (run / "tokenizer").mkdir()
    load_resumable(run, corpus, last)
    hf = build_config({"data": {"name": "text"}, "model": {"name": "hf", "path": str(run)}})
    with pytest.raises(Damaged, match=f"{run / 'hf'} is missing"):
        load_resumable(run, hf, last)
