"""Packed training batches (`sft.packing`): a step's examples in rows without padding give the loss and
gradients of the padded batch of the same examples; and the data that benchmarks/sft_vs_trl.py trains on."""

import importlib.util
import json
import re
from pathlib import Path

import pytest
import torch

from zerotune.config import load_config
from zerotune.data.packing import PackedSFTSplit, fill_rows
from zerotune.data.sft import SFTSplit
from zerotune.pipeline.train import prepare

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def packed_run(tiny_lms, sft_file, tmp_path_factory):
    """A LoRA run of the tiny Llama on arithmetic, built (not trained) with packing on; adapters set as if trained."""
    cfg = load_config(None, ["data.name=sft", f"data.path={sft_file}", "data.max_length=40", "train.batch_size=16",
                             "train.threads=1", "finetune.strategy=lora", f"finetune.source={tiny_lms['llama']}",
                             "finetune.baseline=false", "sft.packing=true", "log.progress=false",
                             "log.tensorboard=false", f"log.dir={tmp_path_factory.mktemp('runs')}"])
    run = prepare(cfg)
    torch.manual_seed(0)
    with torch.no_grad():
        for name, p in run.model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.5)  # zero at the start: the adapters would change nothing
    return run


def _loss_and_grads(run, x, y):
    run.model.train()
    run.model.zero_grad(set_to_none=True)
    loss = run.task.loss(run.model(x), y)
    loss.backward()
    return float(loss.detach()), {n: p.grad.clone() for n, p in run.model.named_parameters() if p.requires_grad}


def test_packed_batch_has_the_loss_and_gradients_of_the_padded_one(packed_run):
    split = packed_run.data.train
    assert isinstance(split, PackedSFTSplit)
    rows, labels = split.epoch_batches(0, 0, 16)[0]
    x, y = SFTSplit.epoch_batches(split, 0, 0, 16)[0]  # the same examples, padded to the longest
    starts = (rows.positions == 0) & (rows.ids != 0)  # each example's first token (0 is the padding id)
    assert len(rows) == 16 == int(starts.sum()) and len(rows.ids) < 16
    assert rows.ids.numel() <= x.numel() and len(labels) == int((y != -100).sum())
    packed_loss, packed_grads = _loss_and_grads(packed_run, rows, labels)
    loss, grads = _loss_and_grads(packed_run, x, y)
    assert abs(packed_loss - loss) < 1e-4
    assert grads.keys() == packed_grads.keys() and len(grads) > 0
    for name, g in grads.items():
        torch.testing.assert_close(packed_grads[name], g, rtol=1e-3, atol=1e-5, msg=name)


def test_rows_are_filled_first_fit_longest_first():
    assert fill_rows([5, 9, 3, 4, 2], 10) == [[1], [0, 3], [2, 4]]


def test_the_order_dates_data_answers_with_the_date_of_its_prompt(tmp_path):
    spec = importlib.util.spec_from_file_location("make_sft_smollm2_data", ROOT / "scripts" / "make_sft_smollm2_data.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    script.main(["--out", str(tmp_path), "--records", "50"])
    rows = [json.loads(line) for line in (tmp_path / "orders.jsonl").read_text().splitlines()]
    assert len(rows) == 50 == len({r["response"] for r in rows})
    months = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
              "November", "December"]
    for r in rows:
        year, month, day = (int(v) for v in r["response"].split("-"))
        said = re.search(r"on (?:the )?(\d+)(?:st|nd|rd|th)? (?:of )?(\w+) (\d{4})|on (\w+) (\d+), (\d{4})", r["prompt"])
        d, m, y = (said[1], said[2], said[3]) if said[1] else (said[5], said[4], said[6])
        assert (int(y), months.index(m) + 1, int(d)) == (year, month, day)
