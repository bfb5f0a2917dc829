"""Parity with TRL: on the same tiny transformers model, batch and beta, zerotune's DPO loss and its
gradients equal those of TRL's `DPOTrainer.compute_loss` (its own forward, fused log-prob head and
sigmoid loss), to 1e-5; with ``preference.sft_weight`` the same as TRL's sigmoid and sft losses weighted."""

import copy

import pytest
import torch

trl = pytest.importorskip("trl", reason="trl is not installed (pip install 'zerotune[dev]')")

from zerotune.config import PreferenceConfig  # noqa: E402
from zerotune.data.bundle import DataMeta  # noqa: E402
from zerotune.data.chat import ChatFormat  # noqa: E402
from zerotune.data.preference import PairTargets, PreferenceSplit, encode_pairs  # noqa: E402
from zerotune.tasks.preference import PreferenceTask, pair_logps  # noqa: E402

BETA = 0.1
RECORDS = [("What is 2+3?", "5", "6"), ("What is 7+1?", "8", "9 or 10"), ("What is 4+4?", "8", "7"),
           ("What is 9+0?", "9", "19")]


def _models(directory):
    """The reference (the directory's weights) and a policy moved away from it, so the margins are not 0."""
    from transformers import AutoModelForCausalLM

    ref = AutoModelForCausalLM.from_pretrained(str(directory), torch_dtype=torch.float32)
    policy = copy.deepcopy(ref)
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in policy.parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.05)
    return policy, ref


def _pairs(tokenizer):
    fmt = ChatFormat(tokenizer)
    records = [(i + 1, ([{"role": "user", "content": q}], c, r)) for i, (q, c, r) in enumerate(RECORDS)]
    x, y, lengths, prompts, _ = encode_pairs(records, fmt, 64, "parity")
    split = PreferenceSplit(*(torch.from_numpy(a) for a in (x, y)), None, torch.from_numpy(lengths),
                            torch.from_numpy(prompts))
    examples = [{"prompt_ids": x[i, 0, :p].tolist(), "chosen_ids": x[i, 0, p:lengths[i, 0]].tolist(),
                 "rejected_ids": x[i, 1, p:lengths[i, 1]].tolist()} for i, p in enumerate(prompts.tolist())]
    return split, examples


def _trl_loss_and_grads(policy, ref, tokenizer, examples, tmp_path, sft_weight):
    from datasets import Dataset
    from trl import DPOConfig, DPOTrainer

    losses = {"loss_type": ["sigmoid", "sft"], "loss_weights": [1.0, sft_weight]} if sft_weight else \
        {"loss_type": ["sigmoid"]}
    args = DPOConfig(output_dir=str(tmp_path / "trl"), beta=BETA, **losses, report_to="none",
                     use_cpu=True, per_device_train_batch_size=len(examples), max_length=None, bf16=False,
                     fp16=False, disable_dropout=True, pad_to_multiple_of=None)
    data = Dataset.from_list([{"prompt": q, "chosen": c, "rejected": r} for q, c, r in RECORDS])
    trainer = DPOTrainer(model=policy, ref_model=ref, args=args, train_dataset=data, processing_class=tokenizer)
    inputs = trainer.data_collator(examples)
    trainer.model.train()
    loss = trainer.compute_loss(trainer.model, inputs)
    loss.backward()
    return float(loss.detach()), {n: p.grad.clone() for n, p in trainer.model.named_parameters() if p.grad is not None}


def _zerotune_loss_and_grads(policy, ref, split, sft_weight):
    from zerotune.models.hf_lm import HFCausalLM

    model, reference = HFCausalLM(policy), HFCausalLM(ref).eval()
    task = PreferenceTask(DataMeta("preference", "preference", [64], policy.config.vocab_size),
                          PreferenceConfig(loss="dpo", beta=BETA, sft_weight=sft_weight))
    x, targets = split.with_reference(reference=lambda ids, labels: pair_logps(reference(ids), labels)) \
        .in_order(len(split))[0]
    model.train()
    loss = task.loss(model(x), PairTargets(targets.labels, targets.reference.detach()))
    loss.backward()
    prefix = "features.backbone."
    return float(loss.detach()), {n[len(prefix):]: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("sft_weight", [0.0, 0.5])
def test_dpo_loss_and_gradients_equal_trl(tmp_path, tiny_lms, sft_weight):
    from transformers import AutoTokenizer

    directory = tiny_lms["llama"]
    tokenizer = AutoTokenizer.from_pretrained(str(directory))
    split, examples = _pairs(tokenizer)
    policy, ref = _models(directory)
    ours, our_grads = _zerotune_loss_and_grads(copy.deepcopy(policy), copy.deepcopy(ref), split, sft_weight)
    theirs, their_grads = _trl_loss_and_grads(policy, ref, tokenizer, examples, tmp_path, sft_weight)
    assert abs(ours - theirs) <= 1e-5, (ours, theirs)
    assert our_grads.keys() == their_grads.keys() and our_grads
    worst = max(float((our_grads[n] - their_grads[n]).abs().max()) for n in our_grads)
    print(f"TRL parity: |loss diff| {abs(ours - theirs):.3g}, max |grad diff| {worst:.3g}")
    assert worst <= 1e-5
