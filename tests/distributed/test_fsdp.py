"""Sharded training (FSDP2) in gloo ranks: the steps of one process, checkpoints that reshard.

A tiny GPT (each of its 2 blocks sharded, then the root) takes the steps DDP takes with the same ranks.
The ranks-vs-one-process comparisons use the digits MLP of test_ddp_training.py, whose 2-rank and
1-process runs agree to 1e-5. The GPT is chaotic at that scale: the order of the gradient reductions
alone moves its weights by 2e-5 after one step and 4e-3 after 20 AdamW steps (2 ranks against 1
process, measured the same under DDP and FSDP), and FSDP's reduce-scatter against DDP's all-reduce
by 3e-5 after 20 steps.
"""

import contextlib
import io
import json
from pathlib import Path

import pytest
from safetensors.torch import load_file

import zerotune
from zerotune.cli.main import main
from zerotune.config import load_config

from .test_ddp_training import DIE_ONCE, SETTINGS

ROOT = Path(__file__).resolve().parents[2]
RECIPE = str(ROOT / "recipes/shakespeare_char_gpt.toml")
# 256 windows in global batches of 16, accumulate 2: 8 steps an epoch, 20 steps in 3 epochs.
TINY = ["model.n_layer=2", "model.n_head=2", "model.n_embd=32", "model.dropout=0.0", "data.block_size=32",
        "data.windows_per_epoch=256", "data.eval_windows=32", "train.epochs=3", "train.max_steps=20",
        "train.batch_size=16", "train.accumulate=2", "train.threads=1", "train.deterministic=true",
        "log.graph=false", "log.embeddings=false", "log.sample_tokens=8", "log.attention_maps=false",
        "log.progress=false"]
MLP = [*SETTINGS, "train.distributed.strategy=fsdp"]
# 2 ranks sum a gradient over 8 rows twice where one process sums 16 rows: float32 rounds differently.
TOL = 1e-5
GPT_TOL = 1e-4  # FSDP against DDP, both in 2 ranks: 3e-5 measured (see above)


def _train(*args: str) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        code = main(["train", *args])
    return code, err.getvalue()


def _sets(settings: list[str]) -> list[str]:
    return [a for s in settings for a in ("--set", s)]


def _diff(a_run: Path, b_run: Path, name: str = "last") -> float:
    a, b = (load_file(str(r / "checkpoints" / name / "model.safetensors")) for r in (a_run, b_run))
    assert a.keys() == b.keys()
    return max(float((a[k] - b[k]).abs().max()) for k in a)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    return tmp_path_factory.mktemp("fsdp")


@pytest.fixture(scope="module")
def two_ranks(runs):
    """The uninterrupted 2-rank FSDP run of the digits MLP (checkpoints every 5 steps)."""
    code, err = _train("--nproc", "2", *_sets([*MLP, f"log.dir={runs}", "log.name=fsdp2"]))
    assert code == 0, err
    return runs / "fsdp2"


def test_two_sharded_ranks_reach_the_weights_of_one_process(two_ranks, one_process_mlp):
    one = one_process_mlp
    assert _diff(two_ranks, one) <= TOL
    two, single = (json.loads((r / "metrics.json").read_text()) for r in (two_ranks, one))
    assert two["training"]["steps"] == single["training"]["steps"] == 20
    assert two["test"]["accuracy"] == single["test"]["accuracy"]
    last = two_ranks / "checkpoints" / "last"
    assert (last / "dcp" / ".metadata").is_file()  # the sharded weights and optimizer state
    assert not list((two_ranks / "checkpoints").glob(".*"))  # no temporary directory left behind


