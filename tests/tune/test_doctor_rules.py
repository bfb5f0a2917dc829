"""Each doctor rule on synthetic runs whose curves show one problem (fast: no training)."""

from __future__ import annotations

import json
import math
import shlex

import numpy as np
import pytest
import torch

from zerotune.cli.main import main
from zerotune.config import apply_overrides, build_config
from zerotune.doctor import diagnose, format_text, to_json

from .doctor_runs import CONFIG, curve, healthy_curves, make_run


def ids(findings) -> dict[str, str]:
    return {f.id: f.severity for f in findings}


def with_curves(**changes):
    curves = healthy_curves()
    curves.update({k.replace("__", "/"): v for k, v in changes.items()})
    return curves


def test_a_healthy_run_has_no_findings(tmp_path):
    assert diagnose(make_run(tmp_path, "ok", healthy_curves())) == []


def test_a_nan_loss_is_diverged(tmp_path):
    loss = healthy_curves()["train/loss"][:200] + [(201, float("nan"))]
    found = diagnose(make_run(tmp_path, "nan", with_curves(train__loss=loss)))
    assert [f.id for f in found] == ["diverged"]
    assert found[0].severity == "high" and found[0].evidence["step"] == 201
    assert json.loads(to_json(found))["findings"][0]["evidence"]["value"] == "nan"


def test_a_loss_ending_above_its_start_is_diverged(tmp_path):
    loss = curve(range(1, 401), lambda s: 2.3 * math.exp(-s / 50) + (0 if s < 200 else (s - 200) / 20))
    assert ids(diagnose(make_run(tmp_path, "up", with_curves(train__loss=loss)))).get("diverged") == "high"


def test_a_large_update_ratio_is_lr_too_high(tmp_path):
    run = make_run(tmp_path, "hi", with_curves(layers__update_ratio___all=curve(range(10, 401, 10), lambda s: 5e-2)))
    f = {f.id: f for f in diagnose(run)}["lr_too_high"]
    assert f.severity == "high" and f.evidence["update_ratio"] == pytest.approx(5e-2)
    assert f.fixes[0] == "--set optim.lr=0.0003"


def test_loss_spikes_are_lr_too_high(tmp_path):
    loss = [(s, v * (5 if s % 50 == 0 else 1)) for s, v in healthy_curves()["train/loss"]]
    f = {f.id: f for f in diagnose(make_run(tmp_path, "spiky", with_curves(train__loss=loss)))}["lr_too_high"]
    assert f.severity == "medium" and f.evidence["spikes"] >= 3


def test_a_tiny_update_ratio_and_flat_loss_is_lr_too_low(tmp_path):
    run = make_run(tmp_path, "lo", with_curves(
        layers__update_ratio___all=curve(range(10, 401, 10), lambda s: 3e-5),
        train__loss=curve(range(1, 401), lambda s: 2.3 - s / 2000)))
    assert ids(diagnose(run))["lr_too_low"] == "medium"


def test_a_rising_val_loss_with_a_widening_gap_is_overfitting(tmp_path):
    evals = range(40, 401, 40)
    run = make_run(tmp_path, "ovf", with_curves(
        val__loss=curve(evals, lambda s: 0.5 + ((s - 120) / 200) ** 2),
        train__eval_loss=curve(evals, lambda s: 1.5 * math.exp(-s / 60))))
    f = {f.id: f for f in diagnose(run)}["overfitting"]
    assert f.severity == "high" and f.evidence["best_step"] == 120
    assert f.evidence["gap_at_end"] > f.evidence["gap_at_best"]


def test_a_train_loss_near_chance_is_underfitting(tmp_path):
    run = make_run(tmp_path, "under", with_curves(train__eval_loss=curve(range(40, 401, 40), lambda s: 2.2)))
    assert ids(diagnose(run))["underfitting"] == "high"


