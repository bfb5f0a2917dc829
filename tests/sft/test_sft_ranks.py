"""Instruction tuning of a Hugging Face Llama with LoRA in 2 ranks, sharded (FSDP) and replicated (DDP).

The ranks' halves of a batch hold different numbers of answer tokens; each rank's mean loss is
weighted by its count, so the ranks take the step of one process (2e-7 measured; unweighted
means moved the adapters by 3e-2 in 2 epochs).
"""

import json

import pytest

import zerotune
from zerotune.cli.main import main
from zerotune.config import load_config
from zerotune.run.files import RunDir
from zerotune.train.checkpoint import read_weights

SETTINGS = ["data.name=sft", "data.max_length=32", "train.epochs=2", "train.batch_size=16", "train.threads=1",
            "optim.lr=3e-3", "sft.eval_prompts=4", "sft.max_new_tokens=3", "finetune.baseline=false",
            "finetune.strategy=lora", "train.deterministic=true", "log.progress=false", "log.histograms_every=0",
            "log.layer_stats_every=0"]


def _weights(run_dir):
    return read_weights(RunDir(run_dir).checkpoint("last"))


@pytest.fixture(scope="module")
def one_process(tmp_path_factory, tiny_lms, sft_file):
    root = tmp_path_factory.mktemp("sft-ranks")
    sets = [*SETTINGS, f"data.path={sft_file}", f"finetune.source={tiny_lms['llama']}", f"log.dir={root}"]
    zerotune.train(load_config(None, [*sets, "log.name=one"]))
    return root, sets


@pytest.mark.parametrize("strategy", ["fsdp", "ddp"])
def test_two_ranks_tune_a_transformers_model_as_one_process(one_process, strategy, capfd):
    root, sets = one_process
    capfd.readouterr()
    code = main(["train", "--nproc", "2", *[a for s in [*sets, f"log.name={strategy}",
                                                         f"train.distributed.strategy={strategy}"]
                                           for a in ("--set", s)]])
    err = capfd.readouterr().err  # the workers' own stderr included
    assert code == 0, err
    assert "find_unused_parameters" not in err  # no DDP warning: LoRA's frozen set does not change
    a, b = _weights(root / "one"), _weights(root / strategy)
    assert a.keys() == b.keys() and any("lora_" in k for k in a)
    assert max(float((a[k] - b[k]).abs().max()) for k in a) <= 1e-5
    metrics = json.loads((root / strategy / "metrics.json").read_text())
    single = json.loads((root / "one" / "metrics.json").read_text())
    assert metrics["test"]["loss"] == pytest.approx(single["test"]["loss"], abs=1e-5)
    assert metrics["test"]["exact_match"] == single["test"]["exact_match"]
    assert len(list((root / strategy).glob("events.out.tfevents.*"))) == 1
    if strategy == "fsdp":
        assert (root / strategy / "checkpoints" / "last" / "dcp" / ".metadata").is_file()
    assert zerotune.evaluate(root / strategy, "val")["loss"] == pytest.approx(metrics["val"]["loss"], abs=1e-6)