def test_a_gpt_in_two_ranks_sharded_or_replicated_takes_the_steps_of_one_process(corpus_file, tmp_path, read_events):
    """Windows of the corpus shared across ranks, perplexity gathered across ranks; FSDP as DDP."""
    from zerotune.pipeline.train import prepare

    s = [*TINY, f"data.path={corpus_file}", f"data.cache_dir={tmp_path / 'cache'}", f"log.dir={tmp_path}"]
    prepare(load_config(RECIPE, s))  # the token cache, built once: two ranks building it at once would race
    for name, strategy in (("fsdp", "fsdp"), ("ddp", "ddp")):
        code, err = _train(RECIPE, "--nproc", "2", *_sets([*s, f"train.distributed.strategy={strategy}",
                                                            f"log.name={name}"]))
        assert code == 0, err
    assert _diff(tmp_path / "fsdp", tmp_path / "ddp") <= GPT_TOL
    assert _diff(tmp_path / "fsdp", tmp_path / "ddp", "best") <= GPT_TOL
    one = zerotune.train(load_config(RECIPE, [*s, "log.name=one"])).run_dir
    ddp, single = (json.loads((r / "metrics.json").read_text()) for r in (tmp_path / "ddp", one))
    assert ddp["training"]["steps"] == single["training"]["steps"] == 20
    # the same steps up to the order of the gradient reduction (AdamW, clipping at 1.0)
    assert abs(ddp["val"]["loss"] - single["val"]["loss"]) < 1e-3
    tags = read_events(tmp_path / "fsdp").Tags()
    assert {"train/loss", "val/loss", "val/perplexity", "dist/world_size", "dist/step_time_ms/rank1"} <= set(tags["scalars"])
    assert "samples/generated/text_summary" in tags["tensors"]  # rank 0's text samples, from the gathered weights


def test_a_checkpoint_saved_with_n_ranks_continues_with_m(two_ranks, runs):
    """2 ranks to step 7, 1 rank to step 14, 2 ranks to step 20: the weights of the uninterrupted run."""
    code, err = _train("--nproc", "2", *_sets([*MLP, f"log.dir={runs}", "train.max_steps=7", "log.name=resharded"]))
    assert code == 0, err
    for nproc, steps in ((1, 14), (2, 20)):
        code, err = _train("--nproc", str(nproc), "--resume", str(runs / "resharded"), "--set", f"train.max_steps={steps}")
        assert code == 0, err
        assert json.loads((runs / "resharded" / "metrics.json").read_text())["training"]["steps"] == steps
    assert _diff(runs / "resharded", two_ranks) <= TOL


def test_eval_and_export_read_a_sharded_run_as_any_other(two_ranks, tmp_path):
    from zerotune.export import ExportOptions, export_run
    from zerotune.pipeline.train import evaluate

    metrics = json.loads((two_ranks / "metrics.json").read_text())
    assert evaluate(two_ranks)["accuracy"] == metrics["test"]["accuracy"] > 0.8
    assert export_run(two_ranks, ExportOptions("torchscript"), out=tmp_path).path.is_file()


def test_a_sharded_checkpoint_is_not_resumed_without_shards(two_ranks, tmp_path, capsys):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(two_ranks, copy)
    before = sorted(p.name for p in copy.rglob("*"))
    assert main(["train", "--resume", str(copy), "--set", "train.max_steps=30"]) == 2
    assert "saved by sharded training" in capsys.readouterr().err
    assert sorted(p.name for p in copy.rglob("*")) == before


def test_a_killed_rank_leaves_a_whole_checkpoint_that_max_restarts_continues_bit_exact(two_ranks, tmp_path,
                                                                                      monkeypatch):
    """Rank 1 killed with -9 after step 12 in the first attempt; the agent restarts the job from the
    sharded checkpoint (explicit `--resume` across rank counts: the test above)."""
    from zerotune.distributed.launch import launch

    script = tmp_path / "die_once.py"
    script.write_text(DIE_ONCE)
    monkeypatch.setenv("KILL_RECORD", str(tmp_path / "kills"))
    launch(2, ["train", "--runs-dir", str(tmp_path), "--name", "restarted", *_sets(MLP)], max_restarts=1,
           program=(str(script),))
    run = tmp_path / "restarted"
    assert (tmp_path / "kills").read_text() == "killed\n"
    assert json.loads((run / "metrics.json").read_text())["training"]["steps"] == 20
    assert (run / "checkpoints" / "last" / "dcp" / ".metadata").is_file()
    assert _diff(run, two_ranks) == 0.0
    assert not list((run / "checkpoints").glob(".*"))  # the killed attempt's temporary directory: removed