def test_growing_gradients_explode_unless_clipped(tmp_path):
    grads = curve(range(10, 401, 10), lambda s: math.exp(s / 80))
    assert ids(diagnose(make_run(tmp_path, "boom", with_curves(train__grad_norm=grads))))["exploding_gradients"] == "medium"
    clipped = make_run(tmp_path, "clip", with_curves(train__grad_norm=grads),
                       config={"optim": {**CONFIG["optim"], "clip_norm": 1.0}})
    assert ids(diagnose(clipped))["exploding_gradients"] == "low"


def test_a_layer_with_tiny_gradients_vanishes(tmp_path):
    run = make_run(tmp_path, "vanish", with_curves(
        **{"layers__grad_norm__features.1.weight": curve(range(10, 401, 10), lambda s: 1e-5)}))
    f = {f.id: f for f in diagnose(run)}["vanishing_gradients"]
    assert f.severity == "high" and list(f.evidence["relative"]) == ["features.1.weight"]


def test_relu_layers_outputting_zeros_are_dead_units(tmp_path):
    gen = torch.Generator().manual_seed(0)
    alive = torch.relu(torch.randn(64, 32, generator=gen))
    dead = torch.relu(torch.randn(64, 32, generator=gen) - 2.5)  # about 99% zeros
    run = make_run(tmp_path, "dead", healthy_curves(),
                   activations={"features.2.ReLU": alive, "features.4.ReLU": dead, "features.1.Linear": dead})
    f = {f.id: f for f in diagnose(run)}["dead_units"]
    assert list(f.evidence["zero_share"]) == ["activations/features.4.ReLU"]


def test_a_flat_loss_and_no_better_evaluation_is_a_plateau(tmp_path):
    steps, evals = range(1, 1001), range(50, 1001, 50)
    run = make_run(tmp_path, "flat", with_curves(
        train__loss=curve(steps, lambda s: max(1.2, 2.3 - s / 300)),
        val__loss=curve(evals, lambda s: max(1.3, 2.3 - s / 300)),
        best__val__loss=curve(evals, lambda s: max(1.3, 2.3 - s / 300)),
        train__eval_loss=curve(evals, lambda s: max(1.2, 2.3 - s / 300))))
    assert ids(diagnose(run))["plateau"] == "low"


def test_most_time_taking_batches_is_input_bound(tmp_path):
    run = make_run(tmp_path, "slow", with_curves(perf__data_wait_share=curve(range(10, 401, 10), lambda s: 0.7)))
    f = {f.id: f for f in diagnose(run)}["input_bound"]
    assert f.severity == "medium" and f.fixes[0].startswith("zerotune profile ")


def test_a_small_poorly_recalled_class_is_class_imbalance(tmp_path):
    per_class = {"0": {"support": 100, "recall": 0.97}, "1": {"support": 90, "recall": 0.95},
                 "2": {"support": 10, "recall": 0.4}}
    metrics = {"val": {"per_class": per_class}, "test": {"per_class": per_class}, "training": {}}
    f = {f.id: f for f in diagnose(make_run(tmp_path, "skewed", healthy_curves(), metrics=metrics))}["class_imbalance"]
    assert f.severity == "medium" and f.evidence["ratio"] == pytest.approx(10.0)
    assert f.fixes == ["--set data.train_per_class=47"]  # 20 of 540 held-out examples, scaled to 1257 train


def test_a_best_step_early_in_the_run_is_early_stop_wasted(tmp_path):
    evals = range(40, 401, 40)
    run = make_run(tmp_path, "early", with_curves(best__val__loss=curve(evals, lambda s: 0.3 if s >= 120 else 1.0)),
                   metrics={"training": {"best_step": 120}})
    f = {f.id: f for f in diagnose(run)}["early_stop_wasted"]
    assert f.severity == "medium" and f.evidence["best_step"] == 120


