"""The first-version TensorBoard scalars of a run, read back with tensorboard's event reader."""

import zerotune
from zerotune.config import load_config


def test_train_writes_loss_lr_grad_norm_throughput_and_val_metrics(runs_dir):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    r = zerotune.train(load_config(None, ["data.name=iris", "model.name=mlp", "train.epochs=3", "log.progress=false",
                                          f"log.dir={runs_dir}", "log.name=tb", "schedule.name=cosine", "log.grad_norm_every=2"]))
    acc = EventAccumulator(str(r.run_dir))
    acc.Reload()
    tags = set(acc.Tags()["scalars"])
    assert {"train/loss", "train/lr", "train/grad_norm", "perf/samples_per_sec", "val/loss", "val/accuracy"} <= tags
    steps = [e.step for e in acc.Scalars("train/loss")]
    assert steps == list(range(1, r.steps + 1))  # every step
    lrs = [e.value for e in acc.Scalars("train/lr")]
    assert lrs[0] > lrs[-1]  # the cosine schedule is visible
    assert [e.step for e in acc.Scalars("val/loss")] == [r.steps // 3 * i for i in (1, 2, 3)]
    assert [e.step for e in acc.Scalars("train/grad_norm")] == list(range(2, r.steps + 1, 2))