def test_every_fix_is_a_valid_override(tmp_path):
    """The --set fixes of every rule apply to the run's config and validate (keys exist, values fit)."""
    evals = range(40, 401, 40)
    run = make_run(tmp_path, "all", with_curves(
        layers__update_ratio___all=curve(range(10, 401, 10), lambda s: 5e-2),
        val__loss=curve(evals, lambda s: 0.5 + ((s - 120) / 200) ** 2),
        train__eval_loss=curve(evals, lambda s: 2.2),
        train__grad_norm=curve(range(10, 401, 10), lambda s: math.exp(s / 80)),
        perf__data_wait_share=curve(range(10, 401, 10), lambda s: 0.7),
        **{"layers__grad_norm__features.1.weight": curve(range(10, 401, 10), lambda s: 1e-5)}),
        config={"model": {**CONFIG["model"], "activation": "sigmoid"}, "data": {"name": "digits", "augment": {}}})
    found = diagnose(run)
    assert len(found) >= 5
    for f in found:
        for fix in f.fixes:
            if fix.startswith("--set"):
                overrides = shlex.split(fix)[1::2]
                build_config(apply_overrides(CONFIG | {"model": {**CONFIG["model"], "activation": "sigmoid"}}, overrides))


def test_text_and_json_output(tmp_path, capsys):
    run = make_run(tmp_path, "two", with_curves(perf__data_wait_share=curve(range(10, 401, 10), lambda s: 0.7)))
    assert main(["doctor", str(run), "--json"]) == 0
    (f,) = json.loads(capsys.readouterr().out)["findings"]
    assert set(f) == {"id", "severity", "message", "evidence", "fixes"} and f["id"] == "input_bound"
    assert main(["doctor", str(run)]) == 0
    out = capsys.readouterr().out
    assert "MEDIUM input_bound" in out and "fix: zerotune profile" in out
    assert format_text([], "x") == "doctor: x: no findings"


def test_a_live_run_cut_mid_record_reads(tmp_path):
    run = make_run(tmp_path, "live", healthy_curves())
    (events,) = run.glob("*tfevents*")
    data = events.read_bytes()
    events.write_bytes(data[: len(data) - 7])  # the writer was in the middle of a record
    assert diagnose(run) == []


@pytest.mark.parametrize("make, message", [
    (lambda p: p / "missing", "does not exist"),
    (lambda p: p, "is not a run directory"),
])
def test_a_bad_run_path_is_one_line_and_exit_2(tmp_path, capsys, make, message):
    assert main(["doctor", str(make(tmp_path))]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err


def test_module_types_expand_repeated_blocks():
    from zerotune.doctor.evidence import module_types

    text = """    GPT(
      (features): Backbone(
        (wte): Embedding(65, 128)
        (blocks): ModuleList(
          (0-1): 2 x Block(
            (ln_1): LayerNorm((128,), eps=1e-05)
            (fc): Linear(in_features=128, out_features=512, bias=False)
          )
        )
      )
      (head): Linear(in_features=128, out_features=65, bias=False)
    )"""
    types = module_types(text)
    assert types["features.blocks.1.fc"] == "Linear" and types["features.blocks.0.ln_1"] == "LayerNorm"
    assert types["features.wte"] == "Embedding" and types["head"] == "Linear"


# Instruction tuning: the curves of benchmarks/sft_doctor.py's runs (phone numbers), one point per epoch of 50 steps.
SFT_CONFIG = {"data": {"name": "sft", "path": "/data/train.jsonl"}, "model": {"name": "gpt"},
              "finetune": {"source": "/runs/gpt", "strategy": "lora"}, "optim": {"name": "adamw", "lr": 3e-3},
              "train": {"epochs": 6, "batch_size": 32}, "log": {}}
SFT_META = {"source": "sft", "task": "sft", "input_shape": [96], "num_classes": 46,
            "sizes": {"train": 1600, "val": 200, "test": 200}}


def sft_run(root, name, epoch_loss, val_loss, exact_match, finished=True, **config):
    steps = [50 * (i + 1) for i in range(len(epoch_loss))]
    curves = {"train/epoch_loss": list(zip(steps, epoch_loss)), "val/loss": list(zip(steps, val_loss)),
              "best/val/loss": list(zip(steps, np.minimum.accumulate(val_loss))),
              "val/exact_match": list(zip(steps, exact_match))}
    cfg = {**SFT_CONFIG, **config, "train": {"epochs": len(steps), "batch_size": 32}}
    metrics = {"test": {"exact_match": exact_match[-1]}, "training": {"steps": steps[-1]}} if finished else None
    return make_run(root, name, curves, config=cfg, meta=SFT_META, metrics=metrics)


LORA_LOSS = [1.8086, 1.5302, 1.5295, 1.529, 1.5288, 1.5286]  # the recipe's LoRA: the answer loss stalls at 1.53


def test_answers_that_never_come_right_are_sft_not_learning(tmp_path):
    run = sft_run(tmp_path, "lora", LORA_LOSS, [1.5309, 1.5302, 1.5299, 1.5301, 1.53, 1.5296], [0.0] * 6)
    (f,) = diagnose(run)
    assert (f.id, f.severity) == ("sft_not_learning", "high") and "stalled" in f.message
    assert f.evidence["evaluations"] == 6 and f.evidence["exact_match_max"] == 0.0
    assert f.fixes[:2] == ["--strategy full --set optim.lr=2e-3 --set train.epochs=20", "--set train.epochs=18"]
    still = sft_run(tmp_path, "falling", [3.0, 2.5, 2.0, 1.6, 1.3, 1.0], [2.9, 2.4, 2.0, 1.7, 1.4, 1.1], [0.0] * 6)
    (f,) = diagnose(still)
    assert "still fell" in f.message and f.fixes[0] == "--set train.epochs=18"
    # while training, answers may still come right (the benchmark's full run got its first after 6 evaluations)
    assert diagnose(sft_run(tmp_path, "live", LORA_LOSS, LORA_LOSS, [0.0] * 6, finished=False)) == []


def test_a_run_whose_answers_come_right_has_no_sft_findings(tmp_path):
    run = sft_run(tmp_path, "full", [1.5, 1.2, 0.6, 0.2, 0.05, 0.02], [1.3, 1.0, 0.5, 0.15, 0.05, 0.03],
                  [0.0, 0.0, 0.2, 0.7, 0.98, 1.0], finetune={"source": "/runs/gpt", "strategy": "full"})
    assert diagnose(run) == []


def test_held_out_answers_getting_worse_is_sft_overfit_not_overfitting(tmp_path):
    run = sft_run(tmp_path, "small", [1.5, 0.9, 0.5, 0.2, 0.08, 0.03, 0.01, 0.005],
                  [1.4, 1.0, 0.8, 0.85, 1.0, 1.2, 1.4, 1.5], [0.0, 0.2, 0.5, 0.45, 0.4, 0.35, 0.3, 0.3],
                  finetune={"source": "/runs/gpt", "strategy": "full"})
    found = {f.id: f for f in diagnose(run)}
    f = found["sft_overfit"]
    assert "overfitting" not in found and f.severity == "high"
    assert f.evidence["best_step"] == 150 and f.evidence["exact_match_best"] == 0.5
    assert f.evidence["exact_match_end"] == pytest.approx(0.3)
    assert f.fixes[0].startswith("--set train.monitor=val/exact_match") and "--strategy lora" in f.fixes
    assert "--set train.epochs=3" in f.fixes


def test_training_answers_learned_by_heart_is_sft_overfit_alone(tmp_path):
    # 40 training records for 100 epochs: the held-out loss ended 21% above its best, no answer right
    run = sft_run(tmp_path, "by-heart", [2.99, 1.5, 0.7, 0.38, 0.25, 0.16, 0.11], [2.55, 1.4, 0.95, 0.885, 0.95, 1.0, 1.07],
                  [0.0] * 7, finetune={"source": "/runs/gpt", "strategy": "full"})
    found = {f.id: f for f in diagnose(run)}
    f = found["sft_overfit"]
    assert "sft_not_learning" not in found and "overfitting" not in found  # its fixes would be more epochs
    assert f.severity == "high" and "no held-out answer came right" in f.message
    assert f.evidence["end"] / f.evidence["best"] == pytest.approx(1.07 / 0.885, rel=1e-3)
    assert f.fixes[0].startswith("more training records") and f.fixes[1] == "--set train.epochs=4"


def _preference_curves(chosen, rejected, accuracy, margin):
    """A DPO run's reward curves (each a function of the step) over the healthy loss curves."""
    evals, steps = range(50, 401, 50), range(1, 401)
    return with_curves(val__rewards__chosen=curve(evals, chosen), val__rewards__rejected=curve(evals, rejected),
                       val__rewards__accuracy=curve(evals, accuracy), train__rewards__margin=curve(steps, margin))


PREFERENCE = {"preference": {"loss": "dpo", "beta": 0.1}, "optim": {"name": "adamw", "lr": 3e-3}}


def test_healthy_rewards_have_no_preference_findings(tmp_path):
    # recipes/dpo_demo.toml's run: the chosen reward rises to 4.4, the rejected falls to -3.5
    curves = _preference_curves(lambda s: 4.4 * s / 400, lambda s: -3.5 * s / 400, lambda s: 1.0, lambda s: s / 50)
    assert not {"dpo_reward_collapse", "dpo_overoptimized"} & set(ids(diagnose(make_run(tmp_path, "ok", curves,
                                                                                         config=PREFERENCE))))


@pytest.mark.parametrize("chosen_end, severity", [(-1.8, "medium"), (-2.5, "high"), (-0.3, None)])
def test_both_rewards_falling_is_dpo_reward_collapse(tmp_path, chosen_end, severity):
    # -1.8 at beta 0.1: the chosen answers 18 nats below the reference, as the pure-DPO demo run ended
    curves = _preference_curves(lambda s: chosen_end * s / 400, lambda s: -10.2 * s / 400, lambda s: 1.0,
                                lambda s: s / 50)
    found = {f.id: f for f in diagnose(make_run(tmp_path, "collapse", curves, config=PREFERENCE))}
    assert (found["dpo_reward_collapse"].severity if "dpo_reward_collapse" in found else None) == severity
    if severity:
        f = found["dpo_reward_collapse"]
        assert f.evidence["chosen_logp_drop"] == pytest.approx(-chosen_end / 0.1)
        assert f.fixes[:3] == ["--set preference.sft_weight=1", "--set optim.lr=0.00075", "--set preference.beta=0.4"]


@pytest.mark.parametrize("end_accuracy, severity", [(0.742, "medium"), (0.6, "high"), (0.85, None)])
def test_a_growing_margin_and_falling_held_out_accuracy_is_dpo_overoptimized(tmp_path, end_accuracy, severity):
    # the flipped-pairs run: val accuracy 0.871 at its best, the training margin from about 0.6 to 3
    curves = _preference_curves(lambda s: 1.0, lambda s: -1.0, lambda s: 0.871 if s <= 100 else end_accuracy,
                                lambda s: 0.6 if s <= 100 else 3.0)
    found = {f.id: f for f in diagnose(make_run(tmp_path, "over", curves, config=PREFERENCE))}
    assert (found["dpo_overoptimized"].severity if "dpo_overoptimized" in found else None) == severity
    if severity:
        f = found["dpo_overoptimized"]
        assert f.evidence["best_step"] == 50 and f.evidence["margin_at_best"] == pytest.approx(0.6)
        assert f.evidence["margin_end"] == pytest.approx(3.0) and f.fixes[0] == "--set train.max_steps=51"
